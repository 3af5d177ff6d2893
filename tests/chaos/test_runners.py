"""Chaos on the runner side: a runner SIGKILLed three times in a row while it drains. Asserts:
nothing lost, no on_complete applied twice, only attempts that were running when the runner
died are charged (claims it held ahead go back as they were), each dead runner is marked lost
with an event and its stall alert clears by itself, and lost runners leave the tables after the
retention period."""

from __future__ import annotations

import signal
from typing import Any

import psycopg
from conftest import wait_for
from test_runner import QWEN, completed, fake_models, history, llm_actor, open_count, submit_many
from test_runner_recovery import EFFECTS_DDL, effects

from turing_pg.db import Turing


def test_a_runner_sigkilled_three_times_loses_nothing_and_is_cleaned_up(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    conn.execute(EFFECTS_DDL)
    conn.execute("update turing.settings set value = '2 seconds' "
                 "where key = 'runner_lost_after'")
    fake = fake_ollama(models=fake_models(decode_tok_s=10.0, load_s=0.0), time_scale=1.0,
                       num_parallel=4)
    turing.register_actor(llm_actor("classify", QWEN, on_complete="public.record_effect",
                                    lease="2 seconds", timeout="30 seconds", max_attempts=4))
    submit_many(turing, "classify", 24)
    victims = []
    running_at_kill = 0
    for _ in range(3):
        victim = start_runner("--model", QWEN, "--concurrency", "2", "--batch", "6",
                              "--ollama-host", fake.base_url)
        victim.wait_event("start", count=2, timeout=60)
        running_at_kill += conn.execute(
            "select count(*) from turing.ticket_open where started_at is not null").fetchone()[0]
        victim.signal(signal.SIGKILL)
        victim.wait()
        victims.append(victim.events("startup")[0]["worker"])
    # the next runner's maintenance reaps (with no runner at all, `turing tick` from cron)
    rescuer = start_runner("--model", QWEN, "--concurrency", "4", "--ollama-host",
                           fake.base_url)
    wait_for(lambda: conn.execute(
        "select count(*) from turing.runners where status = 'lost'").fetchone()[0] == 3,
        timeout=30, what="reap to mark the three runners lost")
    wait_for(lambda: completed(conn, "classify") == 24, timeout=120, what="all 24 completed")
    assert open_count(conn) == 0
    assert effects(conn) == {f"s{i}": 1 for i in range(24)}, "each on_complete exactly once"
    charged = [r for r in history(conn, "classify") if r["status"] != "completed"]
    assert len(charged) <= running_at_kill, "only attempts that were running are charged"
    assert {r["worker"] for r in charged} <= set(victims)
    assert all("stopped heartbeating while the attempt ran" in r["error"] for r in charged)
    assert not [r for r in history(conn, "classify") if r["status"] == "dead"]
    lost_events = [e for e in turing.read_events(limit=1000)
                   if e["message"]["event"] == "runner.lost"]
    assert sorted(e["message"]["worker"] for e in lost_events) == sorted(victims)
    wait_for(lambda: not conn.execute(
        "select count(*) from turing.v_alerts where alert = 'stall'").fetchone()[0],
        what="the stall alerts to clear")
    assert rescuer.events("finish")
    # past the retention period the lost runners leave `turing status`
    conn.execute("update turing.settings set value = '0 seconds' where key = 'runner_retention'")
    wait_for(lambda: conn.execute(
        "select count(*) from turing.runners where worker = any(%s)", (victims,)
    ).fetchone()[0] == 0, what="the lost runners to be forgotten")
