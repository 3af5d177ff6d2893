"""Shared plumbing of the benchmarks: the throwaway server, per-call timings, and the
multiprocessing drain harness every throughput benchmark runs its workers through."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from turing_pg import schema
from turing_pg.pgserver import EmbeddedServer

# why: spawn, not fork: a worker must never inherit the parent's libpq sockets, and every worker
# starts the same way whatever the parent had open.
MP = mp.get_context("spawn")
WORKER_TIMEOUT_S = 600.0


# -- percentiles -----------------------------------------------------------------------------
def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class Latency:
    """Summary of per-call timings, in milliseconds."""

    n: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = sorted(s * 1000.0 for s in seconds)
        return cls(
            n=len(ms),
            p50=percentile(ms, 50),
            p90=percentile(ms, 90),
            p99=percentile(ms, 99),
            max=ms[-1] if ms else float("nan"),
            mean=statistics.fmean(ms) if ms else float("nan"),
        )

    def line(self) -> str:
        return (f"p50 {self.p50:7.2f} ms  p90 {self.p90:7.2f}  p99 {self.p99:7.2f}  "
                f"max {self.max:7.2f}  (n={self.n})")


# -- the server ------------------------------------------------------------------------------
def with_db(dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


TUNING = {"max_wal_size": "8GB", "checkpoint_timeout": "15min"}


class BenchServer:
    """A fresh embedded PostgreSQL in a temporary directory, stopped and deleted on exit."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="turing-bench-"))
        self.server = EmbeddedServer(self.home)
        self.admin_dsn = ""

    def __enter__(self) -> BenchServer:
        info = self.server.ensure_running()
        self.admin_dsn = info.dsn("postgres")
        # why: the bulk loads of history (10 M rows) would otherwise checkpoint every few
        # seconds; every system measured runs under the same settings. Durability stays the
        # default (fsync, synchronous_commit on): each claim and completion really commits.
        execute(self.admin_dsn, *(f"alter system set {k} = '{v}'" for k, v in TUNING.items()),
                "select pg_reload_conf()")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.destroy()
        shutil.rmtree(self.home, ignore_errors=True)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return with_db(self.admin_dsn, name)


def execute(dsn: str, *statements: str) -> None:
    """Run statements one by one in autocommit (VACUUM and CHECKPOINT need it)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt)  # type: ignore[arg-type]


def scalar(dsn: str, query: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


# -- facts for the report --------------------------------------------------------------------
def claim_and_complete(conn: psycopg.Connection[Any], model: str, worker: str, n: int
                       ) -> tuple[list[Any], float, float]:
    """One runner cycle on `conn`: claim_batch(model, worker, n), then complete_batch of what
    it returned. Checks that n were claimed and all accepted; returns the claimed rows and the
    seconds each call took."""
    t0 = time.perf_counter()
    rows = conn.execute(
        "select * from turing.claim_batch(p_model => %(m)s, p_worker => %(w)s, p_limit => %(n)s, "
        "p_known_revisions => '{}', p_start_now => %(n)s)",
        {"m": model, "w": worker, "n": n},
    ).fetchall()
    t1 = time.perf_counter()
    if len(rows) != n:
        raise AssertionError(f"claim_batch returned {len(rows)} rows, want {n}")
    accepted = conn.execute(
        "select count(*) filter (where accepted) from turing.complete_batch("
        "p_ticket_ids => %(i)s, p_lease_tokens => %(t)s, p_outputs => %(o)s::jsonb[])",
        {"i": [r[0] for r in rows], "t": [r[1] for r in rows], "o": ['{"label": "T1"}'] * n},
    ).fetchone()
    t2 = time.perf_counter()
    if not accepted or int(accepted[0]) != n:
        raise AssertionError(f"complete_batch accepted {accepted}, want {n}")
    return rows, t1 - t0, t2 - t1


def machine_facts() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


SERVER_SETTINGS = ("shared_buffers", "synchronous_commit", "fsync", "wal_level", "max_wal_size",
                   "checkpoint_timeout", "work_mem", "max_connections", "jit")


def server_facts(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        facts = {"version": str(conn.execute("show server_version").fetchone()[0])}  # type: ignore[index]
        for name in SERVER_SETTINGS:
            facts[name] = str(conn.execute(f"show {name}").fetchone()[0])  # type: ignore[index]
    return facts


# -- the drain harness -----------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerReport:
    """What one worker process did: jobs it finished, between its start and its end."""

    jobs: int
    started: float
    ended: float


@dataclass(frozen=True)
class Drain:
    """Jobs finished by all workers over the wall time from the first start to the last end."""

    jobs: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0


# A drain worker: (worker index, start barrier, **params) -> WorkerReport. It connects, waits on
# the barrier so every worker starts together, then drains until its source is empty.
DrainFn = Callable[..., WorkerReport]


def _worker_main(fn: DrainFn, index: int, barrier: Barrier, out: Any,
                 params: dict[str, Any]) -> None:
    try:
        out.put((index, fn(index, barrier, **params)))
    except BaseException as exc:
        barrier.abort()
        out.put((index, f"{type(exc).__name__}: {exc}"))
        raise


def run_drain(fn: DrainFn, workers: int, params: dict[str, Any]) -> Drain:
    """Run `workers` processes of `fn` at once; throughput is measured on the monotonic clock,
    which is one clock for every process of the machine (CLOCK_MONOTONIC)."""
    barrier = MP.Barrier(workers)
    out = MP.Queue()
    procs = [
        MP.Process(target=_worker_main, args=(fn, i, barrier, out, params), daemon=True)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    reports: list[WorkerReport] = []
    errors: list[str] = []
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    try:
        for _ in procs:
            _, result = out.get(timeout=max(1.0, deadline - time.monotonic()))
            if isinstance(result, WorkerReport):
                reports.append(result)
            else:
                errors.append(result)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join()
    if errors:
        raise RuntimeError(f"{fn.__name__}: worker failed: {errors[0]}")
    return Drain(
        jobs=sum(r.jobs for r in reports),
        seconds=max(r.ended for r in reports) - min(r.started for r in reports),
    )


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as t:` ... then t[0] is the elapsed seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


BENCH_ROLE = "turing_bench_app"


def upgrade(dsn: str) -> None:
    """Turing's schema in a bench database, with turing_bench_app as the run_as of the actors
    the benchmarks register (as a superuser, which is refused as a run_as; README, roles)."""
    schema.upgrade(dsn)
    schema.use_pipeline_role(dsn, BENCH_ROLE)

