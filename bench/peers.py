"""Benchmark 1, the Python job-queue libraries: Procrastinate and PgQueuer, each in its own
database on the benchmark server, draining pre-enqueued no-op jobs with their own workers.

A worker process connects, builds the library's app, waits on the start barrier, runs the
library's own worker in its "stop when the queue is empty" mode, and reports the jobs its task
function ran between the barrier and the worker's return (so the library's final flushes and
worker de-registration are inside the measured time)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.synchronize import Barrier
from typing import Any

from harness import WorkerReport, execute, scalar
from psycopg.conninfo import conninfo_to_dict

# -- Procrastinate ---------------------------------------------------------------------------
PROCRASTINATE_QUEUE = "bench"


def _procrastinate_app(dsn: str, pool_size: int) -> Any:
    import procrastinate

    connector = procrastinate.PsycopgConnector(conninfo=dsn, min_size=1, max_size=pool_size)
    return procrastinate.App(connector=connector)


def procrastinate_worker(index: int, barrier: Barrier, *, dsn: str, concurrency: int,
                         delete_jobs: str) -> WorkerReport:
    ran = 0

    async def noop() -> None:
        nonlocal ran
        ran += 1

    async def main() -> WorkerReport:
        app = _procrastinate_app(dsn, concurrency + 2)
        app.task(name="noop", queue=PROCRASTINATE_QUEUE, pass_context=False)(noop)
        async with app.open_async():
            barrier.wait()
            started = time.perf_counter()
            await app.run_worker_async(
                queues=[PROCRASTINATE_QUEUE], concurrency=concurrency, wait=False,
                install_signal_handlers=False, listen_notify=False, delete_jobs=delete_jobs,
                name=f"bench-{index}",
            )
            return WorkerReport(ran, started, time.perf_counter())

    return asyncio.run(main())


async def _procrastinate_defer(dsn: str, n: int) -> None:
    app = _procrastinate_app(dsn, 2)

    async def noop() -> None:
        return None

    task = app.task(name="noop", queue=PROCRASTINATE_QUEUE, pass_context=False)(noop)
    async with app.open_async():
        for start in range(0, n, 5000):
            await task.batch_defer_async(*({} for _ in range(min(5000, n - start))))


async def _procrastinate_install(dsn: str) -> None:
    app = _procrastinate_app(dsn, 2)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


@dataclass
class ProcrastinateQueue:
    """Procrastinate fetches one job per query (procrastinate_fetch_job_v2), so it has no batch
    size; `concurrency` async jobs run per worker process."""

    dsn: str
    concurrency: int = 1
    delete_jobs: str = "successful"
    name: str = "Procrastinate"
    note: str = ""

    def setup(self) -> None:
        asyncio.run(_procrastinate_install(self.dsn))

    def load(self, n: int, batch: int, workers: int) -> dict[str, Any]:
        execute(self.dsn, "truncate procrastinate_jobs cascade")
        asyncio.run(_procrastinate_defer(self.dsn, n))
        execute(self.dsn, "vacuum analyze procrastinate_jobs", "checkpoint")
        return {"dsn": self.dsn, "concurrency": self.concurrency, "delete_jobs": self.delete_jobs}

    def check(self, n: int, params: dict[str, Any]) -> None:
        left = scalar(self.dsn, "select count(*) from procrastinate_jobs where status <> "
                      "'succeeded'")
        if int(left) != 0:
            raise AssertionError(f"procrastinate: {left} jobs not succeeded")

    def drain_fn(self) -> Any:
        return procrastinate_worker


# -- PgQueuer --------------------------------------------------------------------------------
# why: PgQueuer runs on asyncpg (its first choice) or on psycopg's async driver; both are
# measured, since a drain through one can behave differently from the other (with psycopg the
# drain mode waited ~5 s before it noticed the queue was empty, which inflated Turing's lead).
PGQUEUER_DRIVERS = ("asyncpg", "psycopg")


async def _pgqueuer_driver(dsn: str, driver: str) -> Any:
    if driver == "asyncpg":
        import asyncpg
        from pgqueuer import AsyncpgDriver

        # why: asyncpg takes URLs only, not libpq key=value strings.
        params = conninfo_to_dict(dsn)
        url = (f"postgresql://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
               f"{params.get('port', 5432)}/{params['dbname']}")
        return AsyncpgDriver(await asyncpg.connect(url))
    import psycopg
    from pgqueuer import PsycopgDriver

    return PsycopgDriver(await psycopg.AsyncConnection.connect(dsn, autocommit=True))


def pgqueuer_worker(index: int, barrier: Barrier, *, dsn: str, batch: int, driver: str
                    ) -> WorkerReport:
    from pgqueuer import Queries, QueueManager
    from pgqueuer.types import QueueExecutionMode

    ran = 0

    async def main() -> WorkerReport:
        qm = QueueManager(Queries(await _pgqueuer_driver(dsn, driver)))

        @qm.entrypoint("noop")
        async def noop(job: Any) -> None:
            nonlocal ran
            ran += 1

        barrier.wait()
        started = time.perf_counter()
        await qm.run(batch_size=batch, mode=QueueExecutionMode.drain,
                     log_aggregation_interval=timedelta(0))
        return WorkerReport(ran, started, time.perf_counter())

    return asyncio.run(main())


async def _pgqueuer_install(dsn: str) -> None:
    from pgqueuer import Queries

    await Queries(await _pgqueuer_driver(dsn, "psycopg")).install()


async def _pgqueuer_enqueue(dsn: str, n: int) -> None:
    from pgqueuer import Queries

    queries = Queries(await _pgqueuer_driver(dsn, "psycopg"))
    for start in range(0, n, 5000):
        k = min(5000, n - start)
        await queries.enqueue(["noop"] * k, [None] * k, [0] * k)


@dataclass
class PgQueuerQueue:
    """PgQueuer's QueueManager in drain mode, `batch` jobs per dequeue, on one driver."""

    dsn: str
    driver: str = "asyncpg"
    name: str = "PgQueuer"
    note: str = ""

    def setup(self) -> None:
        # why: both driver variants share one database; installing twice would fail.
        if scalar(self.dsn, "select to_regclass('pgqueuer') is null"):
            asyncio.run(_pgqueuer_install(self.dsn))

    def load(self, n: int, batch: int, workers: int) -> dict[str, Any]:
        execute(self.dsn, "truncate pgqueuer", "truncate pgqueuer_log")
        asyncio.run(_pgqueuer_enqueue(self.dsn, n))
        execute(self.dsn, "vacuum analyze pgqueuer", "checkpoint")
        return {"dsn": self.dsn, "batch": batch, "driver": self.driver}

    def check(self, n: int, params: dict[str, Any]) -> None:
        left = scalar(self.dsn, "select count(*) from pgqueuer")
        if int(left) != 0:
            raise AssertionError(f"pgqueuer: {left} jobs left in the queue")

    def drain_fn(self) -> Any:
        return pgqueuer_worker
