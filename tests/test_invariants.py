"""One test (at least) per invariant of DESIGN.md, concurrent where it can be."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter

import psycopg
import pytest

from turing_pg.db import (
    ActorDefinition,
    ChainLoop,
    ChainTooDeep,
    DuplicateOpenTicket,
    Turing,
    mapped_errors,
)

WORK_QUERY = "select id as subject_id, title from public.jobs where status = 'new'"


def scorer(**overrides) -> ActorDefinition:
    fields = dict(
        name="scorer", kind="script", script="cat", work_query=WORK_QUERY,
        on_complete="public.jobs_scored", backoff_base="0 seconds", buffer_size=80,
    )
    fields.update(overrides)
    return ActorDefinition(**fields)


def open_duplicates(conn: psycopg.Connection) -> int:
    return conn.execute(
        "select count(*) from (select actor_id, subject_id from turing.ticket_open "
        "group by 1, 2 having count(*) > 1) d"
    ).fetchone()[0]


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


# -- invariant 1 --------------------------------------------------------------------------------
def test_two_runners_never_claim_the_same_subject(dsn, turing, conn, jobs):
    turing.register_actor(scorer(buffer_size=40))
    claimed: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def runner(worker: str) -> None:
        try:
            with Turing(dsn, max_size=1) as t:
                barrier.wait()
                while True:
                    batch = t.claim_batch("cpu", worker, 7)
                    if not batch:
                        return
                    with lock:
                        claimed.extend(b.subject_id for b in batch)
                    t.complete_batch([(b.ticket_id, b.lease_token, {"w": worker}) for b in batch])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(f"w{i}",)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    assert len(claimed) == jobs, "every subject claimed once"
    assert Counter(claimed).most_common(1)[0][1] == 1, "no subject claimed twice"
    assert conn.execute("select max(scored_times) from public.jobs").fetchone()[0] == 1
    assert open_duplicates(conn) == 0


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
    turing.register_actor(scorer(work_query=None, lease="1 second", timeout="10 seconds"))
    turing.submit("scorer", "1")
    [first] = turing.claim_batch("cpu", "slow-runner", 1)
    time.sleep(1.2)
    assert turing.reap("test") == 1
    [second] = turing.claim_batch("cpu", "fast-runner", 1)
    assert second.subject_id == first.subject_id and second.attempt == 2
    assert turing.complete_ticket(second.ticket_id, second.lease_token, {"by": "re-run"})
    # the slow call comes back late: refused, nothing written
    assert not turing.complete_ticket(first.ticket_id, first.lease_token, {"by": "late"})
    assert conn.execute("select score, scored_times from public.jobs where id = %s",
                        (int(first.subject_id),)).fetchone() == ({"by": "re-run"}, 1)
    statuses = conn.execute(
        "select status from turing.tickets where subject_id = %s order by attempt",
        (first.subject_id,),
    ).fetchall()
    assert statuses == [("timed_out",), ("completed",)]


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


def test_failures_retry_with_backoff_then_go_dead(turing, conn, jobs):
    turing.register_actor(scorer(work_query=None, max_attempts=2, backoff_base="1 hour"))
    turing.submit("scorer", "9")
    [t] = turing.claim_batch("cpu", "w", 1)
    [outcome] = turing.fail_batch([(t.ticket_id, t.lease_token, "boom", "failed", True)])
    assert outcome.status == "failed" and outcome.retry_ticket_id
    run_after = conn.execute(
        "select run_after - created_at from turing.ticket_open where ticket_id = %s",
        (outcome.retry_ticket_id,),
    ).fetchone()[0]
    # 1 hour +/- 25 % jitter
    assert 0.75 * 3600 <= run_after.total_seconds() <= 1.25 * 3600
    assert turing.claim_batch("cpu", "w", 1) == [], "not claimable before run_after"
    conn.execute("update turing.ticket_open set run_after = now() where ticket_id = %s",
                 (outcome.retry_ticket_id,))
    [retry] = turing.claim_batch("cpu", "w", 1)
    assert retry.attempt == 2 and retry.last_error == "boom"
    assert turing.fail_ticket(retry.ticket_id, retry.lease_token, "boom again")
    assert conn.execute(
        "select status, failure_kind from turing.tickets where ticket_id = %s",
        (retry.ticket_id,),
    ).fetchone() == ("dead", "failed")


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
    turing.register_actor(ActorDefinition(name="step", kind="script", script="cat"))
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
    turing.register_actor(ActorDefinition(name="step", kind="script", script="cat"))
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
    turing.register_actor(ActorDefinition(name="reviewer", kind="human"))
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
    turing.register_actor(ActorDefinition(name="step", kind="script", script="cat"))
    parent = turing.submit("step", "s0")
    with psycopg.connect(turing.dsn, autocommit=True) as c:
        for depth in range(1, 21):
            parent = c.execute("select turing.spawn(%s, 'step', %s)",
                               (parent, f"s{depth}")).fetchone()[0]
        with pytest.raises(ChainTooDeep), mapped_errors():
            c.execute("select turing.spawn(%s, 'step', 'x')", (parent,))


# -- invariant 10 (SQL side; the runner tests SIGTERM a process) --------------------------------
def test_release_worker_returns_unstarted_claims_at_once(turing, conn, jobs):
    turing.register_actor(scorer())
    turing.register_runner("w1", ["cpu"])
    batch = turing.claim_batch("cpu", "w1", 6)
    started, unstarted = batch[:2], batch[2:]
    assert turing.release_worker("w1", [b.ticket_id for b in unstarted]) == 4
    rows = conn.execute(
        "select status, attempt, error from turing.tickets where ticket_id = any(%s)",
        ([b.ticket_id for b in unstarted],),
    ).fetchall()
    assert rows == [("pending", 1, None)] * 4, "back to pending, same attempt, no error"
    assert conn.execute("select status from turing.runners where worker = 'w1'"
                        ).fetchone()[0] == "stopping"
    for b in started:  # the running ones may still finish
        assert turing.complete_ticket(b.ticket_id, b.lease_token, {"done": True})
    assert conn.execute("select count(*) from turing.tickets where status = 'interrupted'"
                        ).fetchone()[0] == 0
