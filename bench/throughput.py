"""Benchmark 1: fenced claim + complete throughput of no-op jobs, Turing beside a raw SKIP LOCKED
loop and pgmq on the same server (the Python queue libraries are in peers.py).

Every system is a `Queue`: `load(n)` pre-creates n pending jobs and returns the parameters of its
drain worker; the worker (a top-level function, run in its own process by harness.run_drain)
claims a batch, marks it done, and stops when a claim comes back empty; `check(n)` proves that
exactly n jobs were done, so no figure can come from a drain that skipped work."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from typing import Any, Protocol

import harness
import psycopg
from harness import WorkerReport, execute, scalar


class Queue(Protocol):
    name: str
    note: str

    def setup(self) -> None: ...

    def load(self, n: int, batch: int, workers: int) -> dict[str, Any]: ...

    def check(self, n: int, params: dict[str, Any]) -> None: ...

    def drain_fn(self) -> Any: ...


def _expect(what: str, got: int, want: int) -> None:
    if got != want:
        raise AssertionError(f"{what}: expected {want}, got {got}")


# -- Turing ----------------------------------------------------------------------------------
SUBJECTS_DDL = "create table if not exists public.bench_subjects (id bigint primary key)"


def turing_worker(index: int, barrier: Barrier, *, dsn: str, model: str, worker: str,
                  batch: int) -> WorkerReport:
    name = f"{worker}-{index}"
    done = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select turing.register_runner(%s, array[%s])", (name, model))
        known: list[int] = []
        barrier.wait()
        started = time.perf_counter()
        while True:
            # why: the runner's call: the actor's definition comes once, then the revision it
            # holds is passed back (runner/db.py caches it the same way).
            rows = conn.execute(
                "select ticket_id, lease_token, actor_revision "
                "from turing.claim_batch(%s, %s, %s, %s::bigint[], %s)",
                (model, name, batch, known, batch),
            ).fetchall()
            if not rows:
                break
            ids = [r[0] for r in rows]
            tokens = [r[1] for r in rows]
            known = sorted({*known, *(r[2] for r in rows)})
            accepted = conn.execute(
                "select count(*) filter (where accepted) "
                "from turing.complete_batch(%s, %s, %s::jsonb[])",
                (ids, tokens, ["{}"] * len(ids)),
            ).fetchone()
            done += int(accepted[0]) if accepted else 0
        ended = time.perf_counter()
    return WorkerReport(done, started, ended)


@dataclass
class TuringQueue:
    """Real tickets: a script actor without on_complete (pure queue overhead), its n pending
    tickets created by one discover() over a subjects table through its work_query."""

    dsn: str
    events: str = "all"
    name: str = "Turing"
    note: str = ""
    _runs: int = field(default=0, init=False)

    def setup(self) -> None:
        # why: the databases are shared by both Turing variants; upgrade is idempotent.
        harness.upgrade(self.dsn)
        execute(self.dsn, SUBJECTS_DDL)

    def load(self, n: int, batch: int, workers: int) -> dict[str, Any]:
        self._runs += 1
        actor = f"tp_{self.events}_{self._runs}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("update turing.settings set value = %s where key = 'events'",
                         (self.events,))
            conn.execute("truncate public.bench_subjects")
            conn.execute(
                "insert into public.bench_subjects select g from generate_series(1, %s) g", (n,))
            conn.execute(
                "select turing.register_actor(p_name => %s, p_kind => 'script', p_model => %s, "
                "p_script => 'true', p_work_query => "
                "'select id as subject_id from public.bench_subjects', "
                "p_buffer_size => %s, p_batch_size => %s)",
                (actor, actor, max(n, 1000), batch),
            )
            found = conn.execute("select turing.discover(%s)", (actor,)).fetchone()
            _expect("tickets discovered", int(found[0]) if found else 0, n)
            # why: the work_query now finds nothing, so the claims' top-ups cost what an
            # exhausted inbox costs; discover under load is benchmark 3.
            conn.execute("truncate public.bench_subjects")
            conn.execute("select pgmq.purge_queue('turing_events')")
        execute(self.dsn, "vacuum analyze turing.ticket_open", "vacuum analyze turing.runners",
                "vacuum turing.ticket_counts", "checkpoint")
        return {"dsn": self.dsn, "model": actor, "worker": actor, "batch": batch}

    def check(self, n: int, params: dict[str, Any]) -> None:
        model = params["model"]
        done = scalar(self.dsn, "select count(*) from turing.ticket_history h join turing.actors a "
                      "using (actor_id) where a.name = %s and h.status = 'completed'", (model,))
        _expect(f"{self.name}: completed tickets", int(done), n)
        left = scalar(self.dsn, "select count(*) from turing.ticket_open where model = %s",
                      (model,))
        _expect(f"{self.name}: open tickets left", int(left), 0)
        if self.events == "all":
            sent = scalar(self.dsn, "select count(*) from pgmq.q_turing_events "
                          "where message ->> 'event' = 'ticket.completed'")
            _expect(f"{self.name}: ticket.completed events", int(sent), n)

    def drain_fn(self) -> Any:
        return turing_worker


# -- the raw loop ----------------------------------------------------------------------------
RAW_DDL = (
    "create table if not exists public.bench_raw_jobs ("
    " id bigint generated always as identity primary key,"
    " status text not null default 'pending',"
    " payload jsonb not null default '{}')",
    # why: the best index such a loop can have: only pending rows, in claim order.
    "create index if not exists bench_raw_jobs_pending on public.bench_raw_jobs (id) "
    "where status = 'pending'",
)
RAW_CLAIM = (
    "update public.bench_raw_jobs set status = 'running' where id in ("
    " select id from public.bench_raw_jobs where status = 'pending' order by id limit %s"
    " for update skip locked) returning id"
)
RAW_DONE = "update public.bench_raw_jobs set status = 'done' where id = any(%s)"


def raw_worker(index: int, barrier: Barrier, *, dsn: str, batch: int) -> WorkerReport:
    done = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        barrier.wait()
        started = time.perf_counter()
        while True:
            ids = [r[0] for r in conn.execute(RAW_CLAIM, (batch,)).fetchall()]
            if not ids:
                break
            done += conn.execute(RAW_DONE, (ids,)).rowcount
        ended = time.perf_counter()
    return WorkerReport(done, started, ended)


@dataclass
class RawQueue:
    """The physical limit: a plain table, a partial index, two UPDATEs per batch."""

    dsn: str
    name: str = "raw SKIP LOCKED loop"
    note: str = "plain table, partial index on pending ids, no history, no fencing token"

    def setup(self) -> None:
        execute(self.dsn, *RAW_DDL)

    def load(self, n: int, batch: int, workers: int) -> dict[str, Any]:
        execute(
            self.dsn,
            "truncate public.bench_raw_jobs",
            f"insert into public.bench_raw_jobs (status) "
            f"select 'pending' from generate_series(1, {int(n)})",
            "vacuum analyze public.bench_raw_jobs",
            "checkpoint",
        )
        return {"dsn": self.dsn, "batch": batch}

    def check(self, n: int, params: dict[str, Any]) -> None:
        done = scalar(self.dsn, "select count(*) from public.bench_raw_jobs where status = 'done'")
        _expect("raw loop: done jobs", int(done), n)

    def drain_fn(self) -> Any:
        return raw_worker


# -- pgmq ------------------------------------------------------------------------------------
PGMQ_QUEUE = "bench_q"


def pgmq_worker(index: int, barrier: Barrier, *, dsn: str, batch: int, finish: str
                ) -> WorkerReport:
    done = 0
    # why: pgmq.delete/archive are overloaded; the bigint[] cast picks the batch form.
    finish_sql = f"select count(*) from pgmq.{finish}(%s, %s::bigint[])"
    with psycopg.connect(dsn, autocommit=True) as conn:
        barrier.wait()
        started = time.perf_counter()
        while True:
            ids = [r[0] for r in conn.execute(
                "select msg_id from pgmq.read(%s, 30, %s)", (PGMQ_QUEUE, batch)).fetchall()]
            if not ids:
                break
            row = conn.execute(finish_sql, (PGMQ_QUEUE, ids)).fetchone()
            done += int(row[0]) if row else 0
        ended = time.perf_counter()
    return WorkerReport(done, started, ended)


@dataclass
class PgmqQueue:
    """pgmq's SQL API (installed by turing's schema.upgrade): read with a visibility timeout,
    then delete (or archive) the batch."""

    dsn: str
    finish: str = "delete"
    name: str = "pgmq"
    note: str = ""

    def setup(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            exists = conn.execute("select from pgmq.list_queues() where queue_name = %s",
                                  (PGMQ_QUEUE,)).fetchone()
            if not exists:
                conn.execute("select pgmq.create(%s)", (PGMQ_QUEUE,))

    def load(self, n: int, batch: int, workers: int) -> dict[str, Any]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("select pgmq.purge_queue(%s)", (PGMQ_QUEUE,))
            conn.execute(f"truncate pgmq.a_{PGMQ_QUEUE}")
            conn.execute(
                "select count(*) from pgmq.send_batch(%s, "
                "array(select '{}'::jsonb from generate_series(1, %s)))", (PGMQ_QUEUE, n))
        execute(self.dsn, f"vacuum analyze pgmq.q_{PGMQ_QUEUE}", "checkpoint")
        return {"dsn": self.dsn, "batch": batch, "finish": self.finish}

    def check(self, n: int, params: dict[str, Any]) -> None:
        left = scalar(self.dsn, f"select count(*) from pgmq.q_{PGMQ_QUEUE}")
        _expect("pgmq: messages left", int(left), 0)
        if self.finish == "archive":
            kept = scalar(self.dsn, f"select count(*) from pgmq.a_{PGMQ_QUEUE}")
            _expect("pgmq: archived messages", int(kept), n)

    def drain_fn(self) -> Any:
        return pgmq_worker
