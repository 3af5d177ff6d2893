"""Chaos on the model server side: Ollama stopped mid-drain and started again, its model runner
crashing, a poison ticket inside a batch, a lost lease during a call. Each asserts what the
operator relies on: nothing lost, no on_complete applied twice, no attempt charged to an
infrastructure fault, recovery with no manual step, the right alert raised and cleared."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from conftest import wait_for
from test_runner import QWEN, completed, fake_models, history, llm_actor, open_count

from turing_pg.db import Turing
from turing_pg.fake_ollama import FakeConfig, FakeOllama, FaultRule


def scored_actor(**kw: Any) -> dict[str, Any]:
    """An llm actor over the jobs fixture: its work_query is the domain table, on_complete
    writes the outbox (jobs.scored_times counts how often it ran per job)."""
    return llm_actor(
        "score", QWEN, inbox=["new"], outbox=["scored"],
        work_query="select id::text as subject_id, title as skill, id as count "
                   "from public.jobs where status = 'new'",
        on_complete="public.jobs_scored", **kw)


def alert_log(conn: psycopg.Connection, alert: str) -> list[tuple[Any, Any, str]]:
    return conn.execute(
        "select raised_at, cleared_at, message from turing.alert_state where alert = %s "
        "order by raised_at", (alert,)).fetchall()


def charged(conn: psycopg.Connection) -> list[tuple[str, int, str | None]]:
    """Every attempt that ended in something other than a completion."""
    return conn.execute(
        "select status, attempt, error from turing.ticket_history where status <> 'completed'"
    ).fetchall()


def test_ollama_stopped_mid_drain_costs_no_attempt_and_heals_by_itself(
        turing: Turing, conn: psycopg.Connection, jobs: int, start_runner: Any) -> None:
    config = FakeConfig(models=fake_models(), time_scale=0.01)
    fake = FakeOllama(config).start()
    port = fake.port
    turing.register_actor(scored_actor(max_attempts=3))
    runner = start_runner("--model", QWEN, "--concurrency", "4", "--ollama-host", fake.base_url)
    try:
        wait_for(lambda: completed(conn, "score") >= 20, timeout=60, what="20 completions")
        fake.stop()  # the outage: connections refused from here on
        wait_for(lambda: alert_log(conn, "backend_down"), timeout=30,
                 what="the backend_down alert")
        outage_done = completed(conn, "score")
        time.sleep(3)  # the outage lasts: far longer than three attempts with no backoff
        assert charged(conn) == [], "an outage must not charge attempts"
        fake = FakeOllama(config, port=port).start()
        back = time.monotonic()
        wait_for(lambda: completed(conn, "score") > outage_done, timeout=30,
                 what="a completion after Ollama came back")
        recovery_s = time.monotonic() - back
        wait_for(lambda: completed(conn, "score") == jobs, timeout=120, what="the whole drain")
        wait_for(lambda: all(c is not None for _, c, _ in alert_log(conn, "backend_down")),
                 timeout=30, what="the backend_down alert to clear")
    finally:
        fake.stop()
    [(raised, cleared, message)] = alert_log(conn, "backend_down")
    assert f"127.0.0.1:{port}" in message and "cannot connect" in message
    assert cleared > raised
    assert charged(conn) == []
    assert [r["attempt"] for r in history(conn, "score")] == [1] * jobs
    assert conn.execute("select count(*) filter (where scored_times = 1), max(scored_times) "
                        "from public.jobs").fetchone() == (jobs, 1), "on_complete ran once each"
    assert open_count(conn) == 0
    assert recovery_s < 10, f"first completion {recovery_s:.1f}s after Ollama came back"
    assert runner.events("breaker_open") and runner.events("breaker_closed")
    kinds = [e["message"]["event"] for e in turing.read_events(limit=1000)]
    assert "alert.raised" in kinds and "alert.cleared" in kinds


def test_a_crashed_model_runner_is_a_fault_not_the_tickets_failure(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models(), faults=[
        FaultRule("crash_runner", after_chunks=2, times=2),
        FaultRule("load_fail", times=1, message="llama runner process has terminated: "
                                                  "exit status 2"),
    ])
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=1))
    for i in range(6):
        turing.submit("classify", f"s{i}", {"skill": f"skill {i}", "count": i})
    start_runner("--model", QWEN, "--ollama-host", fake.base_url, "--concurrency", "2")
    wait_for(lambda: completed(conn, "classify") == 6, timeout=60, what="all six")
    assert charged(conn) == [], "max_attempts=1: a charged fault would have killed a ticket"
    assert sum(r["fired"] for r in fake.faults()) == 3


def test_a_ticket_that_crashes_the_model_runner_every_time_cannot_loop(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    """A crash is a fault (uncharged), but one ticket that crashes the model runner on every
    call is charged after settings.fault_charge_after faults, retried, then dead; the others
    of its model flow meanwhile, and the breaker closes again."""
    fake = fake_ollama(models=fake_models(), faults=[
        FaultRule("crash_runner", prompt_regex="POISON", after_chunks=1)])
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=2))
    turing.submit("classify", "poison", {"skill": "POISON", "count": 1})
    for i in range(8):
        turing.submit("classify", f"ok{i}", {"skill": f"skill {i}", "count": i})
    start_runner("--model", QWEN, "--ollama-host", fake.base_url, "--concurrency", "2")
    wait_for(lambda: open_count(conn, "classify") == 0, timeout=90, what="all nine settled")
    rows = {r["subject_id"]: r for r in history(conn, "classify")}
    assert all(rows[f"ok{i}"]["status"] == "completed" for i in range(8))
    poison = [r for r in history(conn, "classify") if r["subject_id"] == "poison"]
    assert [(r["status"], r["attempt"]) for r in poison] == [("failed", 1), ("dead", 2)]
    assert "failed 3 times in a row on this ticket alone" in poison[-1]["error"]
    assert "model runner stopped" in poison[-1]["error"]


def test_a_poison_ticket_fails_alone_and_its_batch_mates_run(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=3))
    deep = '{"skill": "x", "count": 1, "deep": ' + '{"d": ' * 5000 + "1" + "}" * 5001
    conn.execute("select turing.submit('classify', 'poison', %s::jsonb)", (deep,))
    for i in range(3):
        turing.submit("classify", f"ok{i}", {"skill": f"skill {i}", "count": i})
    start_runner("--model", QWEN, "--ollama-host", fake.base_url, "--batch", "4")
    wait_for(lambda: open_count(conn, "classify") == 0, timeout=60, what="all four settled")
    rows = {r["subject_id"]: r for r in history(conn, "classify")}
    assert {s for s, r in rows.items() if r["status"] == "completed"} == {"ok0", "ok1", "ok2"}
    poison = rows["poison"]
    assert poison["status"] == "dead" and poison["attempt"] == 1, "not retried: same input"
    assert "input" in poison["error"] and "heartbeat" not in poison["error"]


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_a_lost_lease_stops_the_call_at_once(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any,
        backend: str) -> None:
    """The heartbeat finds the lease gone (here: an operator cancels the ticket): the runner
    closes the stream and the server stops generating, long before the call would have ended;
    through Ollama's API and through the OpenAI-compatible one."""
    fake = fake_ollama(models=fake_models(), time_scale=1.0,
                       faults=[FaultRule("slow_tokens", ms=300)])
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=1, timeout="2 minutes",
                                    lease="3 seconds"))
    turing.submit("classify", "slow", {"skill": "x", "count": 1})
    server = (["--ollama-host", fake.base_url] if backend == "ollama"
              else ["--backend", "openai", "--openai-base-url", f"{fake.base_url}/v1"])
    runner = start_runner("--model", QWEN, *server)
    wait_for(lambda: any(e["type"] == "first_token" for e in fake.events()), timeout=60,
             what="the call to stream")
    [ticket_id] = [r[0] for r in conn.execute("select ticket_id from turing.ticket_open")]
    assert turing.cancel_ticket(ticket_id, "operator")
    cancelled = time.monotonic()
    wait_for(lambda: any(e["type"] == "cancel" for e in fake.events()), timeout=10,
             what="Ollama to see the client go")
    assert time.monotonic() - cancelled < 5, "stopped within a heartbeat, not at the deadline"
    runner.wait_event("lease_lost")
    assert not runner.events("finish")
