"""Chaos: the database goes away under running runners, and they heal with no manual step.

Each test starts what it breaks (an embedded server of its own, or kills only the backends of
its own database) and checks the same four things: nothing lost, no on_complete applied twice,
no attempt charged to the infrastructure, recovery by itself."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import use_test_pipeline_role, wait_for
from test_cli import run as turing_cli
from test_runner import QWEN, completed, history, llm_actor, open_count, submit_many
from test_runner_actors import script_actor
from test_runner_recovery import EFFECTS_DDL, effects, slow_models

from turing_pg import schema
from turing_pg.db import Turing
from turing_pg.pgserver import EmbeddedServer

# the target: the first completion within 5 s of the database coming back (bench/recovery.py
# measures it on a quiet machine); CI runs on shared cores, so the test leaves room for that.
FIRST_COMPLETION_BOUND_S = 10.0


@pytest.fixture
def own_server() -> Iterator[EmbeddedServer]:
    """An embedded server of this test's own, with the schema, so the test may stop it."""
    home = Path(tempfile.mkdtemp(prefix="turing-chaos-"))
    server = EmbeddedServer(home)
    schema.upgrade(server.ensure_running().dsn())
    use_test_pipeline_role(server.ensure_running().dsn())
    try:
        yield server
    finally:
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def holding_port(port: int) -> Iterator[None]:
    """Another program on 127.0.0.1:port: it accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # why: the stopped server's closed connections may linger in TIME_WAIT on that port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def assert_healed(conn: psycopg.Connection, runner: Any, actors: dict[str, int]) -> None:
    """Everything completed at its first attempt, each on_complete exactly once, nothing open,
    no failure logged, and the runner still up."""
    for actor, n in actors.items():
        rows = history(conn, actor)
        assert [(r["status"], r["attempt"]) for r in rows] == [("completed", 1)] * n, \
            f"{actor}: nothing lost, no attempt charged to the infrastructure"
    assert open_count(conn) == 0
    assert effects(conn) == {r["subject_id"]: 1 for a in actors for r in history(conn, a)}, \
        "each on_complete applied once"
    assert not runner.events("fail") and not runner.events("report_lost")
    assert runner.proc.poll() is None, "the runner kept running"


def drain_on_own_server(server: EmbeddedServer, fake_ollama: Any, start_runner: Any, n: int,
                        lease: str) -> tuple[dict[str, str], Any]:
    """n slow LLM tickets (2 s calls, 2 at once) on the test's own server, and a runner
    started without --dsn, so it resolves the embedded server of TURING_HOME; returns the
    environment of the test's CLI calls and the runner, once two calls are in flight."""
    env = {"TURING_HOME": str(server.home), "TURING_DSN": ""}
    dsn = server.running().dsn()
    fake = fake_ollama(models=slow_models(2.0), time_scale=1.0, num_parallel=2)
    with Turing(dsn) as t, psycopg.connect(dsn, autocommit=True) as c:
        c.execute(EFFECTS_DDL)
        t.register_actor(llm_actor("classify", QWEN, on_complete="public.record_effect",
                                   timeout="120 seconds", lease=lease))
        submit_many(t, "classify", n)
    runner = start_runner("--model", QWEN, "--concurrency", "2", "--batch", "2",
                          "--ollama-host", fake.base_url, env=env)
    assert runner.wait_event("config")[0]["dsn_from"] == "embedded"
    runner.wait_event("start", count=2)  # two calls in flight, two claims waiting
    return env, runner


@pytest.mark.parametrize("old_port", ["free", "taken"])
def test_embedded_database_stopped_and_started_again_runner_follows_it(
        own_server: EmbeddedServer, fake_ollama: Any, start_runner: Any, old_port: str) -> None:
    server = own_server
    env, runner = drain_on_own_server(server, fake_ollama, start_runner, 8, "60 seconds")
    port = server.running().port
    assert turing_cli("db", "stop", env=env).stdout.strip() == "stopped"
    runner.wait_event("db_unavailable", timeout=20)
    with holding_port(port) if old_port == "taken" else contextlib.nullcontext():
        time.sleep(3)  # the calls in flight end while the server is down; results are held
        assert not runner.events("finish")
        assert server.running() is None, "a runner never starts a server an operator stopped"
        up = turing_cli("db", "dsn", env=env)  # a new start, as any command makes one
        back = time.monotonic()
        info = server.running()
        if old_port == "free":
            assert info.port == port, "the new start takes the old port again"
        else:
            assert info.port != port, "the old port is taken: another one"
            assert f"port {port}" in up.stderr, "and the operator is told"
        with psycopg.connect(info.dsn(), autocommit=True) as conn:
            wait_for(lambda: completed(conn, "classify") >= 1, timeout=30,
                     what="a first completion after the new start")
            first_s = time.monotonic() - back
            wait_for(lambda: completed(conn, "classify") == 8, timeout=60,
                     what="all 8 completed")
            assert_healed(conn, runner, {"classify": 8})
    print(f"database back -> first completion: {first_s:.2f} s")
    assert first_s < FIRST_COMPLETION_BOUND_S, f"first completion {first_s:.1f} s after"
    assert runner.events("db_back")
    moved = runner.events("dsn_changed")
    if old_port == "free":
        assert not moved
    else:
        assert moved and moved[0]["to"].endswith(f"port={info.port}")


KILLER_SQL = """
select count(pg_terminate_backend(pid)) from pg_stat_activity
where datname = current_database() and pid <> pg_backend_pid() and application_name = 'turing'
"""

SQL_ACTOR_DDL = """
create table public.sql_calls (subject_id text not null);
create function public.slow_double(p_subject_id text, p_input jsonb) returns jsonb
language plpgsql as $$
begin
    -- why: a call that takes a while, so the killer also lands mid-call
    perform pg_sleep(0.05);
    insert into public.sql_calls (subject_id) values (p_subject_id);
    return jsonb_build_object('n2', (p_input ->> 'n')::int * 2);
end $$;
"""


@contextlib.contextmanager
def killing_backends(dsn: str, every_s: float) -> Iterator[list[int]]:
    """pg_terminate_backend of every Turing session of this test's database (and only of it),
    over and over; yields how many each round killed."""
    kills: list[int] = []
    done = threading.Event()

    def kill() -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            while not done.wait(every_s):
                kills.append(c.execute(KILLER_SQL).fetchone()[0])

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    try:
        yield kills
    finally:
        done.set()
        thread.join(timeout=10)


def test_backends_killed_over_and_over_charge_no_attempt_and_lose_nothing(
        dsn: str, turing: Turing, conn: psycopg.Connection, start_runner: Any,
        tmp_path: Path) -> None:
    conn.execute(EFFECTS_DDL)
    conn.execute(SQL_ACTOR_DDL)
    # max_attempts = 1: a single attempt charged to a killed backend would leave it dead
    turing.register_actor(script_actor("echo", tmp_path, """
        import json, sys, time
        job = json.load(sys.stdin)
        time.sleep(0.1)
        print(json.dumps({"subject": job["subject_id"]}))
    """, on_complete="public.record_effect", timeout="60 seconds", lease="20 seconds"))
    turing.register_actor(dict(name="double", kind="sql", sql_function="public.slow_double",
                               on_complete="public.record_effect", max_attempts=1,
                               timeout="60 seconds", lease="20 seconds"))
    n = 40
    for i in range(n):
        turing.submit("echo", f"e{i}", {})
        turing.submit("double", f"d{i}", {"n": i})
    runner = start_runner("--model", "cpu", "--concurrency", "4")
    runner.wait_event("start", count=4)
    with killing_backends(dsn, every_s=0.2) as kills:
        wait_for(lambda: len(history(conn, "echo")) + len(history(conn, "double")) >= 3 * n // 2,
                 timeout=60, what="most of the work finished under fire")
    assert sum(kills) >= 10, f"the killer hit the runner's sessions ({kills})"
    wait_for(lambda: open_count(conn) == 0, timeout=30, what="all settled")
    assert_healed(conn, runner, {"echo": n, "double": n})
    calls = conn.execute(
        "select subject_id, count(*) from public.sql_calls group by subject_id").fetchall()
    assert dict(calls) == {f"d{i}": 1 for i in range(n)}, "each sql function's effect once"
    assert runner.events("db_unavailable") or runner.events("sql_retry") \
        or runner.events("report_error"), "the killed sessions were noticed"


def test_a_restart_longer_than_the_lease_charges_nothing(
        own_server: EmbeddedServer, fake_ollama: Any, start_runner: Any) -> None:
    """The database is down for longer than the lease: every lease in flight ran out while it
    was down. The first reap after the new start leaves them to their holder, which
    heartbeats and reports them with their tokens: nothing is charged."""
    server = own_server
    env, runner = drain_on_own_server(server, fake_ollama, start_runner, 6, "2 seconds")
    assert turing_cli("db", "stop", env=env).stdout.strip() == "stopped"
    runner.wait_event("db_unavailable", timeout=20)
    time.sleep(5)  # more than twice the lease
    turing_cli("db", "dsn", env=env)
    with psycopg.connect(server.running().dsn(), autocommit=True) as conn:
        wait_for(lambda: completed(conn, "classify") == 6, timeout=60, what="all 6 completed")
        assert_healed(conn, runner, {"classify": 6})
