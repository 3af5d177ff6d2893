"""Counts under contention, and bulk submit.

1. The storm: many clients submit, claim, complete, fail, abandon (for reap) and reap through
   the SQL API for a fixed time, while one client compacts the counts every second and another
   compares turing.v_counts with count(*) of turing.tickets every two seconds (one statement, one
   snapshot). Reports the deadlocks (psycopg.errors.DeadlockDetected) and any other error by
   type, whether the counts were exact at every checkpoint and at the end, and the attempts
   finished per second.
2. Bulk submit: turing.submit_many of N new subjects in one call (through Turing.submit_many),
   timed, with its counts checked against count(*).

Usage (from bench/): python counts_bench.py [--clients 64] [--seconds 60] [--bulk 100000]
[--dsn DSN] (default: a throwaway embedded server). Each client is a thread with its own
connection, spread over a few processes so the Python side is not the bottleneck."""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from harness import MP, BenchServer, machine_facts, server_facts

from turing_pg import schema
from turing_pg.db import Turing

ACTORS = (("a1", "m1"), ("a2", "m1"), ("b1", "m2"))
MODELS = sorted({m for _, m in ACTORS})

EXACT = """
    select count(*) from (
        select k.actor, k.status, k.n as kept, f.n as fresh
        from turing.v_counts as k
        full join (
            select t.actor, t.status, count(*) as n from turing.tickets as t group by 1, 2
        ) as f on k.actor = f.actor and k.status = f.status
        where k.n is distinct from f.n
    ) as d
"""


def _actor_spec(name: str, model: str) -> dict[str, Any]:
    # why: a short lease, so abandoned claims expire during the run and reap() has work; three
    # attempts and no backoff, so failures make retries (pending rows) and dead letters.
    return dict(name=name, kind="script", script="true", model=model, lease="2 seconds",
                timeout="10 seconds", max_attempts=3, backoff_base="0 seconds")


def setup(dsn: str) -> None:
    schema.upgrade(dsn)
    with Turing(dsn, max_size=1) as t:
        for name, model in ACTORS:
            t.register_actor(_actor_spec(name, model))


@dataclass
class Tally:
    ops: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Tally) -> None:
        self.ops.update(other.ops)
        self.errors.update(other.errors)


def _client(dsn: str, index: int, deadline: float, tally: Tally, bulk: bool) -> None:
    rng = random.Random(index)
    worker = f"c{index}"
    seq = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select turing.register_runner(%s, %s)", (worker, MODELS))
        while time.monotonic() < deadline:
            try:
                r = rng.random()
                if r < 0.25:
                    actor = rng.choice(ACTORS)[0]
                    if bulk and rng.random() < 0.3:
                        ids = [f"{worker}-{seq + i}" for i in range(rng.randint(2, 20))]
                        conn.execute("select count(*) from turing.submit_many(%s, %s)",
                                     (actor, ids))
                    else:
                        ids = [f"{worker}-{seq + i}" for i in range(rng.randint(1, 3))]
                        # several submits in one transaction: several count changes in a row
                        with conn.transaction():
                            for s in ids:
                                conn.execute("select turing.submit(%s, %s)", (actor, s))
                    seq += len(ids)
                    tally.ops["submitted"] += len(ids)
                    continue
                model = rng.choice(MODELS)
                rows = conn.execute(
                    "select ticket_id, lease_token from turing.claim_batch(%s, %s, %s::integer, '{}')",
                    (model, worker, rng.randint(1, 10)),
                ).fetchall()
                tally.ops["claimed"] += len(rows)
                done, failed = [], []
                for row in rows:
                    x = rng.random()
                    if x < 0.6:
                        done.append(row)
                    elif x < 0.85:
                        failed.append(row)
                    # else: abandoned, its lease expires and reap() takes it back
                if done:
                    conn.execute(
                        "select count(*) from turing.complete_batch(%s, %s, %s::jsonb[])",
                        ([d[0] for d in done], [d[1] for d in done], ["{}"] * len(done)),
                    )
                    tally.ops["completed"] += len(done)
                if failed:
                    n = len(failed)
                    conn.execute(
                        "select count(*) from turing.fail_batch(%s, %s, %s, %s, %s)",
                        ([f[0] for f in failed], [f[1] for f in failed], ["bench"] * n,
                         ["failed"] * n, [True] * n),
                    )
                    tally.ops["failed"] += n
                if rng.random() < 0.05:
                    reaped = conn.execute("select turing.reap(%s)", (worker,)).fetchone()
                    tally.ops["reaped"] += int(reaped[0]) if reaped else 0
            except psycopg.errors.DeadlockDetected:
                tally.errors["DeadlockDetected"] += 1
            except psycopg.Error as exc:
                name = type(exc).__name__
                if name not in tally.errors:
                    print(f"client {index}: {name}: {exc}", file=sys.stderr)
                tally.errors[name] += 1


def _process(dsn: str, first: int, count: int, seconds: float, barrier: Any, out: Any,
             bulk: bool) -> None:
    tallies = [Tally() for _ in range(count)]
    barrier.wait()
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=_client, args=(dsn, first + i, deadline, tallies[i], bulk))
               for i in range(count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total = Tally()
    for t in tallies:
        total.merge(t)
    out.put((dict(total.ops), dict(total.errors)))


def storm(dsn: str, clients: int, seconds: float, processes: int) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        bulk = bool(conn.execute(
            "select to_regproc('turing.submit_many') is not null").fetchone()[0])
        compact = bool(conn.execute(
            "select to_regproc('turing.compact_counts') is not null").fetchone()[0])
        finished_before = int(conn.execute(
            "select count(*) from turing.ticket_history").fetchone()[0])
    processes = max(1, min(processes, clients))
    barrier = MP.Barrier(processes + 1)
    out = MP.Queue()
    shares = [clients // processes + (1 if i < clients % processes else 0)
              for i in range(processes)]
    procs, first = [], 0
    for share in shares:
        procs.append(MP.Process(target=_process, args=(dsn, first, share, seconds, barrier, out,
                                                       bulk), daemon=True))
        first += share
    for p in procs:
        p.start()
    barrier.wait()
    started = time.monotonic()
    checkpoints, inexact, folded = 0, 0, 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        next_check = started + 2.0
        while time.monotonic() < started + seconds:
            if compact:
                row = conn.execute("select turing.compact_counts()").fetchone()
                folded += int(row[0]) if row else 0
            if time.monotonic() >= next_check:
                checkpoints += 1
                inexact += int(conn.execute(EXACT).fetchone()[0]) > 0
                next_check += 2.0
            time.sleep(1.0)
    total = Tally()
    for _ in procs:
        ops, errors = out.get(timeout=seconds + 120)
        total.merge(Tally(Counter(ops), Counter(errors)))
    for p in procs:
        p.join(timeout=30)
    elapsed = time.monotonic() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        final_diff = int(conn.execute(EXACT).fetchone()[0])
        if compact:
            conn.execute("select turing.compact_counts()")
        after_compact = int(conn.execute(EXACT).fetchone()[0])
        finished = int(conn.execute(
            "select count(*) from turing.ticket_history").fetchone()[0]) - finished_before
        count_rows = int(conn.execute("select count(*) from turing.ticket_counts").fetchone()[0])
    return {
        "clients": clients, "seconds": round(elapsed, 1),
        "deadlocks": total.errors.get("DeadlockDetected", 0),
        "other_errors": {k: v for k, v in total.errors.items() if k != "DeadlockDetected"},
        "checkpoints": checkpoints, "checkpoints_inexact": inexact,
        "final_rows_differing": final_diff, "after_compaction_rows_differing": after_compact,
        "ops": dict(total.ops), "attempts_finished": finished,
        "attempts_finished_per_s": round(finished / elapsed, 1),
        "slot_rows_folded": folded, "ticket_counts_rows_at_end": count_rows,
    }


def bulk_submit(dsn: str, n: int) -> dict[str, Any]:
    with Turing(dsn, max_size=1) as t:
        t.register_actor(dict(name="bulk", kind="script", script="true", model="bulk"))
        ids = [f"s{i}" for i in range(n)]
        t0 = time.perf_counter()
        rows = t.submit_many("bulk", ids)
        seconds = time.perf_counter() - t0
        created = sum(1 for r in rows if r["skipped"] is None)
        t0 = time.perf_counter()
        again = t.submit_many("bulk", ids)
        seconds_again = time.perf_counter() - t0
    with psycopg.connect(dsn, autocommit=True) as conn:
        kept = conn.execute(
            "select coalesce(sum(n), 0) from turing.v_counts where actor = 'bulk'").fetchone()[0]
        fresh = conn.execute("select count(*) from turing.ticket_open o join turing.actors a "
                             "using (actor_id) where a.name = 'bulk'").fetchone()[0]
    return {
        "subjects": n, "seconds": round(seconds, 2), "created": created,
        "resubmit_seconds": round(seconds_again, 2),
        "resubmit_skipped": sum(1 for r in again if r["skipped"] == "open_ticket"),
        "counts_exact": int(kept) == int(fresh) == n,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--bulk", type=int, default=100_000, help="subjects for submit_many (0: skip)")
    ap.add_argument("--dsn", default=None, help="a database to use (default: embedded server)")
    args = ap.parse_args(argv)

    def run(dsn: str, bulk_dsn: str | None) -> dict[str, Any]:
        setup(dsn)
        report: dict[str, Any] = {"machine": machine_facts(), "server": server_facts(dsn)}
        report["storm"] = storm(dsn, args.clients, args.seconds, args.processes)
        print(json.dumps(report["storm"]), file=sys.stderr)
        if args.bulk and bulk_dsn:
            schema.upgrade(bulk_dsn)
            report["bulk_submit"] = bulk_submit(bulk_dsn, args.bulk)
        return report

    if args.dsn:
        report = run(args.dsn, args.dsn)
    else:
        with BenchServer() as srv:
            report = run(srv.create_database("counts_storm"), srv.create_database("counts_bulk"))
    print(json.dumps(report, indent=2))
    storm_ok = (report["storm"]["deadlocks"] == 0 and report["storm"]["checkpoints_inexact"] == 0
                and report["storm"]["final_rows_differing"] == 0)
    return 0 if storm_ok and report.get("bulk_submit", {}).get("counts_exact", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
