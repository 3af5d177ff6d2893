"""Wake-up: LISTEN turing_work on a dedicated connection, so an idle runner claims new work
within milliseconds. A hint only: the runner also polls, and a broken listener is noticed (an
error, or a failed liveness check) and reconnected with backoff, to the DSN of the moment (the
embedded server's is looked up again, so the listener follows it to another port)."""

from __future__ import annotations

import threading
import time

import psycopg

from turing_pg import logs
from turing_pg.db import DsnSource, connect_kwargs

LIVENESS_S = 15.0


class Listener(threading.Thread):
    def __init__(self, dsn: DsnSource, models: list[str], wake: threading.Event,
                 stopping: threading.Event) -> None:
        super().__init__(name="listener", daemon=True)
        self.dsn = dsn
        self.models = set(models)
        self.wake = wake
        self.stopping = stopping
        self.connected = threading.Event()
        self.reconnects = 0

    def run(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                dsn = self.dsn() if callable(self.dsn) else self.dsn
                with psycopg.connect(dsn, connect_timeout=5, **connect_kwargs()) as conn:
                    conn.execute("listen turing_work")
                    self.connected.set()
                    backoff = 0.5
                    # why: anything announced while we were not listening is found by a claim.
                    self.wake.set()
                    self._serve(conn)
            except psycopg.Error as exc:
                if self.stopping.is_set():
                    return
                self.connected.clear()
                self.reconnects += 1
                logs.event("listener_lost", error=str(exc).strip().splitlines()[0][:200],
                           retry_in_s=backoff, level=logs.WARNING)
                self.stopping.wait(backoff)
                # why: a hint only (the loop polls meanwhile), but a short cap so wake-ups
                # work again soon after the database is back.
                backoff = min(backoff * 2, 2.0)

    def _serve(self, conn: psycopg.Connection) -> None:
        checked = time.monotonic()
        while not self.stopping.is_set():
            for note in conn.notifies(timeout=1.0):
                if note.payload in self.models or not note.payload:
                    self.wake.set()
            if time.monotonic() - checked > LIVENESS_S:
                # why: a silently dropped connection raises nothing while we only wait for
                # notifications; a round trip proves the listener is still attached.
                conn.execute("select 1")
                checked = time.monotonic()
