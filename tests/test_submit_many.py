"""submit_many: submit() for many subjects in one set-based call, with submit()'s rules."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from turing_pg.db import InvalidArgument, Turing, UnknownActor


@pytest.fixture
def echo(turing: Turing) -> str:
    turing.register_actor(dict(name="echo", kind="script", script="cat", model="cpu",
                               work_query=None, priority=5))
    return "echo"


def _counts_exact(conn: psycopg.Connection) -> bool:
    kept = set(conn.execute("select actor, status, n from turing.v_counts").fetchall())
    fresh = set(conn.execute(
        "select actor, status, count(*) from turing.tickets group by 1, 2").fetchall())
    return kept == fresh


def test_submit_many_creates_a_pending_chain_root_per_subject_in_order(turing, conn, echo):
    results = turing.submit_many(echo, ["a", "b", "c"], [{"x": 1}, None, {"x": 3}], priority=9)
    assert [(r.item, r.subject_id, r.skipped) for r in results] == [
        (1, "a", None), (2, "b", None), (3, "c", None)]
    ids = [r.ticket_id for r in results]
    assert ids == sorted(ids), "ticket ids follow the order given, so claims do too"
    rows = conn.execute(
        "select ticket_id, subject_id, status, source, chain_id, chain_depth, input, priority "
        "from turing.tickets order by ticket_id").fetchall()
    assert rows == [
        (ids[0], "a", "pending", "submit", ids[0], 0, {"x": 1}, 9),
        (ids[1], "b", "pending", "submit", ids[1], 0, {}, 9),
        (ids[2], "c", "pending", "submit", ids[2], 0, {"x": 3}, 9),
    ]
    assert _counts_exact(conn)


def test_submit_many_skips_open_and_repeated_subjects_instead_of_refusing(turing, conn, echo):
    held = turing.submit(echo, "b")
    results = turing.submit_many(echo, ["a", "b", "a", "c"])
    assert [(r.subject_id, r.skipped) for r in results] == [
        ("a", None), ("b", "open_ticket"), ("a", "repeated"), ("c", None)]
    assert results[1].ticket_id == held, "the open ticket that holds the subject"
    assert results[2].ticket_id == results[0].ticket_id, "the ticket made for its first line"
    assert conn.execute("select subject_id, count(*) from turing.ticket_open group by 1 "
                        "order by 1").fetchall() == [("a", 1), ("b", 1), ("c", 1)]
    assert _counts_exact(conn)


@pytest.mark.parametrize(
    ("subjects", "inputs", "sentence"),
    [
        (["a", None], None, 'element 2: a ticket for actor "echo" needs a subject_id, got NULL'),
        (["a", "b", ""], None,
         'element 3: a ticket for actor "echo" needs a subject_id, got an empty string'),
        (["a", "x" * 1025], None,
         'element 2: subject_id for actor "echo" is 1025 bytes long; at most 1024'),
        (["a", "b"], [{}, [1]], "element 2: ticket input must be a JSON object, got array"),
        (["a", "b"], [{}], "submit_many: 2 subject ids but 1 inputs; pass one input per "
                           "subject or none"),
    ],
)
def test_submit_many_refuses_a_bad_element_with_one_sentence_and_creates_nothing(
        turing, conn, echo, subjects, inputs, sentence):
    with pytest.raises(InvalidArgument) as err:
        turing.submit_many(echo, subjects, inputs)
    assert str(err.value).splitlines()[0] == sentence
    assert conn.execute("select count(*) from turing.tickets").fetchone()[0] == 0
    assert conn.execute("select coalesce(sum(n), 0) from turing.ticket_counts").fetchone()[0] == 0


def test_submit_and_submit_many_share_one_subject_id_rule(turing, echo):
    # why: one rule in _refuse_bad_subject_ids; submit() says it without an element number.
    with pytest.raises(InvalidArgument, match=r'^subject_id for actor "echo" is 1025 bytes'):
        turing.submit(echo, "x" * 1025)
    assert turing.submit_many(echo, ["x" * 1024])[0].skipped is None


def test_submit_many_of_an_unknown_actor_is_refused(turing):
    with pytest.raises(UnknownActor):
        turing.submit_many("nobody", ["a"])


def test_submit_many_takes_over_the_dead_letter_of_its_subject(turing, conn):
    turing.register_actor(dict(name="once", kind="script", script="cat", model="cpu",
                               work_query=None, max_attempts=1))
    turing.submit("once", "s")
    [ticket] = turing.claim_batch("cpu", "w", 1)
    turing.fail_batch([(ticket.ticket_id, ticket.lease_token, "boom", "failed", True)])
    assert conn.execute("select count(*) from turing.dead_letters").fetchone()[0] == 1
    assert turing.submit_many("once", ["s", "t"])[0].skipped is None
    assert conn.execute("select count(*) from turing.dead_letters").fetchone()[0] == 0
    assert _counts_exact(conn)


def test_submit_many_of_20000_subjects_keeps_the_counts_exact(turing, conn, echo):
    # why: the old path, submit() per subject, rewrote one counter row per call (10,000 calls
    # in one statement took 28 s); set-based, the counts trigger adds them in one upsert.
    results = turing.submit_many(echo, [str(i) for i in range(20_000)])
    assert sum(1 for r in results if r.skipped is None) == 20_000
    assert conn.execute(
        "select coalesce(sum(n), 0) from turing.ticket_counts c join turing.actors a "
        "using (actor_id) where a.name = 'echo' and c.status = 'pending'").fetchone()[0] == 20_000
    assert _counts_exact(conn)
    again = turing.submit_many(echo, [str(i) for i in range(20_000)])
    assert {r.skipped for r in again} == {"open_ticket"}
    assert _counts_exact(conn)


def test_cli_submit_reads_many_subjects_from_stdin(dsn, conn, echo):
    turing_cli = [sys.executable, "-m", "turing_pg.cli"]
    env = {**os.environ, "TURING_DSN": dsn}
    proc = subprocess.run([*turing_cli, "submit", "echo", "--from-file", "-", "--input",
                           '{"k": 1}'], input="1\n2\n\n2\n3\n", capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    assert proc.stdout.strip() == "3 tickets pending; skipped 0 with an open ticket, 1 repeated"
    proc = subprocess.run([*turing_cli, "submit", "echo", "3", "4", "--json"],
                          capture_output=True, text=True, env=env, timeout=120, check=True)
    assert '"created": 1' in proc.stdout and '"open_ticket": 1' in proc.stdout
    assert conn.execute("select subject_id, input from turing.tickets order by ticket_id"
                        ).fetchall() == [("1", {"k": 1}), ("2", {"k": 1}), ("3", {"k": 1}),
                                         ("4", {})]
