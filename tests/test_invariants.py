"""One test (at least) per invariant of DESIGN.md, concurrent where it can be."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from conftest import wait_for
from psycopg.types.json import Jsonb

from turing_pg.db import (
    ChainLoop,
    ChainTooDeep,
    DuplicateOpenTicket,
    Turing,
    mapped_errors,
)

WORK_QUERY = "select id as subject_id, title from public.jobs where status = 'new'"


def scorer(**overrides) -> dict[str, Any]:
    fields = dict(
        name="scorer", kind="script", script="cat", work_query=WORK_QUERY,
        on_complete="public.jobs_scored", backoff_base="0 seconds", buffer_size=80,
    )
    fields.update(overrides)
    return dict(**fields)


def assert_counts_exact(conn: psycopg.Connection) -> None:
    kept = {
        (r[0], r[1]): r[2]
        for r in conn.execute("select actor, status, n from turing.v_counts")
    }
    fresh = {
        (r[0], r[1]): r[2]
        for r in conn.execute("select actor, status, count(*) from turing.tickets group by 1, 2")
    }
    assert kept == fresh


# -- the SQL API, called directly ---------------------------------------------------------------
# why: these tests select only the columns they need from the SQL functions, so they hold the
# engine to its behaviour and not to the shape of the Python records built on top of it.
Lease = tuple[int, UUID]  # (ticket_id, lease_token)


def claim(conn: psycopg.Connection, worker: str, limit: int, model: str = "cpu") -> list[Lease]:
    return conn.execute(
        "select ticket_id, lease_token from turing.claim_batch("
        "p_model => %s, p_worker => %s, p_limit => %s)",
        (model, worker, limit),
    ).fetchall()


def complete(conn: psycopg.Connection, leases: list[Lease], output: Any) -> dict[int, bool]:
    """ticket_id -> accepted."""
    return dict(conn.execute(
        "select ticket_id, accepted from turing.complete_batch("
        "p_ticket_ids => %s, p_lease_tokens => %s, p_outputs => %s)",
        ([t for t, _ in leases], [k for _, k in leases], [Jsonb(output)] * len(leases)),
    ).fetchall())


def fail(conn: psycopg.Connection, leases: list[Lease], error: str) -> dict[int, bool]:
    """ticket_id -> accepted (a retryable failure)."""
    return dict(conn.execute(
        "select ticket_id, accepted from turing.fail_batch("
        "p_ticket_ids => %s, p_lease_tokens => %s, p_errors => %s)",
        ([t for t, _ in leases], [k for _, k in leases], [error] * len(leases)),
    ).fetchall())


_SECRETS: dict[tuple[str, str], str] = {}


def secret(conn: psycopg.Connection, worker: str) -> str:
    """The secret of runner `worker`, registered on first use (heartbeat and release_worker
    act only for the runner that presents it)."""
    key = (conn.info.dbname, worker)
    if key not in _SECRETS:
        _SECRETS[key] = conn.execute(
            "select turing.register_runner(p_worker => %s, p_models => '{}')", (worker,)
        ).fetchone()[0]
    return _SECRETS[key]


def heartbeat(conn: psycopg.Connection, worker: str, leases: list[Lease]
              ) -> list[tuple[int, bool, Any]]:
    """(ticket_id, held, lease_expires_at) per lease, in order."""
    return conn.execute(
        "select ticket_id, held, lease_expires_at from turing.heartbeat("
        "p_worker => %s, p_secret => %s, p_ticket_ids => %s, p_lease_tokens => %s)",
        (worker, secret(conn, worker), [t for t, _ in leases], [k for _, k in leases]),
    ).fetchall()


def open_ticket(conn: psycopg.Connection, ticket_id: int) -> dict[str, Any] | None:
    """The open row as it is stored, or None once the ticket has finished."""
    cur = conn.execute(
        "select status, attempt, worker, batch_id, started_at, lease_token, lease_expires_at, "
        # why: as text, because a fresh ticket's run_after is -infinity (claimable at once)
        "heartbeat_at, run_after::text as run_after, last_error "
        "from turing.ticket_open where ticket_id = %s",
        (ticket_id,),
    )
    row = cur.fetchone()
    return None if row is None else dict(zip([c.name for c in cur.description], row, strict=True))


# -- invariant 1 --------------------------------------------------------------------------------
def test_concurrent_runners_drain_the_queue_claiming_and_completing_each_ticket_once(
        dsn, conn, turing, jobs):
    turing.register_actor(scorer(buffer_size=40))
    claimed: list[tuple[str, int]] = []  # (worker, ticket_id), one per ticket a claim returned
    refused: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def runner(worker: str) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                barrier.wait()
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    batch = claim(c, worker, 7)
                    if batch:
                        with lock:
                            claimed.extend((worker, t) for t, _ in batch)
                        accepted = complete(c, batch, {"by": worker})
                        with lock:
                            refused.extend(t for t, ok in accepted.items() if not ok)
                        continue
                    # why: an empty claim is not the end: another runner may be holding the
                    # actor's discover lock (its top-up is filling the buffer) or still be
                    # running the last tickets. Done is when every job has been scored.
                    if c.execute("select not exists (select from public.jobs "
                                 "where scored_times = 0)").fetchone()[0]:
                        return
                    time.sleep(0.005)
                raise AssertionError(f"{worker}: the queue never drained")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(f"w{i}",)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=180)
    twice = {t: n for t, n in Counter(t for _, t in claimed).items() if n > 1}
    assert twice == {}, f"tickets handed to more than one claim: {twice}"
    assert not errors, errors
    assert refused == [], "each claimer was the only holder, so every result was accepted"
    finished = conn.execute(
        "select ticket_id, subject_id, status from turing.ticket_history").fetchall()
    assert sorted(t for t, _, _ in finished) == sorted(t for _, t in claimed)
    assert {status for _, _, status in finished} == {"completed"}
    assert Counter(subject for _, subject, _ in finished) == Counter(
        str(i) for i in range(1, jobs + 1)), "every subject completed exactly once"
    assert conn.execute("select min(scored_times), max(scored_times) from public.jobs"
                        ).fetchone() == (1, 1)
    assert conn.execute("select count(*) from turing.ticket_open").fetchone()[0] == 0


def test_a_claim_skips_tickets_another_claim_holds_instead_of_waiting_for_them(dsn, conn, turing):
    turing.register_actor(scorer(work_query=None, on_complete=None))
    submitted = [turing.submit("scorer", str(i)) for i in range(10)]
    with psycopg.connect(dsn) as holder:  # not autocommit: its claim stays uncommitted
        held = claim(holder, "slow", 3)
        assert len(held) == 3
        # why: any backend will do: counts slots are per transaction (invariant 15), so the
        # two claims never share a counter row and only a ticket lock could make one wait.
        with psycopg.connect(dsn, autocommit=True) as other:
            # why: with SKIP LOCKED there is nothing to wait for, so any lock wait at all is
            # the failure; lock_timeout turns it into an error instead of a hang.
            other.execute("set lock_timeout = '200ms'")
            try:
                got = claim(other, "fast", 3)
            except psycopg.errors.LockNotAvailable as exc:
                pytest.fail(f"the claim waited on tickets another open claim holds: {exc}")
        assert len(got) == 3, "it got other tickets, as many as it asked for"
        assert {t for t, _ in got}.isdisjoint(t for t, _ in held)
        holder.commit()
    rest = claim(conn, "fast", 10)
    assert sorted(t for t, _ in held + got + rest) == sorted(submitted)


def test_concurrent_submits_of_one_subject_create_one_open_ticket(dsn, turing, conn, jobs):
    turing.register_actor(scorer(work_query=None))
    results: list[str] = []
    barrier = threading.Barrier(4)

    def submit() -> None:
        with Turing(dsn, max_size=1) as t:
            barrier.wait()
            try:
                t.submit("scorer", "42")
                results.append("ok")
            except DuplicateOpenTicket:
                results.append("duplicate")

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == ["duplicate"] * 3 + ["ok"]
    assert conn.execute(
        "select count(*) from turing.ticket_open where subject_id = '42'"
    ).fetchone()[0] == 1


def test_discover_does_not_reticket_a_subject_completed_concurrently(dsn, turing, conn, jobs):
    """Completion and discover race: the completion's domain write must be seen by discover."""
    turing.register_actor(scorer(buffer_size=200))
    stop = threading.Event()

    def discoverer() -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            while not stop.is_set():
                c.execute("select turing.discover('scorer')")

    th = threading.Thread(target=discoverer)
    th.start()
    deadline = time.monotonic() + 60
    try:
        # why: an empty claim is not the end: while the discoverer thread holds the actor's
        # discover lock, a claim's own top-up skips, so keep going until every job is scored.
        while time.monotonic() < deadline:
            batch = turing.claim_batch("cpu", "w1", 10)
            if batch:
                turing.complete_batch([(b.ticket_id, b.lease_token, {"s": 1}) for b in batch])
            elif conn.execute(
                    "select count(*) from public.jobs where scored_times = 0").fetchone()[0] == 0:
                break
    finally:
        stop.set()
        th.join()
    assert conn.execute("select max(scored_times) from public.jobs").fetchone()[0] == 1
    assert conn.execute("select count(*) from turing.ticket_open").fetchone()[0] == 0


# -- invariant 2 --------------------------------------------------------------------------------
def test_terminal_ticket_cannot_be_updated(turing, conn, jobs):
    turing.register_actor(scorer())
    [t] = turing.claim_batch("cpu", "w1", 1)
    assert turing.complete_ticket(t.ticket_id, t.lease_token, {"ok": True})
    with pytest.raises(psycopg.Error) as err:
        conn.execute("update turing.ticket_history set status = 'failed' where ticket_id = %s",
                     (t.ticket_id,))
    assert err.value.sqlstate == "TR008"
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("update turing.tickets set status = 'pending' where ticket_id = %s",
                     (t.ticket_id,))
    row = conn.execute("select status, output from turing.tickets where ticket_id = %s",
                       (t.ticket_id,)).fetchone()
    assert row == ("completed", {"ok": True})


def test_illegal_transitions_raise(turing, conn, jobs):
    turing.register_actor(scorer())
    [t] = turing.claim_batch("cpu", "w1", 1)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("update turing.ticket_open set status = 'completed' where ticket_id = %s",
                     (t.ticket_id,))
    with pytest.raises(psycopg.errors.CheckViolation):
        # running without a lease is not a state
        conn.execute("update turing.ticket_open set lease_token = null where ticket_id = %s",
                     (t.ticket_id,))
    with pytest.raises(psycopg.Error):
        conn.execute("update turing.ticket_open set attempt = 5 where ticket_id = %s",
                     (t.ticket_id,))
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "insert into turing.ticket_history (ticket_id, actor_id, model, subject_id, status, "
            "attempt, priority, input, source, chain_id, chain_depth, created_at, run_after, "
            "finished_at) values (999999, 1, 'cpu', 'x', 'pending', 1, 0, '{}', 'submit', "
            "999999, 0, now(), now(), now())"
        )
    # a finished ticket cannot be completed again
    assert turing.complete_ticket(t.ticket_id, t.lease_token, {"a": 1})
    assert not turing.complete_ticket(t.ticket_id, t.lease_token, {"a": 2})
    assert not turing.fail_ticket(t.ticket_id, t.lease_token, "late failure")
    assert conn.execute("select count(*) from turing.tickets where ticket_id = %s",
                        (t.ticket_id,)).fetchone()[0] == 1


# -- invariant 3 --------------------------------------------------------------------------------
def test_timestamps_are_ordered_and_inverted_ones_are_refused(turing, conn, jobs):
    turing.register_actor(scorer(max_attempts=2))
    for _ in range(5):
        batch = turing.claim_batch("cpu", "w", 20)
        for i, b in enumerate(batch):
            if i % 3 == 0:
                turing.fail_ticket(b.ticket_id, b.lease_token, "flaky")
            else:
                turing.complete_ticket(b.ticket_id, b.lease_token, {"i": i})
    bad = conn.execute(
        "select count(*) from turing.tickets where started_at < created_at "
        "or finished_at < started_at or finished_at < created_at"
    ).fetchone()[0]
    assert bad == 0
    assert conn.execute("select count(*) from turing.ticket_history").fetchone()[0] >= 100
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "insert into turing.ticket_history (ticket_id, actor_id, model, subject_id, status, "
            "attempt, priority, input, source, chain_id, chain_depth, created_at, run_after, "
            "started_at, finished_at) values (999999, 1, 'cpu', 'x', 'completed', 1, 0, '{}', "
            "'submit', 999999, 0, now(), now(), now(), now() - interval '1 second')"
        )


# -- invariant 4 --------------------------------------------------------------------------------
def test_late_result_of_reaped_attempt_is_discarded(turing, conn, jobs):
    """The reaped attempt has left ticket_open for the history and its retry is a new ticket,
    so its late calls find nothing to act on by ticket id alone. The lease token itself is held
    to account by the reclaimed-ticket tests below, where the ticket id stays the same."""
    turing.register_actor(scorer(work_query=None, lease="1 second", timeout="10 seconds"))
    first_id = turing.submit("scorer", "1")
    [first] = claim(conn, "slow-runner", 1)
    assert first[0] == first_id
    expiry = open_ticket(conn, first_id)["lease_expires_at"]
    wait_for(lambda: conn.execute("select clock_timestamp() > %s", (expiry,)).fetchone()[0],
             what="the lease to run out (the runner stalled: no heartbeat, no result)")
    assert turing.reap("test") == 1
    [second] = claim(conn, "fast-runner", 1)
    assert second[0] != first_id and open_ticket(conn, second[0])["attempt"] == 2
    assert complete(conn, [second], {"by": "re-run"}) == {second[0]: True}
    # the slow call comes back late: refused, nothing written
    assert complete(conn, [first], {"by": "late"}) == {first_id: False}
    assert fail(conn, [first], "late failure") == {first_id: False}
    assert heartbeat(conn, "slow-runner", [first]) == [(first_id, False, None)]
    assert conn.execute("select score, scored_times from public.jobs where id = 1"
                        ).fetchone() == ({"by": "re-run"}, 1)
    assert conn.execute(
        "select status from turing.tickets where subject_id = '1' order by attempt"
    ).fetchall() == [("timed_out",), ("completed",)]


def claim_release_reclaim(turing: Turing, conn: psycopg.Connection,
                          on_complete: str | None = "public.jobs_scored") -> tuple[int, UUID, UUID]:
    """Job 1 claimed by runner `first`, given back (release_worker) and claimed by `second`:
    the same ticket id under a new lease token. Returns (ticket_id, old token, current token)."""
    turing.register_actor(scorer(work_query=None, on_complete=on_complete))
    ticket_id = turing.submit("scorer", "1")
    [(claimed_id, old_token)] = claim(conn, "first", 1)
    assert claimed_id == ticket_id
    assert conn.execute(
        "select turing.release_worker(p_worker => 'first', p_secret => %s, p_ticket_ids => %s, "
        "p_stopping => false)", (secret(conn, "first"), [ticket_id])).fetchone()[0] == 1
    [(again_id, token)] = claim(conn, "second", 1)
    assert (again_id, open_ticket(conn, again_id)["attempt"]) == (ticket_id, 1)
    assert token != old_token
    return ticket_id, old_token, token


def finished(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select ticket_id, status, attempt, worker, output from turing.ticket_history "
        "order by ticket_id").fetchall()


@pytest.mark.parametrize("on_complete", ["public.jobs_scored", None],
                         ids=["with-on_complete", "without-on_complete"])
def test_the_old_token_of_a_reclaimed_ticket_cannot_complete_it(turing, conn, jobs, on_complete):
    ticket_id, old_token, token = claim_release_reclaim(turing, conn, on_complete)
    before = open_ticket(conn, ticket_id)
    assert complete(conn, [(ticket_id, old_token)], {"by": "first"}) == {ticket_id: False}
    assert open_ticket(conn, ticket_id) == before, "the refused result changed nothing"
    assert finished(conn) == []
    assert conn.execute("select scored_times from public.jobs where id = 1").fetchone()[0] == 0
    # the current holder's result stands
    assert complete(conn, [(ticket_id, token)], {"by": "second"}) == {ticket_id: True}
    assert finished(conn) == [(ticket_id, "completed", 1, "second", {"by": "second"})]
    if on_complete:
        assert conn.execute("select score, scored_times from public.jobs where id = 1"
                            ).fetchone() == ({"by": "second"}, 1)


def test_the_old_token_of_a_reclaimed_ticket_cannot_fail_it(turing, conn, jobs):
    ticket_id, old_token, token = claim_release_reclaim(turing, conn)
    before = open_ticket(conn, ticket_id)
    assert fail(conn, [(ticket_id, old_token)], "late failure") == {ticket_id: False}
    assert open_ticket(conn, ticket_id) == before, "the refused failure changed nothing"
    assert finished(conn) == []
    assert conn.execute("select count(*) from turing.ticket_open").fetchone()[0] == 1, "no retry"
    assert complete(conn, [(ticket_id, token)], {"by": "second"}) == {ticket_id: True}
    assert finished(conn) == [(ticket_id, "completed", 1, "second", {"by": "second"})]


def test_the_old_token_of_a_reclaimed_ticket_cannot_extend_its_lease(turing, conn, jobs):
    ticket_id, old_token, token = claim_release_reclaim(turing, conn)
    before = open_ticket(conn, ticket_id)
    assert heartbeat(conn, "first", [(ticket_id, old_token)]) == [(ticket_id, False, None)]
    assert open_ticket(conn, ticket_id) == before, "lease and heartbeat_at untouched"
    [(_, held, expires)] = heartbeat(conn, "second", [(ticket_id, token)])
    assert held and expires >= before["lease_expires_at"]


def test_a_lost_claim_is_harmless(turing, conn, jobs):
    """claim_batch commits without waiting for the WAL flush, so a server crash can lose a claim
    the runner already acted on. A rolled-back claim is exactly that state: the runner holds a
    token the database never kept. Its result and heartbeats are refused, the work is claimed
    again, and the domain row is written once."""
    turing.register_actor(scorer(work_query=None))
    turing.submit("scorer", "1")
    with conn.transaction(force_rollback=True):
        [lost] = conn.execute(
            "select ticket_id, lease_token from turing.claim_batch('cpu', 'crashed', 1)"
        ).fetchall()
        assert conn.execute("show synchronous_commit").fetchone()[0] == "off"
    # only the claim's own transaction skips the flush
    assert conn.execute("show synchronous_commit").fetchone()[0] == "on"
    assert turing.heartbeat("crashed", [(lost[0], lost[1])]) == {lost[0]: False}
    assert not turing.complete_ticket(lost[0], lost[1], {"by": "lost claim"})
    [again] = turing.claim_batch("cpu", "survivor", 1)
    assert again.ticket_id == lost[0] and again.attempt == 1
    assert turing.complete_ticket(again.ticket_id, again.lease_token, {"by": "survivor"})
    assert conn.execute("select score, scored_times from public.jobs where id = 1"
                        ).fetchone() == ({"by": "survivor"}, 1)



def test_a_claim_whose_answer_was_lost_is_given_back_uncharged(turing, conn, jobs):
    """The claim committed but its answer never reached the runner (the connection broke):
    the runner names what it holds, and release_unheld gives the rest of its running tickets
    back as they were (attempt 1, started or not), leaving other runners' work alone."""
    turing.register_actor(scorer(work_query=None))
    turing.register_runner("runner-a", ["cpu"])
    turing.register_runner("runner-b", ["cpu"])
    for i in range(1, 6):
        turing.submit("scorer", str(i))
    held = turing.claim_batch("cpu", "runner-a", 1)  # the answer it did get
    conn.execute("select * from turing.claim_batch('cpu', 'runner-a', 2, '{}', 1)")  # lost
    other = turing.claim_batch("cpu", "runner-b", 1)
    assert turing.release_unheld("runner-a", [t.ticket_id for t in held]) == 2
    rows = dict(conn.execute("select status, count(*) from turing.ticket_open "
                             "group by status").fetchall())
    assert rows == {"pending": 3, "running": 2}
    assert conn.execute("select count(*) from turing.ticket_open where attempt <> 1 "
                        "or (status = 'pending' and started_at is not null)").fetchone()[0] == 0
    assert turing.heartbeat("runner-a", [(held[0].ticket_id, held[0].lease_token)]) == \
        {held[0].ticket_id: True}
    assert turing.heartbeat("runner-b", [(other[0].ticket_id, other[0].lease_token)]) == \
        {other[0].ticket_id: True}
    assert conn.execute("select count(*) from turing.ticket_history").fetchone()[0] == 0

def test_a_forged_token_cannot_complete_a_ticket(turing, conn, jobs):
    turing.register_actor(scorer())
    [t] = turing.claim_batch("cpu", "w", 1)
    import uuid

    assert not turing.complete_ticket(t.ticket_id, uuid.uuid4(), {"x": 1})
    assert conn.execute("select status from turing.tickets where ticket_id = %s",
                        (t.ticket_id,)).fetchone()[0] == "running"


# -- invariant 5 --------------------------------------------------------------------------------
def test_on_complete_effects_exist_iff_the_ticket_completed(turing, conn, jobs):
    conn.execute(
        """
        create function public.jobs_scored_picky(p_ticket_id bigint, p_subject_id text,
                                                 p_input jsonb, p_output jsonb)
        returns void language plpgsql as $$
        begin
            update public.jobs set status = 'scored', score = p_output,
                scored_times = scored_times + 1 where id = p_subject_id::integer;
            if (p_output ->> 'score')::int < 0 then
                raise exception 'negative score for job %', p_subject_id;
            end if;
        end $$
        """
    )
    turing.register_actor(scorer(on_complete="public.jobs_scored_picky", max_attempts=1))
    batch = turing.claim_batch("cpu", "w", 10)
    outputs = [{"score": -1 if i % 2 else i} for i in range(10)]
    outcome = turing.complete_batch(
        [(b.ticket_id, b.lease_token, o) for b, o in zip(batch, outputs, strict=True)]
    )
    assert [o.status for o in outcome] == ["completed", "dead"] * 5
    rows = conn.execute(
        "select t.status, j.status, j.scored_times from turing.tickets t "
        "join public.jobs j on j.id = t.subject_id::integer where t.ticket_id = any(%s)",
        ([b.ticket_id for b in batch],),
    ).fetchall()
    for ticket_status, job_status, times in rows:
        if ticket_status == "completed":
            assert (job_status, times) == ("scored", 1)
        else:
            assert (job_status, times) == ("new", 0)
    error = conn.execute(
        "select error from turing.tickets where status = 'dead' limit 1"
    ).fetchone()[0]
    assert "on_complete public.jobs_scored_picky" in error and "negative score" in error


# -- invariant 6 --------------------------------------------------------------------------------
def test_counts_equal_count_star_after_a_concurrent_storm(dsn, turing, conn, jobs):
    turing.register_actor(scorer(max_attempts=3, lease="1 second", timeout="5 seconds"))
    turing.register_actor(scorer(name="echo", work_query=None, on_complete=None))
    errors: list[BaseException] = []

    def storm(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with Turing(dsn, max_size=1) as t:
                for _ in range(25):
                    batch = t.claim_batch("cpu", f"w{seed}", rng.randint(1, 8))
                    done, failed = [], []
                    for b in batch:
                        r = rng.random()
                        if r < 0.6:
                            done.append((b.ticket_id, b.lease_token, {"r": r}))
                        elif r < 0.85:
                            failed.append((b.ticket_id, b.lease_token, "storm", "failed", True))
                        # else: abandoned, for reap() to find
                    if done:
                        t.complete_batch(done)
                    if failed:
                        t.fail_batch(failed)
                    if rng.random() < 0.2:
                        t.reap(f"w{seed}")
                    if rng.random() < 0.3:
                        with contextlib.suppress(DuplicateOpenTicket):
                            t.submit("echo", str(rng.randint(1, 30)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=storm, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    # read the counts while the storm runs too: exact at every committed moment
    for _ in range(10):
        with psycopg.connect(dsn, autocommit=True) as c, c.transaction():
            c.execute("set transaction isolation level repeatable read")
            assert_counts_exact(c)
        time.sleep(0.05)
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    assert_counts_exact(conn)
    assert conn.execute("select count(*) from turing.ticket_history").fetchone()[0] > 50


# -- invariant 7 --------------------------------------------------------------------------------
def test_expired_lease_is_retried_then_dead_without_a_manual_step(turing, conn, jobs):
    turing.register_actor(scorer(work_query=None, lease="1 second", max_attempts=3))
    turing.submit("scorer", "7")
    for attempt in (1, 2, 3):
        [t] = turing.claim_batch("cpu", "crashing-runner", 1)
        assert t.attempt == attempt
        time.sleep(1.1)  # the runner "dies": no heartbeat, no result
        assert turing.reap("test") == 1
    assert turing.claim_batch("cpu", "w", 1) == []
    history = conn.execute(
        "select attempt, status, failure_kind from turing.tickets where subject_id = '7' "
        "order by attempt"
    ).fetchall()
    assert history == [(1, "timed_out", None), (2, "timed_out", None), (3, "dead", "timed_out")]
    assert conn.execute(
        "select count(*) from turing.maintenance_log where operation = 'reap'"
    ).fetchone()[0] == 3


def test_reap_logs_every_run_even_when_it_finds_nothing(turing, conn):
    assert turing.reap("cron") == 0
    assert turing.reap("cron") == 0
    assert conn.execute(
        "select count(*), sum(rows_affected) from turing.maintenance_log "
        "where operation = 'reap' and caller = 'cron'"
    ).fetchone() == (2, 0)


def test_a_retry_waits_for_its_backoff_and_the_last_failure_goes_dead(turing, conn, jobs):
    turing.register_actor(scorer(work_query=None, max_attempts=2, backoff_base="1 hour"))
    first_id = turing.submit("scorer", "9")
    [first] = claim(conn, "w", 1)
    assert fail(conn, [first], "boom") == {first_id: True}
    [(retry_id, attempt, last_error)] = conn.execute(
        "select ticket_id, attempt, last_error from turing.ticket_open").fetchall()
    assert (attempt, last_error) == (2, "boom")
    assert claim(conn, "w", 1) == [], "not claimable before run_after"
    conn.execute("update turing.ticket_open set run_after = now() where ticket_id = %s",
                 (retry_id,))
    [retry] = claim(conn, "w", 1)
    assert retry[0] == retry_id
    assert fail(conn, [retry], "boom again") == {retry_id: True}
    assert conn.execute(
        "select ticket_id, status, failure_kind from turing.ticket_history order by ticket_id"
    ).fetchall() == [(first_id, "failed", None), (retry_id, "dead", "failed")]
    assert conn.execute("select count(*) from turing.ticket_open").fetchone()[0] == 0


def test_retry_backoff_doubles_per_attempt_up_to_backoff_max_with_jitter(turing, conn):
    """The retry after failed attempt n waits min(backoff_max, backoff_base * 2^(n-1)), then
    x [0.75, 1.25] jitter. With base 1 min and max 5 min: 1, 2, 4, then 5 and 5 min (16 min
    uncapped), each over many subjects so the jitter shows."""
    base, cap = timedelta(minutes=1), timedelta(minutes=5)
    turing.register_actor(scorer(work_query=None, on_complete=None, max_attempts=6,
                                 backoff_base="1 minute", backoff_max="5 minutes"))
    subjects = 40
    for i in range(subjects):
        turing.submit("scorer", str(i))
    factors: dict[int, list[float]] = {}  # failed attempt -> delay / nominal delay, per retry
    for attempt in range(1, 6):
        batch = claim(conn, "w", subjects)
        assert len(batch) == subjects
        assert set(fail(conn, batch, f"boom {attempt}").values()) == {True}
        delays = conn.execute(
            "select attempt - 1, run_after - created_at from turing.ticket_open").fetchall()
        assert {a for a, _ in delays} == {attempt} and len(delays) == subjects
        nominal = min(cap, base * 2 ** (attempt - 1))
        factors[attempt] = [d / nominal for _, d in delays]
        # make the retries claimable now instead of waiting out their backoff
        conn.execute("update turing.ticket_open set run_after = now()")

    for attempt, fs in factors.items():
        outside = [round(f, 3) for f in fs if not 0.75 <= f <= 1.25]
        assert outside == [], (
            f"after attempt {attempt} the delay must be min(5 min, 1 min * 2^{attempt - 1}) "
            f"+/- 25 %; these are off by a factor of {outside}")
    everything = [f for fs in factors.values() for f in fs]
    assert min(everything) < 0.9 and max(everything) > 1.1, "retries are spread by jitter"
    assert len(set(everything)) > len(everything) / 2, "the jitter is drawn per retry"


def test_a_heartbeat_extends_the_lease_but_never_past_started_at_plus_timeout(turing, conn):
    # lease < timeout: a heartbeat moves the lease to now + lease
    turing.register_actor(scorer(name="short", work_query=None, on_complete=None,
                                 lease="30 seconds", timeout="1 hour"))
    # lease = timeout: every heartbeat after the start would reach past the timeout uncapped
    turing.register_actor(scorer(name="capped", work_query=None, on_complete=None,
                                 lease="1 hour", timeout="1 hour"))
    short_id, capped_id = turing.submit("short", "1"), turing.submit("capped", "1")
    leases = claim(conn, "w", 2)
    assert sorted(t for t, _ in leases) == sorted([short_id, capped_id])
    started = {t: open_ticket(conn, t)["started_at"] for t, _ in leases}
    claimed_until = {t: open_ticket(conn, t)["lease_expires_at"] for t, _ in leases}
    now = "select clock_timestamp()"
    for _ in range(3):
        before = conn.execute(now).fetchone()[0]
        beats = {t: (held, expires) for t, held, expires in heartbeat(conn, "w", leases)}
        after = conn.execute(now).fetchone()[0]
        assert all(held for held, _ in beats.values())
        short_until = beats[short_id][1]
        assert claimed_until[short_id] < short_until
        assert before + timedelta(seconds=30) <= short_until <= after + timedelta(seconds=30)
        assert beats[capped_id][1] == started[capped_id] + timedelta(hours=1), (
            "capped at started_at + timeout")
        assert open_ticket(conn, capped_id)["lease_expires_at"] == beats[capped_id][1]


def test_a_call_that_outlives_its_timeout_is_reaped_though_its_runner_heartbeats(turing, conn):
    turing.register_actor(scorer(work_query=None, on_complete=None, max_attempts=1,
                                 lease="1 second", timeout="1 second"))
    ticket_id = turing.submit("scorer", "1")
    leases = claim(conn, "hung-call", 1)
    deadline = open_ticket(conn, ticket_id)["started_at"] + timedelta(seconds=1)
    wait_for(lambda: conn.execute("select clock_timestamp() > %s", (deadline,)).fetchone()[0],
             what="the database clock to pass the attempt's timeout")
    # the runner is alive and keeps heartbeating the hung call
    [(_, _, expires)] = heartbeat(conn, "hung-call", leases)
    assert expires == deadline
    assert turing.reap("test") == 1
    status, error = conn.execute(
        "select status, error from turing.ticket_history where ticket_id = %s", (ticket_id,)
    ).fetchone()
    assert status == "dead"
    assert error.startswith("timed out: the attempt ran past the actor timeout")


# -- invariant 8 (SQL side; the runner tests check the process) ---------------------------------
def test_client_calls_return_their_connection_to_the_pool(turing, jobs):
    turing.register_actor(scorer())
    batch = turing.claim_batch("cpu", "w", 5)
    stats = turing.pool.get_stats()
    assert stats["pool_size"] - stats["pool_available"] == 0, "no connection held after a call"
    turing.complete_batch([(b.ticket_id, b.lease_token, {}) for b in batch])
    stats = turing.pool.get_stats()
    assert stats["pool_size"] - stats["pool_available"] == 0


# -- invariant 9 --------------------------------------------------------------------------------
def test_chain_depth_21_is_refused(turing, conn):
    turing.register_actor(dict(name="step", kind="script", script="cat"))
    parent = turing.submit("step", "s0")
    with psycopg.connect(turing.dsn, autocommit=True) as c:
        for depth in range(1, 21):
            parent = c.execute("select turing.spawn(%s, 'step', %s)",
                               (parent, f"s{depth}")).fetchone()[0]
        assert c.execute("select chain_depth from turing.tickets where ticket_id = %s",
                         (parent,)).fetchone()[0] == 20
        with pytest.raises(psycopg.Error) as err:
            c.execute("select turing.spawn(%s, 'step', 's21')", (parent,))
    assert err.value.sqlstate == "TR004"
    assert "max 20" in str(err.value)
    assert conn.execute("select count(*) from turing.tickets").fetchone()[0] == 21


def test_a_chain_never_visits_the_same_actor_and_subject_twice(turing, conn):
    turing.register_actor(dict(name="step", kind="script", script="cat"))
    root = turing.submit("step", "a")
    with psycopg.connect(turing.dsn, autocommit=True) as c:
        child = c.execute("select turing.spawn(%s, 'step', 'b')", (root,)).fetchone()[0]
        with pytest.raises(psycopg.Error) as err:
            c.execute("select turing.spawn(%s, 'step', 'a')", (child,))
    assert err.value.sqlstate == "TR005"
    # the same through the Python mapping
    with pytest.raises(ChainLoop), psycopg.connect(turing.dsn, autocommit=True) as c, \
            mapped_errors():
        c.execute("select turing.spawn(%s, 'step', 'a')", (child,))


def test_spawn_from_on_complete_continues_the_chain(turing, conn, jobs):
    conn.execute(
        """
        create function public.jobs_then_review(p_ticket_id bigint, p_subject_id text,
                                                p_input jsonb, p_output jsonb)
        returns void language plpgsql as $$
        begin
            update public.jobs set status = 'scored' where id = p_subject_id::integer;
            perform turing.spawn(p_ticket_id, 'reviewer', p_subject_id, p_output);
        end $$
        """
    )
    turing.register_actor(dict(name="reviewer", kind="human"))
    turing.register_actor(scorer(on_complete="public.jobs_then_review"))
    [t] = turing.claim_batch("cpu", "w", 1)
    assert turing.complete_ticket(t.ticket_id, t.lease_token, {"score": 3})
    child = conn.execute(
        "select chain_id, chain_depth, parent_ticket_id, input, model from turing.tickets "
        "where actor = 'reviewer'"
    ).fetchone()
    assert child == (t.chain_id, 1, t.ticket_id, {"score": 3}, "human")


def test_too_deep_spawn_in_on_complete_fails_the_attempt_not_silently(turing, conn, jobs):
    conn.execute(
        """
        create function public.jobs_loop(p_ticket_id bigint, p_subject_id text,
                                         p_input jsonb, p_output jsonb)
        returns void language plpgsql as $$
        begin
            perform turing.spawn(p_ticket_id, 'scorer', p_subject_id);
        end $$
        """
    )
    turing.register_actor(scorer(work_query=None, on_complete="public.jobs_loop", max_attempts=1))
    root = turing.submit("scorer", "1")
    [t] = turing.claim_batch("cpu", "w", 1)
    assert t.ticket_id == root
    [outcome] = turing.complete_batch([(t.ticket_id, t.lease_token, {})])
    assert outcome.status == "dead"
    error = conn.execute("select error from turing.tickets where ticket_id = %s",
                         (root,)).fetchone()[0]
    assert "loop" in error and "TR005" in error


def test_python_maps_chain_errors(turing):
    turing.register_actor(dict(name="step", kind="script", script="cat"))
    parent = turing.submit("step", "s0")
    with psycopg.connect(turing.dsn, autocommit=True) as c:
        for depth in range(1, 21):
            parent = c.execute("select turing.spawn(%s, 'step', %s)",
                               (parent, f"s{depth}")).fetchone()[0]
        with pytest.raises(ChainTooDeep), mapped_errors():
            c.execute("select turing.spawn(%s, 'step', 'x')", (parent,))


# -- invariant 10 (SQL side; the runner tests SIGTERM a process) --------------------------------
def test_release_worker_returns_unstarted_claims_at_once(turing, conn):
    turing.register_actor(scorer(work_query=None, on_complete=None))
    for i in range(9):
        turing.submit("scorer", str(i))
    secret(conn, "w1")
    secret(conn, "w2")
    mine, theirs = claim(conn, "w1", 6), claim(conn, "w2", 3)
    started, unstarted = mine[:2], mine[2:]
    unstarted_ids = [t for t, _ in unstarted]
    before = {t: open_ticket(conn, t) for t, _ in mine + theirs}

    # w1 stops: it names its unstarted claims, and one of w2's that it does not hold
    released = conn.execute(
        "select turing.release_worker(p_worker => 'w1', p_secret => %s, p_ticket_ids => %s)",
        (secret(conn, "w1"), [*unstarted_ids, theirs[0][0]])).fetchone()[0]
    assert released == 4, "only w1's own claims"

    for t in unstarted_ids:  # pending again, as if never claimed: not an attempt, no error
        assert open_ticket(conn, t) == {
            **before[t], "status": "pending", "worker": None, "batch_id": None,
            "started_at": None, "lease_token": None, "lease_expires_at": None,
            "heartbeat_at": None,
        }
        assert before[t]["attempt"] == 1 and before[t]["last_error"] is None
    for t, _ in started + theirs:  # running ones keep their leases
        assert open_ticket(conn, t) == before[t]
    assert conn.execute("select count(*) from turing.ticket_history").fetchone()[0] == 0, (
        "a released claim writes no history row")
    runners = "select worker, status from turing.runners order by worker"
    assert conn.execute(runners).fetchall() == [("w1", "stopping"), ("w2", "running")], (
        "w1 is still finishing its started calls")

    # the released tickets are claimable at once, still attempt 1
    again = claim(conn, "w3", 10)
    assert sorted(t for t, _ in again) == sorted(unstarted_ids)
    assert {open_ticket(conn, t)["attempt"] for t, _ in again} == {1}

    # w1's running calls may still finish; once they have, w1 is stopped
    assert complete(conn, started, {"done": True}) == {t: True for t, _ in started}
    assert conn.execute("select turing.release_worker(p_worker => 'w1', p_secret => %s)",
                        (secret(conn, "w1"),)).fetchone()[0] == 0
    assert conn.execute(runners).fetchall() == [("w1", "stopped"), ("w2", "running")]
    for t, _ in theirs:
        assert open_ticket(conn, t) == before[t], "w2's claims were never w1's to release"
