"""The circuit breaker of one model backend: after a few consecutive infrastructure faults the
runner stops claiming that model, probes the backend with backoff, and resumes by itself.

closed (claims as usual) → open (no claims; tickets it held went back without an attempt
charged; a probe runs at `next_probe`) → half-open (the probe answered: one ticket is claimed as
a trial) → closed on a good result, open again (longer backoff) on a fault. A fault that names a
runner setting (every call refused the same way) is not cured by a probe that answers: the
trial comes every SETTING_RETRY_S instead, and the alert names the setting meanwhile.
All clocks here are time.monotonic()."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

THRESHOLD = 3
# why: a probe is one GET /api/ps (it loads nothing), so probing every 2 s costs nothing, and
# it bounds the time from the server coming back to claims resuming by ~2 s however long the
# outage lasted (the target is the first completion within 5 s).
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 2.0
SETTING_RETRY_S = 60.0


@dataclass
class Breaker:
    model: str
    kind: str = ""  # the actor kind whose executor probes this backend
    backend: str = ""
    state: str = "closed"  # closed | open | half_open
    consecutive: int = 0
    last_error: str = ""
    setting: str | None = None
    backoff_s: float = FIRST_BACKOFF_S
    next_probe_monotonic: float = 0.0
    trial_in_flight: bool = False
    _probing: threading.Thread | None = field(default=None, repr=False)

    def fault(self, backend: str, error: str, setting: str | None) -> bool:
        """Count one infrastructure fault; True when this one opens the breaker."""
        self.backend, self.last_error, self.setting = backend, error, setting
        self.consecutive += 1
        self.trial_in_flight = False
        if self.state == "half_open" or (self.state == "closed"
                                         and self.consecutive >= THRESHOLD):
            was_closed = self.state == "closed"
            self.state = "open"
            if not was_closed:
                self.backoff_s = min(self.backoff_s * 2, MAX_BACKOFF_S)
            delay = SETTING_RETRY_S if setting else self.backoff_s
            self.next_probe_monotonic = time.monotonic() + delay
            return was_closed
        return False

    def success(self) -> bool:
        """A result that was not a fault; True when this one closes the breaker."""
        self.consecutive = 0
        self.trial_in_flight = False
        if self.state == "closed":
            return False
        self.state, self.backoff_s, self.setting = "closed", FIRST_BACKOFF_S, None
        return True

    def may_claim(self) -> int | None:
        """How many tickets may be claimed now: None = no limit, 0 = none."""
        if self.state == "closed":
            return None
        if self.state == "half_open" and not self.trial_in_flight:
            return 1
        return 0

    def claimed_trial(self) -> None:
        if self.state == "half_open":
            self.trial_in_flight = True

    def maybe_probe(self, probe: Callable[[], str | None], wake: threading.Event) -> None:
        """While open and due, probe the backend on a thread of its own (a probe may take
        seconds; the runner's loop must keep heartbeating). An answer makes it half-open."""
        now = time.monotonic()
        if self.state != "open" or now < self.next_probe_monotonic:
            return
        if self._probing is not None and self._probing.is_alive():
            return
        if self.setting:
            # why: the server answers; what fails is what this runner sends. Try one call.
            self.state = "half_open"
            return

        def run() -> None:
            error = probe()
            if error is None:
                self.state = "half_open"
            else:
                self.last_error = f"probe: {error}"
                self.backoff_s = min(self.backoff_s * 2, MAX_BACKOFF_S)
                self.next_probe_monotonic = time.monotonic() + self.backoff_s
            wake.set()

        self._probing = threading.Thread(target=run, name=f"probe-{self.model}", daemon=True)
        self._probing.start()
