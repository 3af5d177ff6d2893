"""Exact counts under contention (invariant 15), and bulk submit.

    python bench/counts_bench.py [--clients 64] [--seconds 60] [--bulk 100000]
                                 [--singles 10000] [--output docs/benchmarks.md]

1. The storm, twice in one run on one server, each in a fresh database: "before" puts back the
   slot rule of 0.1 (turing._counts_slot = backend pid % 16, no compaction), "after" is this
   release (a slot per open transaction, compact_counts() every second). Many clients submit
   (one by one, several in one transaction, and in bulk), claim, complete, fail, abandon (for
   reap) and reap through the SQL API for a fixed time while a watcher compares
   turing.v_counts with count(*) of turing.tickets every two seconds (one statement, one
   snapshot). Reports the deadlocks (psycopg.errors.DeadlockDetected), any other error by type,
   whether the counts were exact at every checkpoint and at the end, and the attempts finished
   per second. Each client is a thread with its own connection, spread over a few processes so
   the Python side is not the bottleneck.
2. Bulk submit: turing.submit_many of N new subjects in one call (through Turing.submit_many)
   and again (all skipped), against --singles submit() calls in one statement, the old way.

Starts its own embedded PostgreSQL (stopped and deleted afterwards), prints the figures and
replaces its section of the report (--output; default docs/benchmarks.md, "-" for none)
between its markers, as bench/recovery.py and bench/healing.py do; bench/run.py keeps such
sections when it rewrites the report. The machine is small and shared: read the ratios
within one run.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import psycopg
from harness import MP, BenchServer, machine_facts, server_facts

from turing_pg.db import Turing

REPO = Path(__file__).resolve().parent.parent
ACTORS = (("a1", "m1"), ("a2", "m1"), ("b1", "m2"))
MODELS = sorted({m for _, m in ACTORS})
BEGIN, END = "<!-- bench/counts_bench.py: begin -->", "<!-- bench/counts_bench.py: end -->"

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

# why: the "before" arm, the slot rule of 0.1 exactly: the counts trigger asks _counts_slot()
# once per transaction, and 0.1 used the backend's pid % 16 with no lock, so backends shared
# counter rows. compact_counts() is not run in that arm (0.1 had none).
PID_MOD_16 = """
    create or replace function turing._counts_slot() returns smallint
    language sql set search_path = '' as
    $$ select (pg_catalog.pg_backend_pid() % 16)::smallint $$
"""


FLOOR = """
    with o as (
        insert into turing.ticket_open as o (
            ticket_id, actor_id, model, subject_id, priority, source, chain_id
        )
        select pg_catalog.nextval('turing.ticket_id_seq'), a.actor_id, a.model, u.s, 0,
            'submit', 0
        from unnest(%(ids)s::text []) as u (s), turing.actors as a where a.name = 'bulk'
        returning o.ticket_id, o.actor_id, o.subject_id
    )
    insert into turing.chain_steps (chain_id, actor_id, subject_id, ticket_id)
    select o.ticket_id, o.actor_id, o.subject_id, o.ticket_id from o
"""


def _actor_spec(name: str, model: str) -> dict[str, Any]:
    # why: a short lease, so abandoned claims expire during the run and reap() has work; three
    # attempts and no backoff, so failures make retries (pending rows) and dead letters.
    return dict(name=name, kind="script", script="true", model=model, lease="2 seconds",
                timeout="10 seconds", max_attempts=3, backoff_base="0 seconds")


def setup(dsn: str, before: bool) -> None:
    harness.upgrade(dsn)
    with Turing(dsn, max_size=1) as t:
        for name, model in ACTORS:
            t.register_actor(_actor_spec(name, model))
    if before:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(PID_MOD_16)


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
                n = rng.randint(1, 10)
                rows = conn.execute(
                    "select ticket_id, lease_token from turing.claim_batch(%s, %s, %s, '{}', %s)",
                    (model, worker, n, n),
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


def storm(dsn: str, clients: int, seconds: float, processes: int, compact: bool
          ) -> dict[str, Any]:
    bulk = True
    with psycopg.connect(dsn, autocommit=True) as conn:
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


def bulk_submit(dsn: str, n: int, singles: int) -> dict[str, Any]:
    harness.upgrade(dsn)
    with Turing(dsn, max_size=1) as t:
        t.register_actor(dict(name="bulk", kind="script", script="true", model="bulk"))
        t.register_actor(dict(name="single", kind="script", script="true", model="bulk"))
        ids = [f"s{i}" for i in range(n)]
        t0 = time.perf_counter()
        rows = t.submit_many("bulk", ids)
        seconds = time.perf_counter() - t0
        created = sum(1 for r in rows if r.skipped is None)
        t0 = time.perf_counter()
        again = t.submit_many("bulk", ids)
        seconds_again = time.perf_counter() - t0
    with psycopg.connect(dsn, autocommit=True) as conn:
        # the floor: the same rows inserted bare (no checks, no report), then rolled back: the
        # index inserts of both tables (their foreign keys to actors went in migration 0010)
        t0 = time.perf_counter()
        with conn.transaction(force_rollback=True):
            conn.execute(FLOOR, {"ids": [f"f{i}" for i in range(n)]})
        seconds_floor = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("select count(turing.submit('single', g::text)) "
                     "from generate_series(1, %s) as g", (singles,))
        seconds_singles = time.perf_counter() - t0
        differing = int(conn.execute(EXACT).fetchone()[0])
    return {
        "subjects": n, "seconds": round(seconds, 2), "created": created,
        "resubmit_seconds": round(seconds_again, 2),
        "resubmit_skipped": sum(1 for r in again if r.skipped == "open_ticket"),
        "singles": singles, "singles_seconds": round(seconds_singles, 2),
        "floor_seconds": round(seconds_floor, 2),
        "counts_exact": differing == 0 and created == n,
    }


def run(server: BenchServer, clients: int, seconds: float, processes: int, bulk: int,
        singles: int) -> dict[str, Any]:
    report: dict[str, Any] = {"clients": clients, "seconds": seconds}
    for arm in ("before", "after"):
        dsn = server.create_database(f"counts_{arm}")
        setup(dsn, before=arm == "before")
        report[arm] = storm(dsn, clients, seconds, processes, compact=arm == "after")
        print(f"{arm}: {json.dumps(report[arm])}", file=sys.stderr, flush=True)
    if bulk:
        report["bulk_submit"] = bulk_submit(server.create_database("counts_bulk"), bulk, singles)
        print(f"bulk: {json.dumps(report['bulk_submit'])}", file=sys.stderr, flush=True)
    return report


def _exact(s: dict[str, Any]) -> bool:
    return s["checkpoints_inexact"] == 0 and s["final_rows_differing"] == 0


def ok(report: dict[str, Any]) -> bool:
    after = report["after"]
    bulk = report.get("bulk_submit")
    return (after["deadlocks"] == 0 and not after["other_errors"] and _exact(after)
            and (bulk is None or (bulk["counts_exact"] and bulk["seconds"] < 3)))


def report_counts(r: dict[str, Any], command: str | None = None) -> list[str]:
    """The section for docs/benchmarks.md, between its markers."""
    b, a = r["before"], r["after"]

    def mark(good: bool) -> str:
        return "pass" if good else "**miss**"

    def row(label: str, s: dict[str, Any], target: str) -> str:
        others = ", ".join(f"{k} {v}" for k, v in s["other_errors"].items()) or "none"
        return (f"| {label} | {s['clients']} | {s['seconds']:.0f} | {s['deadlocks']} | {others} "
                f"| {s['checkpoints'] - s['checkpoints_inexact']} of {s['checkpoints']} "
                f"| {'yes' if s['final_rows_differing'] == 0 else 'no'} "
                f"| {s['attempts_finished_per_s']:.0f} | {s['ticket_counts_rows_at_end']} "
                f"| {target} |")

    lines = [BEGIN, "## 7. Exact counts under contention, and bulk submit", ""]
    if command:
        lines += [f"Generated by `{command}` (replaces this section only).", ""]
    lines += [
        f"{r['clients']} clients, each its own connection, for {r['seconds']:.0f} s: submit "
        "(one, several in one transaction, or submit_many of 2-20), claim_batch of 1-10, then "
        "complete_batch (60 %), fail_batch (25 %, retryable) or abandon (15 %, for reap; lease "
        "2 s), and reap() now and then; three actors on two models. A watcher compares "
        "`v_counts` with `count(*)` of `turing.tickets` every 2 s in one statement. *before* "
        "is the slot rule of 0.1 put back (`_counts_slot()` = backend pid % 16, no "
        "compaction); *after* is this release (a slot per open transaction, "
        "`compact_counts()` every second). Both arms in one run, on one server.",
        "",
        "| arm | clients | s | deadlocks | other errors | exact checkpoints | exact at end "
        "| attempts finished / s | ticket_counts rows at end | target 0 deadlocks, exact |",
        "|---|---:|---:|---:|---|---:|---|---:|---:|---|",
        row("before (pid % 16)", b, "(baseline)"),
        row("after (slot per transaction)", a,
            mark(a["deadlocks"] == 0 and not a["other_errors"] and _exact(a))),
        "",
        f"Deadlocks: {b['deadlocks']} before, {a['deadlocks']} after. Attempts finished per "
        f"second, after / before: "
        f"{a['attempts_finished_per_s'] / max(b['attempts_finished_per_s'], 0.1):.2f} x "
        "(a deadlock rolls back the whole call; the machine is shared, so read this one "
        "loosely).",
        "",
    ]
    bulk = r.get("bulk_submit")
    if bulk:
        per_single = bulk["singles_seconds"] / bulk["singles"]
        per_bulk = bulk["seconds"] / bulk["subjects"]
        lines += [
            "| bulk submit | subjects | s | per subject | target |",
            "|---|---:|---:|---:|---|",
            f"| `submit_many` (new subjects, one call) | {bulk['subjects']:,} | "
            f"{bulk['seconds']:.2f} | {per_bulk * 1e6:.1f} µs | "
            f"{mark(bulk['seconds'] < 3 and bulk['counts_exact'])} (< 3 s, counts exact) |",
            f"| `submit_many` again (all skipped: open ticket) | {bulk['subjects']:,} | "
            f"{bulk['resubmit_seconds']:.2f} | "
            f"{bulk['resubmit_seconds'] / bulk['subjects'] * 1e6:.1f} µs | (info) |",
            f"| `submit()` per subject, in one statement (the old way) | {bulk['singles']:,} | "
            f"{bulk['singles_seconds']:.2f} | {per_single * 1e6:.1f} µs | (info) |",
            f"| the floor: the same rows inserted bare into ticket_open and chain_steps "
            f"(rolled back) | {bulk['subjects']:,} | {bulk['floor_seconds']:.2f} | "
            f"{bulk['floor_seconds'] / bulk['subjects'] * 1e6:.1f} µs | (info) |",
            "",
            f"`submit_many` takes {bulk['seconds'] / max(bulk['floor_seconds'], 1e-9):.2f} x "
            "the bare inserts it has to make (the index entries of ticket_open and chain_steps; "
            "the per-row foreign-key checks that were 40 % of them went in migration 0010).",
            "",
        ]
        if bulk["singles"] == 10_000:
            # why: submit() per subject is quadratic, so only the issue's own size compares
            speed = bulk["singles_seconds"] / 28
            lines += [
                "The issue's reference figure for 10,000 `submit()` calls in one statement was "
                f"28 s; this run took {bulk['singles_seconds']:.0f} s, so the machine ran "
                f"{speed:.2f} x slower than then, and `submit_many` of {bulk['subjects']:,} "
                f"at that speed is {bulk['seconds'] / speed:.1f} s.",
                "",
            ]
        lines += [
            f"Per subject, `submit_many` is {per_single / max(per_bulk, 1e-9):.0f} x faster "
            "than `submit()` called per subject in one transaction, which rewrites one counter "
            "row once per call.",
            "",
        ]
    lines.append(END)
    return lines


def splice(path: Path, section: list[str]) -> None:
    """Replace this bench's section of the report, or add it before the appendix."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = "\n".join(section)
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    elif "## Appendix" in text:
        head, appendix = text.split("## Appendix", 1)
        text = head.rstrip() + "\n\n" + block + "\n\n## Appendix" + appendix
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--bulk", type=int, default=100_000, help="subjects for submit_many (0: skip)")
    ap.add_argument("--singles", type=int, default=10_000,
                    help="submit() calls in one statement, for comparison")
    ap.add_argument("--output", default=str(REPO / "docs" / "benchmarks.md"),
                    help="the report whose section to replace (- for none)")
    args = ap.parse_args(argv)
    command = "python bench/counts_bench.py" + "".join(
        f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:]))
    print(f"machine: {machine_facts()}", file=sys.stderr)
    with BenchServer() as server:
        print(f"server: {server_facts(server.admin_dsn)}", file=sys.stderr)
        report = run(server, args.clients, args.seconds, args.processes, args.bulk, args.singles)
    section = report_counts(report, command)
    print("\n".join(section))
    if args.output != "-":
        splice(Path(args.output), section)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0 if ok(report) else 1


if __name__ == "__main__":
    raise SystemExit(main())
