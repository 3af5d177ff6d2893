"""Discovery and upkeep off the claim path: a thread of the runner that keeps its models'
buffers topped up (each due actor's work_query on a worker of its own, so one slow query
delays neither the claims nor the other actors) and calls turing.maintain about once a second
(the pgmq inbox becomes tickets, leases are reaped, alerts raised and cleared) so nothing waits
for cron."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from turing_pg import logs
from turing_pg.db import DatabaseUnavailable, Turing, TuringError

MAINTAIN_EVERY_S = 1.0
DISCOVERY_WORKERS = 2
# why: no runner serves the people's resource (`turing human` claims one ticket at a time, and
# only while someone sits at it), so every runner discovers its work as well, within the same
# per-actor budget: a person's inbox then shows as waiting in `turing status` instead of the
# pipeline looking drained. One discoverer per actor at a time (top_up's advisory lock).
PEOPLE = "human"


class Discoverer(threading.Thread):
    def __init__(self, turing: Turing, models: list[str], *, worker: str, want: int,
                 interval_s: float, reap_interval_s: float, timeout_s: float,
                 wake_runner: threading.Event, stopping: threading.Event) -> None:
        super().__init__(name="discovery", daemon=True)
        self.turing = turing
        self.models = models
        self.worker = worker
        self.want = want
        self.interval_s = interval_s
        self.reap_interval_s = reap_interval_s
        self.timeout_s = timeout_s
        self.wake_runner = wake_runner
        self.stopping = stopping
        self.poked = threading.Event()
        self.in_flight: dict[str, Future[Any]] = {}
        self.pool = ThreadPoolExecutor(DISCOVERY_WORKERS, thread_name_prefix="discover")
        self.found = 0

    def poke(self) -> None:
        """The runner's claim came back short, or work was announced: look now."""
        self.poked.set()

    def run(self) -> None:
        next_maintain = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() >= next_maintain:
                    self._maintain()
                    next_maintain = time.monotonic() + MAINTAIN_EVERY_S
                self._discover()
            except DatabaseUnavailable:
                pass  # why: the runner's loop notices and logs the outage; try again later
            except (TuringError, Exception) as exc:  # a bad pass must not end discovery
                logs.event("discovery_error", error=f"{type(exc).__name__}: {exc}",
                           level=logs.WARNING)
            self.poked.wait(min(self.interval_s, MAINTAIN_EVERY_S))
            self.poked.clear()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _maintain(self) -> None:
        done = self.turing.maintain(self.worker, self.reap_interval_s)
        if done.get("reaped"):
            logs.event("reap", expired=done["reaped"])
        if done.get("inbox"):
            logs.event("inbox", messages=done["inbox"])

    def _discover(self) -> None:
        for actor, job in list(self.in_flight.items()):
            if job.done():
                del self.in_flight[actor]
        for model in dict.fromkeys([*self.models, PEOPLE]):
            for actor in self.turing.discover_due(model, self.want):
                if actor not in self.in_flight:
                    self.in_flight[actor] = self.pool.submit(self._top_up, actor)

    def _top_up(self, actor: str) -> None:
        try:
            found = self.turing.top_up(actor, timeout_s=self.timeout_s)
        except DatabaseUnavailable:
            return
        if found:
            self.found += found
            self.wake_runner.set()
