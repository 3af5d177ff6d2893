"""Recovery without babysitting: SIGKILL, late results, SIGTERM, the database going away.

Real runner processes, real signals, a real PostgreSQL (restarted for real in the last tests)."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import use_test_pipeline_role, wait_for
from test_runner import QWEN, completed, fake_models, history, llm_actor, open_count, submit_many

from turing_pg import schema
from turing_pg.db import Turing
from turing_pg.fake_ollama import ModelSpec

EFFECTS_DDL = """
create table public.effects (subject_id text not null, ticket_id bigint not null);
create function public.record_effect(p_ticket_id bigint, p_subject_id text, p_input jsonb,
                                     p_output jsonb)
returns void language sql as $$
    insert into public.effects (subject_id, ticket_id) values (p_subject_id, p_ticket_id)
$$;
"""


def effects(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        "select subject_id, count(*) from public.effects group by subject_id").fetchall()
    return {r[0]: r[1] for r in rows}


def slow_models(seconds_per_call: float) -> list[ModelSpec]:
    """Models whose answers take about seconds_per_call (at time_scale 1; an answer to the test
    schema is about 10 tokens)."""
    return fake_models(decode_tok_s=10 / seconds_per_call, load_s=0.0)


def test_sigkilled_runner_work_is_rerun_by_another_runner_nothing_lost_nothing_twice(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    conn.execute(EFFECTS_DDL)
    fake = fake_ollama(models=slow_models(1.5), time_scale=1.0, num_parallel=4)
    turing.register_actor(llm_actor("classify", QWEN, on_complete="public.record_effect",
                                    lease="2 seconds", timeout="20 seconds"))
    submit_many(turing, "classify", 8)
    victim = start_runner("--model", QWEN, "--concurrency", "4", "--batch", "8",
                          "--ollama-host", fake.base_url)
    victim.wait_event("start", count=4)  # 4 calls in flight
    held = conn.execute("select count(*) from turing.ticket_open where status = 'running'"
                        ).fetchone()[0]
    assert held == 8, "the whole batch is claimed by the victim"
    victim.signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()

    rescuer = start_runner("--model", QWEN, "--concurrency", "4", "--ollama-host", fake.base_url)
    wait_for(lambda: completed(conn, "classify") == 8, timeout=40, what="all 8 re-run")
    recovery_s = time.monotonic() - killed_at
    assert open_count(conn) == 0
    # every subject's effect exactly once, although 4 attempts died mid-call
    assert effects(conn) == {f"s{i}": 1 for i in range(8)}
    rows = history(conn, "classify")
    dead_attempts = [r for r in rows if r["status"] != "completed"]
    # the 4 calls in flight died with the runner and are charged; the 4 claimed ahead never
    # started, so they went back to pending as they were (attempt 1, nothing charged)
    assert len(dead_attempts) == 4
    assert {r["status"] for r in dead_attempts} == {"timed_out"}
    assert all("stopped heartbeating while the attempt ran" in r["error"] for r in dead_attempts)
    done = [r for r in rows if r["status"] == "completed"]
    assert sorted(r["attempt"] for r in done) == [1] * 4 + [2] * 4
    victim_name = victim.events("startup")[0]["worker"]
    assert {r["worker"] for r in dead_attempts} == {victim_name}
    assert rescuer.events("finish")
    # bounded by lease (2 s) + reap interval (0.5 s) + the re-run itself (2 rounds of ~1.5 s)
    assert recovery_s < 2 + 0.5 + 2 * 1.5 + 5


def test_late_result_of_a_call_that_outlived_its_lease_is_discarded(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    conn.execute(EFFECTS_DDL)
    fake = fake_ollama(models=slow_models(2.0), time_scale=1.0, num_parallel=2)
    turing.register_actor(llm_actor("classify", QWEN, on_complete="public.record_effect",
                                    lease="1 second", timeout="30 seconds"))
    submit_many(turing, "classify", 1)
    slow = start_runner("--model", QWEN, "--concurrency", "1", "--ollama-host", fake.base_url)
    slow.wait_event("start")
    # a stalled runner: alive, its call still in flight, but it stops extending the lease
    slow.signal(signal.SIGSTOP)
    try:
        other = start_runner("--model", QWEN, "--concurrency", "1", "--ollama-host",
                             fake.base_url)
        wait_for(lambda: completed(conn, "classify") == 1, timeout=30, what="the re-run")
        winner = next(r for r in history(conn, "classify") if r["status"] == "completed")
    finally:
        slow.signal(signal.SIGCONT)
    discarded = slow.wait_event("discard", timeout=20)
    assert discarded[0]["ticket"] != winner["ticket_id"]
    assert "lease lost" in discarded[0]["reason"]
    assert other.events("finish")[0]["ticket"] == winner["ticket_id"]
    # the re-run's result stands; the late one wrote nothing
    assert effects(conn) == {"s0": 1}
    assert conn.execute("select ticket_id from public.effects").fetchone()[0] == \
        winner["ticket_id"]


def test_sigterm_mid_batch_returns_unstarted_claims_at_once_and_exits_zero(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=slow_models(2.0), time_scale=1.0)
    turing.register_actor(llm_actor("classify", QWEN, timeout="30 seconds"))
    submit_many(turing, "classify", 6)
    runner = start_runner("--model", QWEN, "--concurrency", "2", "--batch", "6",
                          "--ollama-host", fake.base_url)
    runner.wait_event("start", count=2)  # 2 calls running, 4 claims waiting
    runner.signal(signal.SIGTERM)
    signalled = time.monotonic()
    wait_for(lambda: conn.execute(
        "select count(*) from turing.ticket_open where status = 'pending'").fetchone()[0] == 4,
        timeout=5, what="4 unstarted claims back to pending")
    released_s = time.monotonic() - signalled
    assert released_s < 1.5, "released at once, not after the running calls"
    assert runner.wait(timeout=30) == 0
    # the two running calls finished normally; nothing is "interrupted"
    assert completed(conn, "classify") == 2
    statuses = {r["status"] for r in history(conn, "classify")}
    assert statuses == {"completed"}
    pending = conn.execute(
        "select attempt, last_error from turing.ticket_open where status = 'pending'").fetchall()
    assert pending == [(1, None)] * 4
    runner_row = conn.execute("select status from turing.runners").fetchone()[0]
    assert runner_row == "stopped"


@pytest.fixture
def own_server() -> Any:
    """A PostgreSQL server of this test's own, so the test may restart it."""
    from turing_pg.pgserver import EmbeddedServer

    home = Path(tempfile.mkdtemp(prefix="turing-restart-"))
    server = EmbeddedServer(home)
    info = server.ensure_running()
    dsn = info.dsn()
    schema.upgrade(dsn)
    use_test_pipeline_role(dsn)
    try:
        yield server, dsn
    finally:
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)


def test_runner_survives_a_database_restart_and_reports_afterwards(
        own_server: Any, fake_ollama: Any, start_runner: Any) -> None:
    server, dsn = own_server
    fake = fake_ollama(models=slow_models(3.0), time_scale=1.0, num_parallel=2)
    with Turing(dsn) as t:
        t.register_actor(llm_actor("classify", QWEN, timeout="60 seconds", lease="30 seconds"))
        submit_many(t, "classify", 4)
    runner = start_runner("--model", QWEN, "--concurrency", "2", "--ollama-host",
                          fake.base_url, env={"TURING_DSN": dsn})
    runner.wait_event("start", count=2)
    # the server goes down while two calls are in flight, and stays down while they finish
    server._pg("pg_ctl", "-D", str(server.pgdata), "-m", "immediate", "-w", "stop", timeout=90)
    runner.wait_event("db_unavailable", timeout=20)
    time.sleep(4)  # the calls (3 s) end while the database is away; their results are held
    assert not runner.events("finish")
    # pg_ctl restart reuses the stopped server's options (same port, same log)
    server._pg("pg_ctl", "-D", str(server.pgdata), "-l", str(server.log_path), "-w", "restart",
               timeout=90)
    back = runner.wait_event("db_back", timeout=60)
    # the two calls in flight at the stop (and, with one batch of prefetch, maybe the two that
    # started after them) finished while the database was away: their results were held
    assert back[0]["unreported"] >= 2
    with psycopg.connect(dsn, autocommit=True) as conn:
        wait_for(lambda: completed(conn, "classify") == 4, timeout=60, what="all 4 completed")
        assert open_count(conn) == 0
    assert runner.proc.poll() is None, "the runner kept running"


def test_killed_backends_are_survived(turing: Turing, conn: psycopg.Connection,
                                      fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=slow_models(1.0), time_scale=1.0, num_parallel=2)
    turing.register_actor(llm_actor("classify", QWEN, timeout="30 seconds"))
    submit_many(turing, "classify", 6)
    runner = start_runner("--model", QWEN, "--concurrency", "2", "--ollama-host",
                          fake.base_url)
    runner.wait_event("start", count=2)
    killed = conn.execute(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity "
        "where datname = current_database() and pid <> pg_backend_pid() "
        "and application_name = 'turing'").fetchone()[0]
    assert killed >= 1
    wait_for(lambda: completed(conn, "classify") == 6, timeout=40, what="all 6 completed")
    runner.wait_event("listener_lost")
    assert runner.proc.poll() is None
