"""A chain follows a pipeline's status hand-offs, and `turing chain` / `turing metrics` tell its
story: every attempt in order with what it made, the chain's progress, the failure rates as they
are now and what the reaper took back.

Work an actor discovers because another actor's on_complete moved a subject into its inbox
continues the chain of the ticket that handed it on (turing.hand_offs, written by the
transaction that completes that ticket), so the chain view and the depth limit see a pipeline
from its first actor to its last.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from conftest import wait_for

from turing_pg.db import Turing
from turing_pg.exits import Exit

TURING = [sys.executable, "-m", "turing_pg.cli"]


def run(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TURING, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TURING_DSN": dsn, "COLUMNS": "200"})


def story(dsn: str, id_: int) -> dict[str, Any]:
    proc = run("chain", str(id_), "--json", dsn=dsn)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def scored_then_reviewed(turing: Turing, jobs: int, conn: psycopg.Connection) -> None:
    """jobs 1..5: `scorer` (new -> scored) hands each job to `reviewer` (scored -> reviewed)
    through the job's status alone, no spawn()."""
    conn.execute("delete from public.jobs where id > 5")
    conn.execute(
        """
        create function public.jobs_reviewed(p_ticket_id bigint, p_subject_id text,
                                             p_input jsonb, p_output jsonb)
        returns void language sql as $$
            update public.jobs set status = 'reviewed' where id = p_subject_id::integer
        $$
        """
    )
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", inbox=["new"], outbox=["scored"],
        work_query="select id as subject_id, title from public.jobs where status = 'new'",
        on_complete="public.jobs_scored"))
    turing.register_actor(dict(
        name="reviewer", kind="script", script="cat", inbox=["scored"], outbox=["reviewed"],
        final_outbox=["reviewed"],
        work_query="select id as subject_id, title from public.jobs where status = 'scored'",
        on_complete="public.jobs_reviewed"))


def test_work_handed_on_by_a_status_continues_the_chain_of_the_ticket_that_handed_it(
        scored_then_reviewed: None, start_runner: Any, conn: psycopg.Connection, dsn: str):
    # (idle longer than discover_interval, so it re-queries the reviewer's inbox)
    runner = start_runner("--model", "cpu", "--exit-when-idle", "5")
    wait_for(lambda: conn.execute(
        "select count(*) from public.jobs where status = 'reviewed'").fetchone()[0] == 5,
        timeout=60, what="both actors ran every job")
    assert runner.wait(60) == 0
    steps = conn.execute(
        """
        select s.subject_id, s.ticket_id, s.chain_id, r.ticket_id, r.chain_id, r.chain_depth,
               r.parent_ticket_id, r.source
        from turing.tickets as s
        join turing.tickets as r on r.subject_id = s.subject_id and r.actor = 'reviewer'
        where s.actor = 'scorer'
        order by s.subject_id
        """
    ).fetchall()
    assert len(steps) == 5
    for subject, scored, chain, reviewed, r_chain, depth, parent, source in steps:
        assert (r_chain, depth, parent, source) == (chain, 1, scored, "discover"), subject
        assert chain == scored  # the scorer's ticket is the root: it started the chain
        # the loop guard saw the hand-off step too
        assert conn.execute(
            "select count(*) from turing.chain_steps where chain_id = %s and ticket_id = %s",
            (chain, reviewed)).fetchone()[0] == 1
    # a hand-off is recorded only where something reads the outbox: the reviewer's final one
    # feeds no actor, so its completions hand nothing on
    assert conn.execute(
        "select count(*), count(*) filter (where a.name = 'scorer') from turing.hand_offs h "
        "join turing.actors a using (actor_id)").fetchone() == (5, 5)


def test_turing_chain_shows_every_attempt_in_order_with_what_it_made_and_the_progress(
        scored_then_reviewed: None, turing: Turing, conn: psycopg.Connection, dsn: str):
    conn.execute("delete from public.jobs where id > 1")
    turing.register_runner("w", ["cpu"])
    turing.discover("scorer")
    [first] = turing.claim_batch("cpu", "w", 1)
    turing.complete_ticket(first.ticket_id, first.lease_token, {"score": 1})
    turing.discover("reviewer")
    [second] = turing.claim_batch("cpu", "w", 1)
    doc = story(dsn, second.ticket_id)  # any ticket of the chain names it
    assert doc["chain_id"] == first.ticket_id and doc["asked_id"] == second.ticket_id
    assert [(a["ticket_id"], a["actor"], a["status"], a["depth"], a["parent_ticket_id"])
            for a in doc["attempts"]] == [
        (first.ticket_id, "scorer", "completed", 0, None),
        (second.ticket_id, "reviewer", "running", 1, first.ticket_id)]
    assert doc["attempts"][0]["children"] == [second.ticket_id]
    assert doc["attempts"][0]["duration_ms"] is not None
    assert doc["progress"]["done"] == 1 and doc["progress"]["open"] == 1
    assert doc["progress"]["finished_at"] is None  # still open

    turing.complete_ticket(second.ticket_id, second.lease_token, {"ok": True})
    doc = story(dsn, first.ticket_id)
    assert {k: doc["progress"][k] for k in ("attempts", "done", "open", "dead", "depth")} == {
        "attempts": 2, "done": 2, "open": 0, "dead": 0, "depth": 1}
    assert doc["progress"]["finished_at"] is not None

    text = run("chain", str(first.ticket_id), dsn=dsn)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"chain {first.ticket_id}: 2 attempts, done 2, open 0, dead 0")
    assert "Traceback" not in text.stderr


def test_a_chain_that_failed_shows_its_retries_and_its_dead_attempt(
        turing: Turing, jobs: int, conn: psycopg.Connection, dsn: str):
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", max_attempts=2,
        work_query="select id as subject_id from public.jobs where status = 'new'"))
    turing.register_runner("w", ["cpu"])
    root = turing.submit("scorer", "1")
    for _ in range(2):
        # the retry is due now, not after its backoff
        conn.execute("update turing.ticket_open set run_after = '-infinity'")
        [t] = turing.claim_batch("cpu", "w", 1, discover=False)
        turing.fail_ticket(t.ticket_id, t.lease_token, "the model said no")
    doc = story(dsn, root)
    assert [(a["attempt"], a["status"], a["error"]) for a in doc["attempts"]] == [
        (1, "failed", "the model said no"), (2, "dead", "the model said no")]
    assert doc["attempts"][0]["children"] == []  # a retry is not something the attempt made
    assert doc["progress"]["retried"] == 1 and doc["progress"]["dead"] == 1


def test_turing_chain_of_an_unknown_id_is_one_sentence(dsn: str):
    proc = run("chain", "987654321", dsn=dsn)
    assert proc.returncode == Exit.UNKNOWN
    assert proc.stderr.strip().splitlines() == [
        "error: no ticket or chain has id 987654321",
        "hint: Give a ticket id or a chain id, as `turing tickets` lists them."]


def test_an_on_complete_that_makes_a_new_row_hands_that_row_on_by_hand_off(
        turing: Turing, jobs: int, conn: psycopg.Connection, dsn: str):
    conn.execute("create table public.reviews (id serial primary key, job integer, "
                 "status text not null default 'open')")
    conn.execute("grant all on public.reviews, public.reviews_id_seq to turing_test_app")
    conn.execute(
        """
        create function public.jobs_to_review(p_ticket_id bigint, p_subject_id text,
                                              p_input jsonb, p_output jsonb)
        returns void language plpgsql as $$
        declare v_id integer;
        begin
            update public.jobs set status = 'scored' where id = p_subject_id::integer;
            insert into public.reviews (job) values (p_subject_id::integer) returning id into v_id;
            perform turing.hand_off(p_ticket_id, v_id::text);
        end $$
        """
    )
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", inbox=["new"], outbox=["open"],
        work_query="select id as subject_id from public.jobs where status = 'new' and id = 7",
        on_complete="public.jobs_to_review"))
    turing.register_actor(dict(
        name="reviewer", kind="script", script="cat", inbox=["open"],
        work_query="select id as subject_id from public.reviews where status = 'open'"))
    turing.register_runner("w", ["cpu"])
    turing.discover("scorer")
    [scored] = turing.claim_batch("cpu", "w", 1)
    turing.complete_ticket(scored.ticket_id, scored.lease_token, {})
    # only the row it named is handed on: job 7's own id means nothing to the reviewer
    assert conn.execute(
        "select subject_id, explicit from turing.hand_offs").fetchall() == [("1", True)]
    turing.discover("reviewer")
    row = conn.execute(
        "select chain_id, chain_depth, parent_ticket_id from turing.ticket_open "
        "where subject_id = '1'").fetchone()
    assert row == (scored.ticket_id, 1, scored.ticket_id)
    assert story(dsn, scored.ticket_id)["attempts"][0]["children"] == [
        conn.execute("select ticket_id from turing.ticket_open where subject_id = '1'"
                     ).fetchone()[0]]


def test_a_chain_handed_on_more_than_20_times_ends_dead_with_the_reason(
        turing: Turing, conn: psycopg.Connection, dsn: str):
    """22 actors in a row, s0 -> s1 -> ... -> s22: the 21st hand-off would be depth 21."""
    conn.execute("create table public.relay (id integer primary key, status text not null)")
    conn.execute("insert into public.relay values (1, 's0')")
    conn.execute("grant all on public.relay to turing_test_app")
    conn.execute(
        """
        create function public.relay_next(p_ticket_id bigint, p_subject_id text, p_input jsonb,
                                          p_output jsonb)
        returns void language sql as $$
            update public.relay set status = 's' || (substr(status, 2)::integer + 1)
            where id = p_subject_id::integer
        $$
        """
    )
    for k in range(22):
        turing.register_actor(dict(
            name=f"relay{k}", kind="script", script="cat", inbox=[f"s{k}"],
            outbox=[f"s{k + 1}"], on_complete="public.relay_next",
            work_query=f"select id as subject_id from public.relay where status = 's{k}'"))
    turing.register_runner("w", ["cpu"])
    for k in range(22):
        turing.discover(f"relay{k}")
        claimed = turing.claim_batch("cpu", "w", 1, discover=False)
        if not claimed:
            break
        turing.complete_ticket(claimed[0].ticket_id, claimed[0].lease_token, {})
    depths = conn.execute(
        "select chain_depth, status from turing.tickets order by ticket_id").fetchall()
    assert depths[:21] == [(d, "completed") for d in range(21)]
    [(actor, error)] = [(r["actor"], r["error"]) for r in turing.dead_letters()]
    assert actor == "relay21"
    assert "is too deep" in error and "max 20" in error
    doc = story(dsn, conn.execute("select min(ticket_id) from turing.tickets").fetchone()[0])
    assert doc["progress"]["done"] == 21 and doc["progress"]["dead"] == 1


def test_metrics_shows_failure_rates_as_they_are_now_and_the_reapers_log(
        turing: Turing, jobs: int, conn: psycopg.Connection, dsn: str):
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", max_attempts=3,
        work_query="select id as subject_id from public.jobs where status = 'new'"))
    turing.register_runner("w", ["cpu"])
    for subject in ("1", "2", "3", "4"):
        turing.submit("scorer", subject)
    claimed = turing.claim_batch("cpu", "w", 4, discover=False)
    for t in claimed[:3]:
        turing.complete_ticket(t.ticket_id, t.lease_token, {})
    # the fourth one's runner went silent: its lease ran out
    conn.execute("update turing.ticket_open set lease_expires_at = clock_timestamp() - "
                 "interval '1 second' where ticket_id = %s", (claimed[3].ticket_id,))
    turing.reap("test")

    proc = run("metrics", "--json", dsn=dsn)  # no tick in between
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [rate] = [r for r in data["failure_rates"] if r["actor"] == "scorer"]
    assert rate["finished_today"] == 4 and float(rate["failure_rate_today"]) == 0.25
    [reap] = [r for r in data["reaps"] if r["what"] == "attempt"]
    assert reap["ticket_id"] == claimed[3].ticket_id and reap["actor"] == "scorer"
    assert reap["outcome"] == "retried" and "stopped heartbeating" in reap["reason"]
    assert reap["worker"] == "w" and reap["caller"] == "test"

    text = run("metrics", dsn=dsn)
    assert text.returncode == 0 and "reaper's log" in text.stdout and "scorer" in text.stdout


def test_hand_off_outside_the_tickets_own_completion_is_refused(
        turing: Turing, jobs: int, conn: psycopg.Connection):
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat",
        work_query="select id as subject_id from public.jobs where status = 'new'"))
    turing.register_runner("w", ["cpu"])
    root = turing.submit("scorer", "1")
    [t] = turing.claim_batch("cpu", "w", 1, discover=False)
    turing.complete_ticket(t.ticket_id, t.lease_token, {})
    with pytest.raises(psycopg.DatabaseError,
                       match=f"ticket {root} is not being completed in this transaction"):
        conn.execute("select turing.hand_off(%s, 'someone else''s row')", (root,))
    assert conn.execute("select count(*) from turing.hand_offs").fetchone()[0] == 0


def test_hand_offs_are_pruned_with_the_completed_history_they_point_to(
        conn: psycopg.Connection):
    conn.execute("insert into turing.retention (status, keep) values ('completed', '1 day') "
                 "on conflict (status) do update set keep = excluded.keep")
    conn.execute(
        "insert into turing.hand_offs (subject_id, ticket_id, actor_id, chain_id, chain_depth, "
        "handed_at) values ('old', 1, 1, 1, 0, now() - interval '2 days'), "
        "('new', 2, 1, 2, 0, now() - interval '1 hour')")
    conn.execute("select turing.prune_history(1000)")
    assert conn.execute("select subject_id from turing.hand_offs").fetchall() == [("new",)]
