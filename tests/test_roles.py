"""Each of Turing's roles can do all it is meant to, through the real CLI and runner, and a
command its role may not run says so in one sentence, naming the role, with exit code 9.

The logins are real login roles in turing_viewer / turing_runner / turing_admin (the way the
README tells an operator to create them); the commands run in subprocesses as a user would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import psycopg
import pytest
from conftest import wait_for
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from turing_pg.exits import Exit

TURING = [sys.executable, "-m", "turing_pg.cli"]


def run(*args: str, dsn: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TURING, *args], capture_output=True, text=True, input=stdin,
                          env={**os.environ, "TURING_DSN": dsn}, timeout=120)


@pytest.fixture
def logins(dsn: str, conn: psycopg.Connection) -> Iterator[dict[str, str]]:
    """role -> the DSN of a fresh login that is a member of it (and of nothing else; the admin
    also of the tests' pipeline role)."""
    tag = uuid.uuid4().hex[:8]
    made = {}
    for role in ("turing_viewer", "turing_runner", "turing_admin"):
        login = f"t_{tag}_{role.removeprefix('turing_')}"
        password = f"pw-{uuid.uuid4().hex}"
        conn.execute(sql.SQL("create role {} login password {} in role {}").format(
            sql.Identifier(login), sql.Literal(password), sql.Identifier(role)))
        if role == "turing_admin":
            # why: an admin registers actors that run as the pipeline's role (settings
            # default_run_as in the tests), so the operator makes it a member (README, roles)
            conn.execute(sql.SQL("grant turing_test_app to {}").format(sql.Identifier(login)))
        params = conninfo_to_dict(dsn)
        params.update(user=login, password=password)
        made[role] = (login, make_conninfo(**params))
    try:
        yield {role: d for role, (_, d) in made.items()}
    finally:
        for login, _ in made.values():
            conn.execute(sql.SQL("select pg_terminate_backend(pid) from pg_stat_activity "
                                 "where usename = {}").format(sql.Literal(login)))
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(login)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(login)))


@pytest.fixture
def pipeline(turing, jobs, conn):
    """Two wired actors, a completed ticket (an event), a dead letter and a running runner row:
    something for every read command to show."""
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", inbox=["new"], outbox=["scored"],
        work_query="select id as subject_id, title from public.jobs where status = 'new'",
        on_complete="public.jobs_scored", max_attempts=1))
    turing.register_actor(dict(
        name="reviewer", kind="human", inbox=["scored"], outbox=["reviewed"],
        final_outbox=["reviewed"], output_schema={"type": "object"}))
    turing.register_runner("w", ["cpu"])
    done, bad = turing.claim_batch("cpu", "w", 2)
    turing.complete_ticket(done.ticket_id, done.lease_token, {"score": 1})
    turing.fail_ticket(bad.ticket_id, bad.lease_token, "boom")
    [dead] = [r["ticket_id"] for r in turing.dead_letters()]
    [pending] = [r["ticket_id"] for r in turing.find_tickets(status="pending", limit=1)]
    return {"dead": str(dead), "pending": str(pending)}


# What the viewer may run: every command that only reads. Each must exit 0; {dead} is filled
# in per test.
READS: list[tuple[str, ...]] = [
    ("status",), ("status", "--json"), ("top", "--count", "1", "--interval", "0"),
    ("top", "--count", "1", "--json"), ("graph",), ("graph", "--json"), ("check",),
    ("check", "--json"), ("tickets",), ("tickets", "--json", "--status", "dead"), ("events",),
    ("events", "--json"), ("dead",), ("dead", "--json"), ("metrics",), ("metrics", "--json"),
    ("db", "status"), ("db", "status", "--json"), ("actor", "list"), ("actor", "list", "--json"),
    ("actor", "show", "scorer"), ("actor", "show", "scorer", "--json"), ("chain", "{dead}"),
    ("chain", "{dead}", "--json"), ("actor", "history", "scorer"),
    ("actor", "history", "scorer", "--json"), ("actor", "diff", "scorer", "1", "1"),
    ("actor", "stage", "scorer"), ("actor", "stage", "scorer", "--json"),
    ("tickets", "show", "{dead}"), ("tickets", "show", "{dead}", "--json"),
]
# What only turing_admin may run; {dead} / {pending} / {file} are filled in per test.
WRITES: list[tuple[str, ...]] = [
    ("submit", "scorer", "999"), ("rerun", "scorer", "--subject", "1"),
    ("cancel", "{pending}"), ("retry", "{dead}"), ("dead", "retry", "{dead}"),
    ("actor", "add", "-f", "{file}"), ("actor", "set", "scorer", "max_attempts=5"),
    ("actor", "enable", "scorer"), ("actor", "disable", "scorer"),
    ("actor", "remove", "scorer", "--cancel-open", "--yes"), ("reap",), ("tick",),
    ("events", "--consume"), ("human", "--worker", "viewer"), ("db", "up"), ("db", "up", "--json"),
    ("demo", "--limit", "1"), ("harness", "scorer", "--subject", "1"),
    ("matrix", "scorer", "--models", "cpu"), ("chat", "scorer"),
    ("actor", "promote", "scorer"), ("actor", "demote", "scorer"),
    ("raq", "scorer", "--n", "1"), ("qa", "scorer", "--sample", "1"),
]
# Commands that do not talk to the database a DSN names: the embedded server's own; `web`,
# which connects only as the login each browser gives (tests/test_web.py).
NOT_DATABASE = {"db dsn", "db stop", "web"}


def _command_paths(group: click.Group, prefix: str = "") -> Iterator[str]:
    for name, cmd in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            yield from _command_paths(cmd, f"{path} ")
            if not cmd.invoke_without_command:
                continue
        yield path


def _path(args: tuple[str, ...]) -> str:
    words = [a for a in args if not a.startswith("-")]
    two = words[0] in ("db", "actor") or words[:2] in (["dead", "retry"], ["tickets", "show"])
    return " ".join(words[:2]) if two else words[0]


def test_every_command_is_classified_as_a_read_or_a_write():
    """A new command must be added to READS or WRITES here, so the viewer's catalogue below
    covers it: it either works for the viewer or refuses in one sentence."""
    from turing_pg.cli import main

    covered = {_path(a) for a in READS} | {_path(a) for a in WRITES} | NOT_DATABASE
    assert set(_command_paths(main)) - covered == set()


def _failures(results: list[tuple[tuple[str, ...], subprocess.CompletedProcess[str]]],
              expect: int) -> list[str]:
    bad = []
    for args, proc in results:
        out = proc.stdout + proc.stderr
        if proc.returncode != expect or "Traceback" in out:
            bad.append(f"turing {' '.join(args)} -> {proc.returncode}:\n{out[-1500:]}")
    return bad


def test_the_viewer_runs_every_read_command(pipeline, logins, conn):
    queued = conn.execute("select count(*) from pgmq.q_turing_events").fetchone()[0]
    reads = [tuple(a.format(**pipeline) for a in args) for args in READS]
    results = [(args, run(*args, dsn=logins["turing_viewer"])) for args in reads]
    assert _failures(results, Exit.OK) == []
    shown = {" ".join(a): p.stdout for a, p in results}
    assert "scorer" in shown["status"] and "ticket.completed" in shown["events --json"]
    assert pipeline["dead"] in shown["dead --json"]
    assert json.loads(shown[f"chain {pipeline['dead']} --json"])["progress"]["dead"] == 1
    # watching the events consumed none of them
    assert conn.execute("select count(*) from pgmq.q_turing_events").fetchone()[0] == queued


def test_a_write_as_the_viewer_is_one_sentence_naming_the_role(pipeline, logins, tmp_path):
    (tmp_path / "a.yaml").write_text("name: another\nkind: script\nscript: cat\n")
    results = []
    for template in WRITES:
        args = tuple(a.format(file=tmp_path / "a.yaml", **pipeline) for a in template)
        results.append((args, run(*args, dsn=logins["turing_viewer"])))
    assert _failures(results, Exit.PERMISSION) == []
    for args, proc in results:
        error = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
        assert len(error) == 1, (args, proc.stderr)
        assert "permission denied" in error[0], (args, proc.stderr)
        if args[:2] != ("db", "up") and args[0] != "demo":
            # reap and human call the runner API, which turing_runner may call too
            assert re.search(r": needs role (turing_runner or )?turing_admin$", error[0]), (
                args, error)
        else:
            assert "needs the owner of the turing schema" in error[0], (args, error)


def test_the_admin_operates(pipeline, logins, tmp_path, conn):
    admin = logins["turing_admin"]
    (tmp_path / "a.yaml").write_text("name: another\nkind: script\nscript: cat\n")
    for args in [("submit", "scorer", "999"), ("actor", "add", "-f", str(tmp_path / "a.yaml")),
                 ("actor", "set", "scorer", "max_attempts=5"),
                 ("actor", "remove", "another", "--yes"), ("cancel", pipeline["pending"]),
                 ("dead", "retry", pipeline["dead"]), ("reap",), ("tick",),
                 ("events", "--consume"),
                 *(tuple(a.format(**pipeline) for a in r) for r in READS)]:
        proc = run(*args, dsn=admin)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert conn.execute("select count(*) from pgmq.q_turing_events").fetchone()[0] == 0


def test_a_runner_login_runs_work_and_may_not_read_tickets(pipeline, logins, start_runner,
                                                            conn):
    runner = start_runner("--model", "cpu", "--exit-when-idle", "2",
                          env={"TURING_DSN": logins["turing_runner"]})
    # every job but the fixture's dead one (its attempts are exhausted)
    wait_for(lambda: conn.execute(
        "select count(*) from public.jobs where status = 'scored'").fetchone()[0] == 199,
        timeout=60, what="the runner login scored every job")
    assert runner.wait(60) == 0
    proc = run("tickets", dsn=logins["turing_runner"])
    assert proc.returncode == Exit.PERMISSION and "Traceback" not in proc.stderr
    assert ("error: permission denied for function find_tickets: needs role turing_viewer or "
            "turing_admin") in proc.stderr


def test_a_login_in_no_turing_role_is_told_which_role_to_ask_for(dsn, conn):
    login = f"t_{uuid.uuid4().hex[:8]}_nobody"
    conn.execute(sql.SQL("create role {} login").format(sql.Identifier(login)))
    try:
        params = conninfo_to_dict(dsn)
        params["user"] = login
        proc = run("submit", "scorer", "1", dsn=make_conninfo(**params))
        assert proc.returncode == Exit.PERMISSION, proc.stderr
        assert "Traceback" not in proc.stderr and "permission denied" in proc.stderr
        assert "turing_admin" in proc.stderr
    finally:
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(login)))


def test_the_permission_exit_code_is_documented():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"{Exit.PERMISSION.value} permission denied" in readme
