"""No credential is printed, logged or stored.

The CLI and real runners are given known passwords, in the DSN and in the Ollama host, and made to
go through every path that shows a DSN or a host or an error: `db up --json`, the read
commands, error messages (an unknown actor, an unreachable and an unparsable DSN), the runner's
log lines (config, faults, the breaker, a database it cannot reach), a script that prints the
DSN on stderr, and the events, alerts and backend states they leave. Then every output and
every row of Turing's tables (and of the pgmq queues) is searched for the passwords.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import wait_for
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from turing_pg.credentials import mask_dsn, mask_url, passwords_in, redact
from turing_pg.fake_ollama import ModelSpec

TURING = [sys.executable, "-m", "turing_pg.cli"]
QWEN = "qwen2.5:7b"
DOWN = "llama3.1:8b"  # served through an Ollama host that does not answer
# why: distinctive, so a hit is a leak and never a coincidence; the URL one needs no quoting.
DB_PASSWORD = f"Db-Secret-{uuid.uuid4().hex[:12]}"
OLLAMA_PASSWORD = f"OllamaSecret{uuid.uuid4().hex[:12]}"
PASSWORDS = (DB_PASSWORD, OLLAMA_PASSWORD)


def run(*args: str, dsn: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TURING, *args], capture_output=True, text=True,
                          env={**os.environ, "TURING_DSN": dsn, **(env or {})}, timeout=120)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def secret_dsn(dsn: str, conn: psycopg.Connection) -> Iterator[str]:
    """The test database through a login with a known password, allowed to run `db up`."""
    if not conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]:
        pytest.skip("needs a superuser to create a login that may run `turing db up`")
    login = f"t_{uuid.uuid4().hex[:8]}_secret"
    conn.execute(sql.SQL("create role {} login superuser password {}").format(
        sql.Identifier(login), sql.Literal(DB_PASSWORD)))
    params = conninfo_to_dict(dsn)
    params.update(user=login, password=DB_PASSWORD)
    try:
        yield make_conninfo(**params)
    finally:
        conn.execute(sql.SQL("select pg_terminate_backend(pid) from pg_stat_activity "
                             "where usename = {}").format(sql.Literal(login)))
        # why: its `db up` re-created the views, so it owns them now
        conn.execute(sql.SQL("reassign owned by {} to current_user").format(
            sql.Identifier(login)))
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(login)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(login)))


def _leaks(texts: dict[str, str]) -> list[str]:
    return [f"{label}: {text[:3000]}" for label, text in texts.items()
            if any(p in text for p in PASSWORDS)]


def _rows_with_passwords(conn: psycopg.Connection) -> list[str]:
    """Every table of the schemas turing and pgmq, each row read whole as text."""
    tables = conn.execute(
        "select n.nspname, c.relname from pg_class as c "
        "join pg_namespace as n on n.oid = c.relnamespace "
        "where n.nspname in ('turing', 'pgmq') and c.relkind in ('r', 'p') "
        "order by 1, 2").fetchall()
    assert len(tables) > 20
    found = []
    for schema, table in tables:
        for password in PASSWORDS:
            n = conn.execute(
                sql.SQL("select count(*) from {} as r where r::text like {}").format(
                    sql.Identifier(schema, table), sql.Literal(f"%{password}%"))).fetchone()[0]
            if n:
                found.append(f"{schema}.{table}: {n} row(s) hold {password}")
    return found


def test_no_password_is_printed_logged_or_stored(secret_dsn: str, conn: psycopg.Connection,
                                                 fake_ollama: Any, start_runner: Any,
                                                 tmp_path: Path) -> None:
    fake = fake_ollama(models=[ModelSpec(name=QWEN)])
    good_host = fake.base_url.replace("://", f"://turing:{OLLAMA_PASSWORD}@")
    down_host = f"http://turing:{OLLAMA_PASSWORD}@127.0.0.1:{_closed_port()}"
    out: dict[str, str] = {}

    def cli(label: str, *args: str, dsn: str = secret_dsn, code: int | None = 0) -> str:
        proc = run(*args, dsn=dsn)
        out[label] = proc.stdout + proc.stderr
        if code is not None:
            assert proc.returncode == code, f"turing {' '.join(args)}: {out[label]}"
        return proc.stdout

    cli("db up --json", "db", "up", "--json")
    (tmp_path / "actors.yaml").write_text(f"""
actors:
  - name: classify
    kind: llm
    model: {QWEN}
    prompt_template: "Classify {{skill}}"
    output_schema: {{type: object, properties: {{label: {{type: string}}}}, required: [label]}}
  - name: classify_down
    kind: llm
    model: {DOWN}
    prompt_template: "Classify {{skill}}"
    output_schema: {{type: object}}
  - name: leaky_script
    kind: script
    # prints the DSN it inherited from the runner, then fails: its stderr becomes the error
    script: >-
      python -c "import os, sys; sys.stderr.write('dsn was ' + os.environ['TURING_DSN']);
      sys.exit(1)"
    max_attempts: 1
""")
    cli("actor add", "actor", "add", "-f", str(tmp_path / "actors.yaml"))
    for i in range(3):
        cli(f"submit {i}", "submit", "classify", f"s{i}", "--input", '{"skill": "sql"}')
    cli("submit down", "submit", "classify_down", "d1", "--input", '{"skill": "sql"}')
    cli("submit leaky", "submit", "leaky_script", "l1")

    env = {"TURING_DSN": secret_dsn}
    runners = [
        start_runner("--model", QWEN, "--ollama-host", good_host, env=env),
        start_runner("--model", DOWN, "--ollama-host", down_host, env=env),
        start_runner("--model", "cpu", env=env),
    ]
    wait_for(lambda: conn.execute(
        "select count(*) from turing.tickets where actor = 'classify' and status = 'completed'"
    ).fetchone()[0] == 3, timeout=60, what="3 llm tickets completed")
    runners[1].wait_event("breaker_open", timeout=60)
    wait_for(lambda: conn.execute(
        "select count(*) from turing.tickets where actor = 'leaky_script' and status = 'dead'"
    ).fetchone()[0] == 1, timeout=60, what="the leaky script's ticket dead")
    cli("tick", "tick", "--json")  # alerts (backend_down) and their events

    # what is shown on purpose is shown masked, not dropped
    [info] = conn.execute("select info from turing.runners where models = %s",
                          ([QWEN],)).fetchone()
    assert info["model_server"] == mask_url(good_host) and "***" in info["model_server"]
    [config] = runners[0].events("config")
    assert config["dsn"] == mask_dsn(secret_dsn) and config["ollama_host"] == mask_url(good_host)
    error = conn.execute("select error from turing.tickets where actor = 'leaky_script'"
                         ).fetchone()[0]
    assert "dsn was" in error and "***" in error

    for args in [("status", "--json"), ("status",), ("top", "--count", "1", "--json"),
                 ("tickets", "--json", "--limit", "1000"), ("tickets",), ("events", "--json"),
                 ("dead", "--json"), ("metrics", "--json"), ("db", "status", "--json"),
                 ("actor", "list", "--json"), ("actor", "show", "classify"), ("check", "--json"),
                 ("graph",), ("status", "-v"), ("events", "--consume", "--json")]:
        cli(" ".join(args), *args)
    cli("unknown actor", "submit", "ghost", "1", code=4)
    params = conninfo_to_dict(secret_dsn)
    params.update(port=str(_closed_port()), connect_timeout="2")
    unreachable = make_conninfo(**params)
    cli("unreachable", "status", dsn=unreachable, code=7)
    uri = f"postgresql://someone:{DB_PASSWORD}@127.0.0.1:{_closed_port()}/x?connect_timeout=2"
    cli("unreachable uri", "status", dsn=uri, code=7)
    cli("unparsable", "status", dsn=f"host=127.0.0.1 password={DB_PASSWORD} junk", code=None)
    cli("db up unreachable", "db", "up", "--json", dsn=uri, code=7)

    # a runner that cannot reach its database logs why, and stops on SIGTERM
    lost = start_runner("--model", "cpu", env={"TURING_DSN": uri})
    lost.wait_event("db_unavailable", timeout=30)
    lost.signal(signal.SIGTERM)
    assert lost.wait(30) == 0
    for runner in runners:
        runner.stop()
    for i, runner in enumerate([*runners, lost]):
        out[f"runner {i} log"] = runner.log_path.read_text()
    assert "breaker_open" in out["runner 1 log"] and "db_unavailable" in out["runner 3 log"]

    assert _leaks(out) == []
    assert _rows_with_passwords(conn) == []


def test_the_dsn_command_prints_the_dsn_whole(secret_dsn: str) -> None:
    """`turing db dsn` is asked for the DSN (`psql "$(turing db dsn)"`): the one exception."""
    assert run("db", "dsn", dsn=secret_dsn).stdout.strip() == secret_dsn


@pytest.mark.parametrize("source", [
    f"postgresql://u:{DB_PASSWORD}@h:5432/db",
    f"host=h user=u password={DB_PASSWORD} dbname=db",
    f"host=h password='{DB_PASSWORD}' junk",  # libpq cannot parse it; the net still can
    f"http://u:{DB_PASSWORD}@[::1]:11434",
])
def test_every_form_of_a_dsn_or_url_gives_up_its_password(source: str) -> None:
    assert DB_PASSWORD in passwords_in(source)
    redact.hide(source)
    try:
        assert redact(f"error: {source}") == f"error: {source.replace(DB_PASSWORD, '***')}"
    finally:
        redact.forget()


def test_mask_url_keeps_the_host_as_written() -> None:
    assert mask_url("http://u:p%40ss@[::1]:11434/x") == "http://u:***@[::1]:11434/x"
    assert mask_url("http://127.0.0.1:11434") == "http://127.0.0.1:11434"
