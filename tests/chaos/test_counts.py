"""Invariant 15: exact counts stay exact and deadlock-free at any number of concurrent backends.

64 clients, each its own connection and backend, submit (one at a time, several in one
transaction, and in bulk), claim, complete, fail and reap through the SQL API for
TURING_CHAOS_SECONDS (20 by default), while one more compacts the counter slots every half
second and another compares turing.v_counts with count(*) of turing.tickets in one snapshot.
The statements that used to deadlock are all here: a claim changes the pending and running
counts in one order, a failure changes running, failed and pending in another, and under the old
slot choice (backend pid % 16) two backends shared counter rows and met in opposite orders about
300 times in 20 s. The benchmark (bench/counts_bench.py) runs the same storm for 60 s."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

import psycopg
from psycopg.types.json import Jsonb

CLIENTS = 64
SECONDS = float(os.environ.get("TURING_CHAOS_SECONDS", "20"))
ACTORS = (("a1", "m1"), ("a2", "m1"), ("b1", "m2"))
MODELS = ("m1", "m2")

# why: one statement, so both sides are read from one snapshot: exact at every committed moment,
# not only once the storm is over.
COUNTS_DIFFERING = """
    select count(*) from turing.v_counts as k
    full join (
        select t.actor, t.status, count(*) as n from turing.tickets as t group by 1, 2
    ) as f on k.actor = f.actor and k.status = f.status
    where k.n is distinct from f.n
"""


def _register(conn: psycopg.Connection) -> None:
    for name, model in ACTORS:
        # why: a short lease, so abandoned claims expire and reap() has work during the storm;
        # three attempts and no backoff, so failures make retries at once and some go dead.
        conn.execute("select turing.register_actor(%s)", (Jsonb(dict(
            name=name, kind="script", script="true", model=model, lease="1 second",
            timeout="5 seconds", max_attempts=3, backoff_base="0 seconds",
        )),))


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ops: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def error(self, exc: psycopg.Error) -> None:
        name = type(exc).__name__
        with self.lock:
            self.errors[name] += 1
            self.examples.setdefault(name, str(exc).splitlines()[0])

    def add(self, ops: Counter[str]) -> None:
        with self.lock:
            self.ops.update(ops)


def _client(dsn: str, index: int, start: threading.Barrier, deadline: list[float],
            tally: Tally) -> None:
    rng = random.Random(index)
    worker = f"chaos-{index}"
    ops: Counter[str] = Counter()
    seq = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select turing.register_runner(%s, %s)", (worker, list(MODELS)))
        start.wait()
        while time.monotonic() < deadline[0]:
            try:
                if rng.random() < 0.25:
                    actor = rng.choice(ACTORS)[0]
                    ids = [f"{worker}-{seq + i}" for i in range(rng.randint(1, 12))]
                    seq += len(ids)
                    if len(ids) > 3:
                        conn.execute("select count(*) from turing.submit_many(%s, %s)",
                                     (actor, ids))
                    else:
                        # why: several count changes in one transaction, with claims and
                        # failures of other backends changing the same actor in between.
                        with conn.transaction():
                            for subject in ids:
                                conn.execute("select turing.submit(%s, %s)", (actor, subject))
                    ops["submitted"] += len(ids)
                    continue
                leases = conn.execute(
                    "select ticket_id, lease_token from turing.claim_batch("
                    "%s, %s, %s, '{}', %s)",
                    (rng.choice(MODELS), worker, n := rng.randint(1, 10), n),
                ).fetchall()
                ops["claimed"] += len(leases)
                done = [lease for lease in leases if rng.random() < 0.6]
                rest = [lease for lease in leases if lease not in done]
                failed = [lease for lease in rest if rng.random() < 0.7]
                # what is neither done nor failed is abandoned: its lease expires for reap()
                if done:
                    conn.execute(
                        "select count(*) from turing.complete_batch(%s, %s, %s::jsonb[])",
                        ([d[0] for d in done], [d[1] for d in done], ["{}"] * len(done)),
                    )
                    ops["completed"] += len(done)
                if failed:
                    k = len(failed)
                    conn.execute(
                        "select count(*) from turing.fail_batch(%s, %s, %s, %s, %s)",
                        ([f[0] for f in failed], [f[1] for f in failed], ["chaos"] * k,
                         ["failed"] * k, [True] * k),
                    )
                    ops["failed"] += k
                if rng.random() < 0.05:
                    conn.execute("select turing.reap(%s)", (worker,))
                    ops["reaps"] += 1
            except psycopg.Error as exc:
                tally.error(exc)
    tally.add(ops)


def test_64_concurrent_clients_on_the_counts_never_deadlock_and_stay_exact(dsn, conn):
    _register(conn)
    tally = Tally()
    start = threading.Barrier(CLIENTS + 1)
    deadline = [0.0]
    threads = [
        threading.Thread(target=_client, args=(dsn, i, start, deadline, tally), daemon=True)
        for i in range(CLIENTS)
    ]
    for th in threads:
        th.start()
    deadline[0] = time.monotonic() + SECONDS
    start.wait(timeout=60)
    checkpoints: list[int] = []
    folded = 0
    with psycopg.connect(dsn, autocommit=True) as watcher:
        while time.monotonic() < deadline[0]:
            time.sleep(0.5)
            # why: compaction runs against the writers the whole time: it must neither make
            # them wait nor change any sum.
            try:
                folded += watcher.execute("select turing.compact_counts()").fetchone()[0]
                checkpoints.append(watcher.execute(COUNTS_DIFFERING).fetchone()[0])
            except psycopg.Error as exc:
                tally.error(exc)
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads), "a client hung"

    assert tally.errors.get("DeadlockDetected", 0) == 0, (
        f"{tally.errors['DeadlockDetected']} deadlocks among {CLIENTS} clients in {SECONDS:.0f} s"
        f": {tally.examples['DeadlockDetected']}"
    )
    assert not tally.errors, f"errors other than deadlocks: {tally.examples}"
    assert checkpoints and set(checkpoints) == {0}, (
        f"v_counts differed from count(*) at {sum(1 for c in checkpoints if c)} of "
        f"{len(checkpoints)} checkpoints"
    )
    assert conn.execute(COUNTS_DIFFERING).fetchone()[0] == 0
    # the storm really ran every path, or the assertions above prove nothing
    assert min(tally.ops[k] for k in ("submitted", "claimed", "completed", "failed")) > 100, (
        tally.ops
    )
    assert folded > 0
    # with nobody writing, one compaction folds every slot: one row per actor and status
    conn.execute("select turing.compact_counts()")
    assert conn.execute(
        "select count(*) filter (where slot <> -1), count(*) - count(distinct (actor_id, status))"
        " from turing.ticket_counts"
    ).fetchone() == (0, 0)
    assert conn.execute(COUNTS_DIFFERING).fetchone()[0] == 0
