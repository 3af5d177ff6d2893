"""Counters and event log of the fake server (reference §5.10).

All times are real (measured, monotonic) seconds; divide by ``time_scale`` for simulated
seconds. Fractions such as ``gpu_busy_fraction`` are scale-independent.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .config import UNLOAD_REASONS

CANCEL_STAGES: tuple[str, ...] = ("queued", "loading", "slot_wait", "generating")


class Union:
    """Length of the union of possibly overlapping activity intervals (time with count > 0).

    Survives counter resets: ``reset`` zeroes the total but keeps open intervals open.
    """

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.since: float | None = None

    def inc(self, now: float) -> None:
        if self.count == 0:
            self.since = now
        self.count += 1

    def dec(self, now: float) -> None:
        self.count -= 1
        if self.count == 0 and self.since is not None:
            self.total += now - self.since
            self.since = None

    def value(self, now: float) -> float:
        return self.total + (now - self.since if self.since is not None else 0.0)

    def reset(self, now: float) -> None:
        self.total = 0.0
        self.since = now if self.count else None


@dataclass
class ModelCounters:
    loads: int = 0
    load_seconds: float = 0.0
    load_aborts: int = 0
    load_failures: int = 0
    unloads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(UNLOAD_REASONS, 0))
    slot_seconds: float = 0.0
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    completed: int = 0
    canceled: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CANCEL_STAGES, 0))
    prompt_tokens: int = 0
    output_tokens: int = 0
    max_active_slots: int = 0
    queue_wait_seconds: float = 0.0
    slot_wait_seconds: float = 0.0

    def snapshot(self, busy: Union, now: float) -> dict[str, Any]:
        return {
            "loads": self.loads,
            "load_seconds": self.load_seconds,
            "load_aborts": self.load_aborts,
            "load_failures": self.load_failures,
            "unloads": dict(self.unloads),
            "busy_seconds": busy.value(now),
            "slot_seconds": self.slot_seconds,
            "requests": {ep: dict(codes) for ep, codes in self.requests.items()},
            "completed": self.completed,
            "canceled": dict(self.canceled),
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "max_active_slots": self.max_active_slots,
            "queue_wait_seconds": self.queue_wait_seconds,
            "slot_wait_seconds": self.slot_wait_seconds,
        }


class Stats:
    """Mutated only on the server's event-loop thread."""

    def __init__(self, max_events: int) -> None:
        now = time.monotonic()
        self.t0 = now
        self.t0_wall = time.time()
        self.models: dict[str, ModelCounters] = {}
        # Activity unions persist across resets (a model generating during a reset stays busy).
        self.model_busy: dict[str, Union] = {}
        self.gpu_busy = Union()
        self.gpu_loading = Union()
        self.gpu_unloading = Union()
        self.gpu_any = Union()
        self.model_switches = 0
        self.evictions_for_other_model = 0
        self.rejected_503 = 0
        self.max_pending = 0
        self.faults_fired: dict[str, int] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self._seq = 0

    def model(self, name: str) -> ModelCounters:
        counters = self.models.get(name)
        if counters is None:
            counters = self.models[name] = ModelCounters()
            self.model_busy.setdefault(name, Union())
        return counters

    def count_request(self, model: str, endpoint: str, status: int | str) -> None:
        """requests[endpoint][status]; status "499" = client went away, "dropped" = fault."""
        codes = self.model(model).requests.setdefault(endpoint, {})
        codes[str(status)] = codes.get(str(status), 0) + 1

    def event(
        self, kind: str, model: str | None = None, request_id: int | None = None, **detail: Any
    ) -> None:
        self._seq += 1
        self.events.append(
            {
                "seq": self._seq,
                "t": round(time.monotonic() - self.t0, 6),
                "type": kind,
                "model": model,
                "request_id": request_id,
                "detail": detail,
            }
        )

    # GPU activity: "busy" = some slot prefilling/decoding; "loading"/"unloading" = scheduler work.
    def busy_start(self, model: str, now: float) -> None:
        self.model(model)
        self.model_busy[model].inc(now)
        self.gpu_busy.inc(now)
        self.gpu_any.inc(now)

    def busy_end(self, model: str, now: float) -> None:
        self.model_busy[model].dec(now)
        self.gpu_busy.dec(now)
        self.gpu_any.dec(now)

    def activity(self, union: Union, start: bool, now: float) -> None:
        if start:
            union.inc(now)
            self.gpu_any.inc(now)
        else:
            union.dec(now)
            self.gpu_any.dec(now)

    def reset(self) -> None:
        now = time.monotonic()
        self.t0 = now
        self.t0_wall = time.time()
        self.models = {}
        for union in (self.gpu_busy, self.gpu_loading, self.gpu_unloading, self.gpu_any):
            union.reset(now)
        for union in self.model_busy.values():
            union.reset(now)
        self.model_switches = 0
        self.evictions_for_other_model = 0
        self.rejected_503 = 0
        self.max_pending = 0
        self.faults_fired = {}
        self.events.clear()

    def snapshot(self, *, resident: list[str], pending: int, time_scale: float) -> dict[str, Any]:
        now = time.monotonic()
        wall = now - self.t0
        busy = self.gpu_busy.value(now)
        loading = self.gpu_loading.value(now)
        unloading = self.gpu_unloading.value(now)
        models = {
            name: c.snapshot(self.model_busy[name], now) for name, c in sorted(self.models.items())
        }
        return {
            "t0": self.t0_wall,
            "wall_seconds": wall,
            "time_scale": time_scale,
            "loads": sum(m["loads"] for m in models.values()),
            "completed": sum(m["completed"] for m in models.values()),
            "gpu_busy_seconds": busy,
            "gpu_loading_seconds": loading,
            "gpu_unloading_seconds": unloading,
            # Idle = wall minus the union of all GPU activity, so overlaps never make it negative.
            "gpu_idle_seconds": max(0.0, wall - self.gpu_any.value(now)),
            "gpu_busy_fraction": busy / wall if wall > 0 else 0.0,
            "load_overhead_fraction": loading / wall if wall > 0 else 0.0,
            "model_switches": self.model_switches,
            "evictions_for_other_model": self.evictions_for_other_model,
            "rejected_503": self.rejected_503,
            "max_pending": self.max_pending,
            "pending_now": pending,
            "resident_now": resident,
            "faults_fired": dict(self.faults_fired),
            "models": models,
        }
