"""`turing actor remove`: an actor leaves the pipeline, its history stays readable, and its
name can be used again. Through the real CLI, as an operator would run it."""

from __future__ import annotations

import json

import pytest
from test_cli_ops import run

from turing_pg.exits import Exit


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


def _finish_one(turing) -> int:
    [t] = turing.claim_batch("cpu", "w", 1)
    turing.complete_ticket(t.ticket_id, t.lease_token, {"score": 1})
    return t.ticket_id


def test_remove_is_refused_while_work_is_open(wired, dsn, conn):
    wired.discover("scorer")
    open_ = conn.execute("select count(*) from turing.ticket_open").fetchone()[0]
    proc = run("actor", "remove", "scorer", "--yes", dsn=dsn, check=False)
    assert proc.returncode == Exit.REFUSED, proc.stderr
    assert f'actor "scorer" has {open_} open ticket(s)' in proc.stderr
    assert "--cancel-open" in proc.stderr and "Traceback" not in proc.stderr
    assert conn.execute("select count(*) from turing.actors where name = 'scorer'"
                        ).fetchone()[0] == 1


def test_remove_cancels_open_work_and_keeps_history_readable(wired, dsn, conn):
    done = _finish_one(wired)
    [running] = wired.claim_batch("cpu", "w", 1)
    pending = conn.execute("select count(*) from turing.ticket_open where status = 'pending'"
                           ).fetchone()[0]
    out = json.loads(run("actor", "remove", "scorer", "--cancel-open", "--yes", "--json",
                         dsn=dsn).stdout)
    assert out["cancelled"] == pending + 1 and out["history"] == pending + 2
    # the status scorer read is no longer anybody's: nothing else writes `new`, so no note;
    # the reviewer's inbox `scored` lost its writer, which check reports as unfed, not an error
    assert out["unwired"] == []
    # the late result of the attempt that was running is refused by its fence
    assert not wired.complete_ticket(running.ticket_id, running.lease_token, {"late": 1})
    history = json.loads(run("tickets", "--actor", "scorer", "--limit", "1000", "--json",
                             dsn=dsn).stdout)
    assert {t["status"] for t in history} == {"completed", "cancelled"}
    assert done in {t["ticket_id"] for t in history}
    assert conn.execute("select count(*) from turing.ticket_open").fetchone()[0] == 0
    # the live views and commands forget it
    status = json.loads(run("status", "--json", dsn=dsn).stdout)
    assert [a["actor"] for a in status["actors"]] == ["reviewer"]
    assert "scorer" not in run("graph", dsn=dsn).stdout
    findings = json.loads(run("check", "--json", dsn=dsn).stdout)
    assert not [f for f in findings if f.get("actor") == "scorer"]
    assert not [f for f in findings if f["severity"] == "error"]
    assert json.loads(run("dead", "--json", dsn=dsn).stdout) == []
    assert conn.execute("select count(*) from pg_proc where pronamespace = "
                        "'turing_actor'::regnamespace and proname like %s",
                        (f"a{out['actor_id']}\\_%",)).fetchone()[0] == 0
    # a tick (discovery, roll-ups, metrics, alerts) goes on as before
    run("tick", dsn=dsn)
    # the removal is on record with the definition it had
    assert conn.execute("select name, cancelled, definition ->> 'script' "
                        "from turing.removed_actors").fetchone() == ("scorer", pending + 1, "cat")


def test_remove_tells_which_outbox_nobody_reads_now(wired, dsn):
    out = run("actor", "remove", "reviewer", "--yes", dsn=dsn).stdout
    assert "removed reviewer" in out
    assert "note: scorer writes status scored, which no enabled actor reads now" in out


def test_removing_an_unknown_actor_exits_4(wired, dsn):
    proc = run("actor", "remove", "nobody", "--yes", dsn=dsn, check=False)
    assert proc.returncode == Exit.UNKNOWN
    assert 'unknown actor "nobody"' in proc.stderr and "Traceback" not in proc.stderr


def test_remove_asks_first_and_no_keeps_the_actor(wired, dsn, conn):
    proc = run("actor", "remove", "reviewer", dsn=dsn, stdin="n\n", check=False)
    assert proc.returncode == Exit.USAGE and "was not removed" in proc.stderr
    assert conn.execute("select count(*) from turing.actors where name = 'reviewer'"
                        ).fetchone()[0] == 1
    run("actor", "remove", "reviewer", dsn=dsn, stdin="y\n")
    assert conn.execute("select count(*) from turing.actors where name = 'reviewer'"
                        ).fetchone()[0] == 0


def test_the_same_name_registered_again_is_a_new_actor(wired, dsn, conn, tmp_path):
    old = _finish_one(wired)
    run("actor", "remove", "scorer", "--cancel-open", "--yes", dsn=dsn)
    (tmp_path / "scorer.yaml").write_text(
        "name: scorer\nkind: script\nscript: cat\ninbox: [new]\noutbox: [scored]\n"
        "on_complete: public.jobs_scored\nmax_attempts: 1\n"
        "work_query: select id as subject_id, title from public.jobs where status = 'new'\n")
    run("actor", "add", "-f", str(tmp_path / "scorer.yaml"), dsn=dsn)
    # a fresh start: every new job is discovered again, the removed actor's done subject too
    found = wired.discover("scorer")
    assert found == conn.execute("select count(*) from public.jobs where status = 'new'"
                                 ).fetchone()[0]
    new = _finish_one(wired)
    rows = json.loads(run("tickets", "--actor", "scorer", "--status", "completed", "--json",
                          dsn=dsn).stdout)
    assert {r["ticket_id"] for r in rows} == {old, new}
    counts = {r["status"]: r["n"] for r in wired.counts() if r["actor"] == "scorer"}
    assert counts["completed"] == 1
    # and it can be removed again, each removal on record
    run("actor", "remove", "scorer", "--cancel-open", "--yes", dsn=dsn)
    assert conn.execute("select count(*) from turing.removed_actors where name = 'scorer'"
                        ).fetchone()[0] == 2


def test_history_of_a_removed_actor_is_pruned_like_any_other(wired, dsn, conn):
    _finish_one(wired)
    run("actor", "remove", "scorer", "--cancel-open", "--yes", dsn=dsn)
    conn.execute("update turing.retention set keep = interval '0'")
    assert wired._value("select turing.prune_history()") > 0
    assert conn.execute("select count(*) from turing.tickets where actor = 'scorer'"
                        ).fetchone()[0] == 0
    # the counts still equal the history, and a removed actor leaves no done markers
    assert conn.execute("select coalesce(sum(n), 0) from turing.ticket_counts c where not exists "
                        "(select from turing.actors a where a.actor_id = c.actor_id)"
                        ).fetchone()[0] == 0
    assert conn.execute("select count(*) from turing.subjects_done").fetchone()[0] == 0
