"""Wake-up: LISTEN turing_work on a dedicated connection, so an idle runner claims new work
within milliseconds. A hint only: the runner also polls, and a broken listener is noticed (an
error, or a failed liveness check) and reconnected with backoff, to the DSN of the moment (the
embedded server's is looked up again, so the listener follows it to another port).

LISTEN needs a session of its own on the server. Through a pooler in transaction mode
(PgBouncer, a managed database's pooler) it is accepted and then nothing ever arrives: the
server connection that listens goes back to the pool. So on its first connection the listener
checks that a notification sent through the runner's own pool reaches it; when none does, it
says so once (`wakeup_polling`) and the runner polls. `--listen-dsn` gives it a direct
connection instead; `--listen-dsn poll` skips LISTEN altogether."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import psycopg

from turing_pg import logs
from turing_pg.config import mask_dsn
from turing_pg.db import DsnSource, TuringError, connect_kwargs

LIVENESS_S = 15.0
# why: a notification crosses the server within milliseconds; a few seconds allow for a busy
# one without holding up anything (the runner polls meanwhile).
CHECK_S = 3.0
CHECK_PREFIX = "turing-listen-check:"
# the value of --listen-dsn that means: no LISTEN, poll only
POLL = "poll"


class Listener(threading.Thread):
    def __init__(self, dsn: DsnSource, models: list[str], wake: threading.Event,
                 stopping: threading.Event, *, announce: Callable[[str], None],
                 poll_interval: float, on_work: Callable[[], None] | None = None) -> None:
        super().__init__(name="listener", daemon=True)
        self.dsn = dsn
        self.models = set(models)
        self.wake = wake
        self.stopping = stopping
        # why: sends NOTIFY turing_work through the runner's pool, the way work is announced
        self.announce = announce
        self.poll_interval = poll_interval
        # why: a notification may announce domain rows no ticket holds yet (announce_work):
        # the discovery thread looks at once, beside the claim the wake-up makes, instead of
        # after that claim came back empty.
        self.on_work = on_work
        self.connected = threading.Event()
        self.checked = False
        self.reconnects = 0

    def run(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            dsn = ""
            try:
                dsn = self.dsn() if callable(self.dsn) else self.dsn
                with psycopg.connect(dsn, connect_timeout=5, **connect_kwargs()) as conn:
                    conn.execute("listen turing_work")
                    if not self.checked:
                        if not self._notifications_arrive(conn):
                            conn.execute("unlisten *")
                            polling(f"no notification reached LISTEN through {mask_dsn(dsn)} "
                                    f"within {CHECK_S:g} s (a pooler in transaction mode, such "
                                    "as PgBouncer, does not pass them on)",
                                    self.poll_interval, hint="give --listen-dsn a direct "
                                    "connection to PostgreSQL for wake-ups within milliseconds")
                            return
                        self.checked = True
                        logs.event("listening", dsn=mask_dsn(dsn), channel="turing_work")
                    self.connected.set()
                    backoff = 0.5
                    # why: anything announced while we were not listening is found by a claim.
                    self.wake.set()
                    self._serve(conn)
            except (psycopg.Error, TuringError) as exc:
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

    def _notifications_arrive(self, conn: psycopg.Connection) -> bool:
        """Send a notification through the runner's pool and wait for it here."""
        payload = f"{CHECK_PREFIX}{uuid.uuid4().hex}"
        self.announce(payload)
        deadline = time.monotonic() + CHECK_S
        while (left := deadline - time.monotonic()) > 0 and not self.stopping.is_set():
            for note in conn.notifies(timeout=min(left, 0.5)):
                if note.payload == payload:
                    return True
                self._note(note.payload)
        return False

    def _note(self, payload: str) -> None:
        if payload in self.models or not payload:
            self.wake.set()
            if self.on_work is not None:
                self.on_work()

    def _serve(self, conn: psycopg.Connection) -> None:
        checked = time.monotonic()
        while not self.stopping.is_set():
            for note in conn.notifies(timeout=1.0):
                self._note(note.payload)
            if time.monotonic() - checked > LIVENESS_S:
                # why: a silently dropped connection raises nothing while we only wait for
                # notifications; a round trip proves the listener is still attached.
                conn.execute("select 1")
                checked = time.monotonic()


def polling(reason: str, poll_interval: float, hint: str | None = None) -> None:
    """The one log line that says this runner finds work by polling only, and why."""
    extra = {"hint": hint} if hint else {}
    logs.event("wakeup_polling", reason=reason, poll_interval_s=poll_interval, **extra,
               level=logs.WARNING if hint else logs.INFO)
