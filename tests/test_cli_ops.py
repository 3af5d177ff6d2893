"""Operator commands through a subprocess, as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TURING = [sys.executable, "-m", "turing_pg.cli"]


def run(*args: str, dsn: str, stdin: str | None = None, check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*TURING, *args], capture_output=True, text=True, input=stdin,
                          env={**os.environ, "TURING_DSN": dsn}, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"turing {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


@pytest.fixture
def wired(turing, jobs):
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", inbox=["new"], outbox=["scored"],
        work_query="select id as subject_id, title from public.jobs where status = 'new'",
        on_complete="public.jobs_scored", max_attempts=1))
    turing.register_actor(dict(
        name="reviewer", kind="human", inbox=["scored"], outbox=["reviewed"],
        final_outbox=["reviewed"], output_schema={"type": "object"}))
    return turing


def test_graph_prints_mermaid_with_flow_and_source(wired, dsn):
    out = run("graph", dsn=dsn).stdout
    assert out.startswith("flowchart LR")
    assert "a_scorer -->|scored| a_reviewer" in out
    assert 'src_new(("new")) --> a_scorer' in out
    assert "class final_reviewed final" in out
    dot = run("graph", "--format", "dot", dsn=dsn).stdout
    assert dot.startswith("digraph turing") and 'a_scorer -> a_reviewer [label="scored"]' in dot


def test_check_reports_unwired_outbox_and_exits_1(wired, dsn):
    ok = run("check", "--json", dsn=dsn)
    assert not [f for f in json.loads(ok.stdout) if f["severity"] == "error"]
    wired.set_actor("reviewer", {"enabled": False})
    bad = run("check", dsn=dsn, check=False)
    assert bad.returncode == 1
    assert "[error] scorer: writes status scored but no enabled actor reads it" in bad.stdout


def test_check_flags_a_sequential_scan_of_a_large_table(wired, dsn, conn):
    conn.execute("insert into public.jobs (id, title, status) "
                 "select g, 'j', 'archived' from generate_series(201, 30000) g")
    conn.execute("analyze public.jobs")
    findings = json.loads(run("check", "--json", dsn=dsn).stdout)
    assert any(f["check_name"] == "seq_scan" and f["actor"] == "scorer" for f in findings)
    conn.execute("create index jobs_new on public.jobs (id) where status = 'new'")
    conn.execute("analyze public.jobs")
    findings = json.loads(run("check", "--json", dsn=dsn).stdout)
    assert not any(f["check_name"] == "seq_scan" for f in findings)


def test_tickets_dead_and_retry(wired, dsn):
    [t] = wired.claim_batch("cpu", "w", 1)
    wired.fail_ticket(t.ticket_id, t.lease_token, "bad row")
    rows = json.loads(run("tickets", "--status", "dead", "--json", dsn=dsn).stdout)
    assert [(r["ticket_id"], r["error"]) for r in rows] == [(t.ticket_id, "bad row")]
    dead = json.loads(run("dead", "--json", dsn=dsn).stdout)
    assert [d["ticket_id"] for d in dead] == [t.ticket_id]
    out = json.loads(run("dead", "retry", str(t.ticket_id), "--json", dsn=dsn).stdout)
    assert out[str(t.ticket_id)] > t.ticket_id
    assert json.loads(run("dead", "--json", dsn=dsn).stdout) == []


def test_dead_shows_the_newest_first_and_pages(wired, dsn):
    failed = []
    for i in range(3):
        [t] = wired.claim_batch("cpu", "w", 1)
        wired.fail_ticket(t.ticket_id, t.lease_token, f"bad row {i}")
        failed.append(t.ticket_id)
    newest = [d["ticket_id"] for d in json.loads(run("dead", "--json", dsn=dsn).stdout)]
    assert newest == failed[::-1]
    two = json.loads(run("dead", "--limit", "2", "--json", dsn=dsn).stdout)
    assert [d["ticket_id"] for d in two] == failed[:0:-1]
    assert len(json.loads(run("dead", "--limit", "0", "--json", dsn=dsn).stdout)) == 3
    bad = run("dead", "--limit", "-1", dsn=dsn, check=False)
    assert bad.returncode == 2 and "x>=0" in bad.stderr


def _queued_events(conn) -> int:
    return conn.execute("select count(*) from pgmq.q_turing_events").fetchone()[0]


def test_events_prints_without_consuming_unless_asked(wired, dsn, conn):
    [t] = wired.claim_batch("cpu", "w", 1)
    wired.complete_ticket(t.ticket_id, t.lease_token, {"ok": 1})
    queued = _queued_events(conn)
    for _ in range(2):  # a peek leaves the queue as it was, so it shows the same again
        lines = run("events", "--json", dsn=dsn).stdout.splitlines()
        assert {"event": "ticket.completed", "ticket_id": t.ticket_id}.items() <= json.loads(
            next(ln for ln in lines if "ticket.completed" in ln)).items()
        assert _queued_events(conn) == queued
    assert "ticket.completed" in run("events", "--consume", "--json", dsn=dsn).stdout
    assert _queued_events(conn) == 0
    assert "ticket.completed" not in run("events", "--consume", "--json", dsn=dsn).stdout
    # consumed events are archived, and still part of the stream a viewer watches
    assert "ticket.completed" in run("events", "--json", dsn=dsn).stdout


def test_human_answers_at_the_terminal(wired, dsn, conn):
    [t] = wired.claim_batch("cpu", "w", 1)
    wired.complete_ticket(t.ticket_id, t.lease_token, {"score": 1})
    wired.discover("scorer")
    wired.submit("reviewer", t.subject_id, {"title": "job 1"})
    out = run("human", "--worker", "alice", dsn=dsn,
              stdin='\nnot json\n["a list"]\n{"verdict": "ok"}\n').stdout
    assert "not JSON" in out and "must be a JSON object" in out and "saved" in out
    assert conn.execute(
        "select output, worker from turing.tickets "
        "where actor = 'reviewer' and status = 'completed'"
    ).fetchone() == ({"verdict": "ok"}, "alice")


def test_actor_show_and_set(wired, dsn):
    shown = json.loads(run("actor", "show", "scorer", "--json", dsn=dsn).stdout)
    assert shown["kind"] == "script" and shown["outbox"] == ["scored"]
    run("actor", "set", "scorer", "timeout=10 minutes", "max_attempts=5", dsn=dsn)
    shown = json.loads(run("actor", "show", "scorer", "--json", dsn=dsn).stdout)
    assert shown["max_attempts"] == 5 and shown["timeout"] == "00:10:00"
    bad = run("actor", "set", "scorer", "work_query=delete from public.jobs", dsn=dsn, check=False)
    assert bad.returncode == 3 and "must be a SELECT" in bad.stderr
    nope = run("actor", "set", "scorer", "colour=blue", dsn=dsn, check=False)
    assert nope.returncode == 2 and "not an actor field" in nope.stderr


def test_status_and_top_show_dashboard_runners_alerts(wired, dsn):
    wired.register_runner("cpu-1", ["cpu"])
    wired.discover("scorer")
    data = json.loads(run("status", "--json", dsn=dsn).stdout)
    assert {a["actor"] for a in data["actors"]} == {"scorer", "reviewer"}
    assert data["runners"][0]["worker"] == "cpu-1"
    text = run("top", "--count", "1", "--interval", "0", dsn=dsn).stdout
    assert "scorer" in text and "runners:" in text and "alerts:" in text


def test_every_command_has_help_with_an_example():
    from turing_pg.cli import main

    def walk(group, prefix):
        for name, cmd in group.commands.items():
            yield (f"{prefix} {name}".strip(), cmd)
            if hasattr(cmd, "commands"):
                yield from walk(cmd, f"{prefix} {name}")

    missing = [name for name, cmd in walk(main, "")
               if not hasattr(cmd, "commands") and "xample" not in (cmd.help or "")]
    assert missing == []


def test_shell_completion_completes_commands_and_options():
    """The line the README gives (`eval "$(_TURING_COMPLETE=bash_source turing)"`) works, and
    the completion it installs answers with commands and options."""
    # why: completion keys on the program name, so this runs the installed `turing` script.
    turing_cmd = [str(Path(sys.executable).with_name("turing"))]

    def complete(words: str, cword: int) -> list[str]:
        env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword),
               "_TURING_COMPLETE": "bash_complete"}
        proc = subprocess.run(turing_cmd, capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]

    source = subprocess.run(turing_cmd, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "_TURING_COMPLETE": "bash_source"})
    assert "complete -o nosort -F _turing_completion turing" in source.stdout
    assert complete("turing ac", 1) == ["actor"]
    assert "--limit" in complete("turing dead --l", 2)
    assert {"add", "list", "show", "enable", "disable", "set"} <= set(complete("turing actor ", 2))
