"""Turing through a real PgBouncer in transaction mode, as managed PostgreSQL and most
production setups put one in front of the database: no startup parameters, no session state
relied on across transactions (limits, prepared statements, LISTEN).

PgBouncer is Debian's package (`apt-get install pgbouncer`), started here on a free port in
front of the test's PostgreSQL. Without it the tests skip, except where TURING_REQUIRE_PGBOUNCER
is set (CI installs it and sets it, so there they always run)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import wait_for
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from test_runner import QWEN, completed, fake_models, history, llm_actor, submit_many

from turing_pg.db import Turing

PGBOUNCER = shutil.which("pgbouncer") or next(
    (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bouncer:
    """A PgBouncer process in transaction mode in front of one PostgreSQL server."""

    def __init__(self, server_dsn: str, pool_size: int) -> None:
        if PGBOUNCER is None:
            if os.environ.get("TURING_REQUIRE_PGBOUNCER"):
                pytest.fail("TURING_REQUIRE_PGBOUNCER is set but pgbouncer is not installed")
            pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        params = conninfo_to_dict(server_dsn)
        self.user = str(params.get("user") or "postgres")
        # why: its own directory, readable by the unprivileged user PgBouncer drops to as root
        self.dir = Path(tempfile.mkdtemp(prefix="turing-pgbouncer-"))
        self.dir.chmod(0o755)
        self.port = _free_port()
        self.log_path = self.dir / "pgbouncer.log"
        users = self.dir / "users.txt"
        # why: auth_type trust still wants the user listed; the password (if the server needs
        # one) is what PgBouncer logs in to the server with.
        users.write_text(f'"{self.user}" "{params.get("password") or ""}"\n')
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={params.get('host') or '127.0.0.1'} port={params.get('port') or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {users}\n"
            # why: fewer server connections than the runners' clients, so transactions of
            # different clients share them, as in production; session state would leak.
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            "max_client_conn = 500\n")
        for path in (users, ini):
            path.chmod(0o644)
        args = [PGBOUNCER, str(ini)]
        if os.geteuid() == 0:
            args[1:1] = ["-u", "nobody"]  # why: PgBouncer refuses to run as root
        # why: its log goes to stderr, into a file opened here (the user it drops to could not
        # create one)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        self.server_dsn = server_dsn
        deadline = time.monotonic() + 15
        while True:
            try:
                psycopg.connect(self.dsn(server_dsn), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {self.log()}") from None
                time.sleep(0.1)

    def dsn(self, direct_dsn: str) -> str:
        """`direct_dsn` (a database of the server) through this PgBouncer."""
        params = conninfo_to_dict(direct_dsn)
        params.update(host="127.0.0.1", port=str(self.port))
        params.pop("password", None)
        return make_conninfo(**params)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def bouncer(dsn: str) -> Iterator[Bouncer]:
    b = Bouncer(dsn, pool_size=3)
    try:
        yield b
    finally:
        b.stop()


def test_plain_psycopg_with_startup_options_is_what_pgbouncer_refuses(bouncer: Bouncer,
                                                                      dsn: str) -> None:
    """The failure this file guards against: what Turing sent before, refused by PgBouncer."""
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter: options"):
        psycopg.connect(bouncer.dsn(dsn), options="-c statement_timeout=1000").close()


def test_the_statement_timeout_holds_per_call_and_never_stays_on_a_server_connection(
        bouncer: Bouncer, dsn: str, conn: psycopg.Connection, jobs: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURING_STATEMENT_TIMEOUT", "0.5")
    with Turing(bouncer.dsn(dsn), max_size=4) as t:
        t.register_actor(dict(
            name="slow", kind="script", script="cat",
            work_query="select id as subject_id from public.jobs where pg_sleep(0.05) is not null"))
        # many calls, more than psycopg's prepare threshold (5), over 3 server connections
        for _ in range(12):
            assert t.claim_batch("cpu", "w", 5) == []
    error = conn.execute(
        "select d.last_error from turing.actor_discovery d join turing.actors a "
        "using (actor_id) where a.name = 'slow'").fetchone()[0]
    assert error.startswith("work_query cancelled"), error
    # every server connection PgBouncer holds is back at the server's default limit
    with psycopg.connect(bouncer.dsn(dsn), autocommit=True) as plain:
        for _ in range(6):
            assert plain.execute("show statement_timeout").fetchone()[0] == "0"
    assert "unsupported startup parameter" not in bouncer.log()


def test_runners_drain_script_sql_and_llm_work_through_pgbouncer(
        bouncer: Bouncer, dsn: str, turing: Turing, conn: psycopg.Connection, jobs: int,
        fake_ollama: Any, start_runner: Any, tmp_path: Path) -> None:
    fake = fake_ollama(models=fake_models())
    script = tmp_path / "title.py"
    script.write_text("import json, sys\n"
                      "job = json.load(sys.stdin)\n"
                      "print(json.dumps({'title': job['input']['title'].upper()}))\n")
    # discovered work (a work_query and an on_complete writing the domain rows) ...
    turing.register_actor(dict(
        name="score", kind="script", script=f"python {script}", timeout="10 seconds",
        work_query="select id as subject_id, title from public.jobs where status = 'new' "
                   "and id <= 40",
        on_complete="public.jobs_scored", inbox=["new"], outbox=["scored"]))
    conn.execute("create function public.double_it(p_subject_id text, p_input jsonb) "
                 "returns jsonb language sql as $$ select jsonb_build_object('n2', "
                 "(p_input ->> 'n')::int * 2) $$")
    # ... submitted work run inside the database, and LLM calls
    turing.register_actor(dict(name="doubler", kind="sql", sql_function="public.double_it"))
    for i in range(30):
        turing.submit("doubler", f"d{i}", {"n": i})
    turing.register_actor(llm_actor("classify", QWEN))
    submit_many(turing, "classify", 30)
    through = {"TURING_DSN": bouncer.dsn(dsn)}
    cpu = start_runner("--model", "cpu", "--concurrency", "4", env=through)
    gpu = start_runner("--model", QWEN, "--concurrency", "4", "--ollama-host", fake.base_url,
                       env=through)
    wait_for(lambda: completed(conn, "score") == 40 and completed(conn, "doubler") == 30
             and completed(conn, "classify") == 30, timeout=60, what="all work completed")
    assert conn.execute("select count(*) from public.jobs where status = 'scored' "
                        "and score ->> 'title' = upper(title)").fetchone()[0] == 40
    assert {r["output"]["n2"] for r in history(conn, "doubler")} == {2 * i for i in range(30)}
    assert {r["status"] for r in history(conn, "classify")} == {"completed"}
    for runner in (cpu, gpu):
        [polling] = runner.wait_event("wakeup_polling")
        assert "PgBouncer" in polling["reason"] and "--listen-dsn" in polling["hint"]
        for bad in ("fault", "db_unavailable", "discovery_error", "error"):
            assert runner.events(bad) == [], (bad, runner.events(bad))
    log = bouncer.log()
    assert "unsupported startup parameter" not in log and "prepared statement" not in log


def test_a_direct_listen_dsn_wakes_a_runner_behind_pgbouncer_at_once(
        bouncer: Bouncer, dsn: str, turing: Turing, conn: psycopg.Connection,
        start_runner: Any) -> None:
    turing.register_actor(dict(name="echo", kind="script", script="cat"))
    runner = start_runner("--model", "cpu", "--poll-interval", "30", "--listen-dsn", dsn,
                          env={"TURING_DSN": bouncer.dsn(dsn)})
    runner.wait_event("listening")
    runner.wait_event("startup")
    time.sleep(0.5)  # why: past the first claim, so only a wake-up can claim the next ticket
    turing.submit("echo", "now", {"x": 1})
    started = time.monotonic()
    wait_for(lambda: completed(conn, "echo") == 1, timeout=10, what="the woken claim")
    assert time.monotonic() - started < 5, "woken by NOTIFY, not by the 30 s poll"
    assert runner.events("wakeup_polling") == []


def test_the_pgmq_python_client_sends_to_the_inbox_with_init_extension_false(
        dsn: str, turing: Turing, conn: psycopg.Connection) -> None:
    """What the README tells users of the `pgmq` client: Turing's PGMQ is the SQL-only install,
    so the client must not try CREATE EXTENSION (the server has no pgmq extension)."""
    from pgmq import PGMQueue

    turing.register_actor(dict(name="echo", kind="script", script="cat"))
    with pytest.raises(psycopg.Error, match="pgmq"):
        PGMQueue(conn_string=dsn, pool_size=1)  # init_extension defaults to True
    queue = PGMQueue(conn_string=dsn, pool_size=1, init_extension=False)
    try:
        queue.send("turing_inbox", {"actor": "echo", "subject_id": "42", "input": {"a": 1}})
    finally:
        queue.pool.close()
    turing.drain_inbox()
    assert conn.execute("select count(*) from turing.ticket_open where subject_id = '42'"
                        ).fetchone()[0] == 1
