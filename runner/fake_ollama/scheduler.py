"""Scheduler emulation: residency, loads, evictions, keep_alive timers, slots (reference §5.6).

Mirrors ollama/server/sched.go closely enough that a client-side scheduler tested against it
sees the same pathologies as in production: FIFO head-of-line blocking, one load at a time,
victim choice by session duration (not LRU), reload on runner-option change, an unbounded slot
queue behind a bounded pending queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .config import (
    DEFAULT_LOAD_FAIL_MESSAGE,
    LOAD_TIMEOUT_MESSAGE,
    FakeConfig,
    FaultRule,
    ModelSpec,
)
from .state import Stats

log = logging.getLogger("turing_pg.fake_ollama")


class QueueFull(Exception):
    """Pending queue at max_queue: real Ollama answers 503."""


class LoadFailed(Exception):
    """The load failed (fault or timeout): 500 with this message."""


class LoadAborted(Exception):
    """The request that triggered the load went away; the load was aborted, try again."""


@dataclass(eq=False)
class GenRequest:
    """One /api/chat or /api/generate request as the scheduler sees it."""

    id: int
    endpoint: str
    model: str
    spec: ModelSpec
    keep_alive: float | None  # simulated seconds; inf = forever; None = keep runner's setting
    runner_key: tuple[Any, ...]
    num_ctx: int
    t_arrival: float
    future: asyncio.Future[Runner] | None = None
    runner: Runner | None = None
    stage: str = "queued"


@dataclass(eq=False)
class Runner:
    """A (simulated) llama.cpp process holding one model in VRAM."""

    model: str
    spec: ModelSpec
    key: tuple[Any, ...]
    num_ctx: int
    num_parallel: int
    vram: int
    session_duration: float
    state: str = "loading"  # loading -> ready -> unloading -> gone
    refcount: int = 0
    active: int = 0  # slots in use
    slot_waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    drain_reason: str | None = None  # why session_duration was forced to 0
    timer: asyncio.TimerHandle | None = None
    expires_at: float | None = None  # monotonic deadline while idle; None = not yet / forever
    loaded: asyncio.Future[None] | None = None
    unloaded: asyncio.Event = field(default_factory=asyncio.Event)
    load_task: asyncio.Task[None] | None = None
    trigger: GenRequest | None = None
    fresh: bool = True  # next request pays first_token_penalty_s
    crashed: bool = False
    loaded_at: float = 0.0


def _retrieve(fut: asyncio.Future[Any]) -> None:
    # Nobody may be awaiting a failed load; fetching the exception silences asyncio's warning.
    if not fut.cancelled():
        fut.exception()


class Scheduler:
    def __init__(self, cfg: FakeConfig, stats: Stats) -> None:
        self.cfg = cfg
        self.stats = stats
        self.runners: dict[str, Runner] = {}
        self.pending: deque[GenRequest] = deque()
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.armed_load_faults: dict[str, dict[str, FaultRule]] = {}
        self.warm: set[str] = set()  # models loaded at least once since start (page cache)
        self.last_loaded: str | None = None
        self._loop_task: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def shutdown(self) -> None:
        tasks = [t for t in [self._loop_task, *self._tasks] if t is not None]
        for r in list(self.runners.values()):
            if r.timer:
                r.timer.cancel()
            if r.load_task:
                tasks.append(r.load_task)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def scaled(self, seconds: float) -> float:
        return seconds * self.cfg.time_scale

    # --- request path --------------------------------------------------------------------------

    def needs_reload(self, r: Runner, req: GenRequest) -> bool:
        return self.cfg.reload_on_runner_option_change and r.key != req.runner_key

    async def acquire(self, req: GenRequest) -> Runner:
        """Get a ready runner for req (attached, refcount held) or raise QueueFull / LoadFailed."""
        while True:
            r = self.runners.get(req.model)
            if (
                self.cfg.fast_path_for_loaded
                and r is not None
                and r.state in ("loading", "ready")
                and not self.needs_reload(r, req)
            ):
                # v0.11.5+ fast path: resident (or loading) model, no trip through the queue;
                # this also admits work to a runner that is being drained for eviction.
                self.attach(req, r)
            else:
                if len(self.pending) >= self.cfg.max_queue:
                    raise QueueFull
                req.future = asyncio.get_running_loop().create_future()
                self.pending.append(req)
                self.stats.max_pending = max(self.stats.max_pending, len(self.pending))
                self.stats.event("queued", req.model, req.id, pending=len(self.pending))
                self._wakeup.set()
                try:
                    r = await req.future
                except asyncio.CancelledError:
                    fut = req.future
                    if fut.done() and not fut.cancelled() and fut.exception() is None:
                        # Assigned (and maybe a load started) just as the client went away.
                        req.runner = fut.result()
                        self._cancel_attached(req)
                    raise
            req.runner = r
            req.stage = "loading"
            assert r.loaded is not None
            try:
                await asyncio.shield(r.loaded)
            except asyncio.CancelledError:
                self._cancel_attached(req)
                raise
            except LoadAborted:
                self.release(req, r)
                req.runner = None
                req.stage = "queued"
                continue  # like a client retry: go through the scheduler again
            except LoadFailed:
                self.release(req, r)
                req.runner = None
                raise
            return r

    def _cancel_attached(self, req: GenRequest) -> None:
        """The client went away while waiting for its runner: drop the reference, and abort the
        load if this request triggered it (real Ollama ties the load to that request's context,
        so a client timeout shorter than the load time makes every retry restart the load)."""
        r = req.runner
        if r is None:
            return
        if r.state == "loading" and r.trigger is req and r.load_task is not None:
            r.load_task.cancel()
        self.release(req, r)
        req.runner = None

    def attach(self, req: GenRequest, r: Runner) -> None:
        r.refcount += 1
        if r.timer is not None:  # a model cannot expire while it has work
            r.timer.cancel()
            r.timer = None
        if req.keep_alive is not None:
            # Last request wins (useLoadedRunner overwrites sessionDuration), even on a victim
            # being drained: that is the real "eviction never happens under load" quirk.
            r.session_duration = req.keep_alive
            if req.keep_alive > 0:
                r.drain_reason = None
            elif r.drain_reason is None:
                r.drain_reason = "explicit"

    def release(self, req: GenRequest, r: Runner) -> None:
        r.refcount -= 1
        if r.refcount <= 0 and r.state == "ready":
            self._idle(r)

    def _idle(self, r: Runner) -> None:
        loop = asyncio.get_running_loop()
        d = r.session_duration
        if d <= 0:
            self.unload(r, r.drain_reason or "expired")
        elif math.isinf(d):
            r.expires_at = None
        else:
            r.expires_at = time.monotonic() + self.scaled(d)
            r.timer = loop.call_later(self.scaled(d), self._on_timer, r)

    def _on_timer(self, r: Runner) -> None:
        r.timer = None
        if r.refcount <= 0 and r.state == "ready":
            self.unload(r, "expired")

    def request_unload(self, model: str) -> None:
        """keep_alive 0 on an empty request (``ollama stop``): unload once drained."""
        r = self.runners.get(model)
        if r is None or r.state not in ("loading", "ready"):
            return
        r.session_duration = 0
        r.drain_reason = "explicit"
        r.expires_at = time.monotonic()
        if r.timer is not None:
            r.timer.cancel()
            r.timer = None
        # A loading runner is unloaded by _load()/release() once it is ready and idle.
        if r.refcount <= 0 and r.state == "ready":
            self.unload(r, "explicit")

    # --- slots ---------------------------------------------------------------------------------

    async def acquire_slot(self, r: Runner) -> None:
        if r.active < r.num_parallel and not r.slot_waiters:
            r.active += 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            r.slot_waiters.append(fut)
            try:
                await fut  # the releaser hands its slot over (active unchanged)
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self.release_slot(r)  # slot was handed to us just as we were cancelled
                else:
                    with contextlib.suppress(ValueError):
                        r.slot_waiters.remove(fut)
                raise
        counters = self.stats.model(r.model)
        counters.max_active_slots = max(counters.max_active_slots, r.active)

    def release_slot(self, r: Runner) -> None:
        while r.slot_waiters:
            fut = r.slot_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        r.active -= 1

    # --- unload --------------------------------------------------------------------------------

    def unload(self, r: Runner, reason: str) -> None:
        if r.state in ("unloading", "gone"):
            return
        r.state = "unloading"
        if self.runners.get(r.model) is r:
            del self.runners[r.model]
        if r.timer is not None:
            r.timer.cancel()
            r.timer = None
        self.stats.model(r.model).unloads[reason] += 1
        self.stats.event("unload", r.model, None, reason=reason)
        self._spawn(self._finish_unload(r))

    async def _finish_unload(self, r: Runner) -> None:
        # VRAM recovery wait (waitForVRAMRecovery); the scheduler blocks on it when evicting.
        self.stats.activity(self.stats.gpu_unloading, True, time.monotonic())
        try:
            await asyncio.sleep(self.scaled(self.cfg.unload_s))
        finally:
            self.stats.activity(self.stats.gpu_unloading, False, time.monotonic())
            r.state = "gone"
            r.unloaded.set()
            self.stats.event("unload_end", r.model, None)

    def crash(self, r: Runner) -> None:
        r.crashed = True
        self.unload(r, "crash")

    def drop_all(self) -> None:
        """Forget every runner at once (reset with unload=True); nothing is counted."""
        for r in list(self.runners.values()):
            if r.load_task and r.state == "loading":
                r.load_task.cancel()
            if r.timer:
                r.timer.cancel()
            r.state = "gone"
            r.unloaded.set()
        self.runners.clear()
        self.last_loaded = None

    # --- the scheduler loop (processPending) ---------------------------------------------------

    async def _run(self) -> None:
        while True:
            while not self.pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            req = self.pending.popleft()
            assert req.future is not None
            if req.future.done():  # client went away while queued
                continue
            try:
                await self._schedule(req)
            except Exception as exc:  # never let one request kill the scheduler
                log.exception("fake scheduler error")
                if not req.future.done():
                    req.future.set_exception(exc)

    def _pick_victim(self) -> Runner | None:
        # findRunnerToUnload: shortest session first (forever last), then name; prefer idle.
        candidates = sorted(self.runners.values(), key=lambda r: (r.session_duration, r.model))
        for r in candidates:
            if r.refcount <= 0:
                return r
        return candidates[0] if candidates else None

    def _fits(self, req: GenRequest) -> bool:
        need = self._vram_need(req.spec, req.num_ctx)
        used = sum(r.vram for r in self.runners.values())
        free = self.cfg.vram_bytes - used
        if not self.runners:
            return True  # alone on the GPU: loads anyway (real Ollama would offload to CPU)
        return need <= free * self.cfg.fit_fraction

    def _vram_need(self, spec: ModelSpec, num_ctx: int) -> int:
        return spec.weights_vram + spec.kv_bytes_per_token * num_ctx * self.cfg.num_parallel

    async def _schedule(self, req: GenRequest) -> None:
        assert req.future is not None
        while not req.future.done():
            r = self.runners.get(req.model)
            if r is not None and r.state in ("loading", "ready"):
                if not self.needs_reload(r, req):
                    self.attach(req, r)
                    req.future.set_result(r)
                    return
                victim, reason = r, "reload"
            elif len(self.runners) >= self.cfg.effective_max_loaded or not self._fits(req):
                victim, reason = self._pick_victim(), "evicted"
            else:
                victim, reason = None, ""
            if victim is None:
                r = self._start_load(req)
                self.attach(req, r)
                req.future.set_result(r)
                assert r.loaded is not None
                # One load at a time and strict FIFO: everything behind waits for this load.
                await asyncio.wait([r.loaded])
                return
            self.expire(victim, reason)
            await victim.unloaded.wait()

    def expire(self, victim: Runner, reason: str) -> None:
        if reason == "evicted":
            self.stats.evictions_for_other_model += 1
        victim.session_duration = 0
        victim.drain_reason = reason
        if victim.timer is not None:
            victim.timer.cancel()
            victim.timer = None
        if victim.refcount <= 0:
            self.unload(victim, reason)

    # --- loading -------------------------------------------------------------------------------

    def _start_load(self, req: GenRequest) -> Runner:
        loop = asyncio.get_running_loop()
        r = Runner(
            model=req.model,
            spec=req.spec,
            key=req.runner_key,
            num_ctx=req.num_ctx,
            num_parallel=self.cfg.num_parallel,
            vram=self._vram_need(req.spec, req.num_ctx),
            session_duration=(
                req.keep_alive if req.keep_alive is not None else self.cfg.default_keep_alive_s
            ),
            trigger=req,
        )
        r.loaded = loop.create_future()
        r.loaded.add_done_callback(_retrieve)
        self.runners[req.model] = r
        r.load_task = loop.create_task(self._load(r))
        return r

    async def _load(self, r: Runner) -> None:
        assert r.loaded is not None
        faults = self.armed_load_faults.pop(r.model, {})
        spec = r.spec
        seconds = spec.load_s
        if r.model not in self.warm and spec.cold_load_s is not None:
            seconds = spec.cold_load_s
        if "slow_load" in faults:
            seconds = faults["slow_load"].seconds
        fail: str | None = None
        if "load_fail" in faults:
            fail = faults["load_fail"].message or DEFAULT_LOAD_FAIL_MESSAGE
        if "load_stall" in faults or seconds > self.cfg.load_timeout_s:
            seconds = self.cfg.load_timeout_s
            fail = LOAD_TIMEOUT_MESSAGE
        started = time.monotonic()
        self.stats.event(
            "load_start", r.model, r.trigger.id if r.trigger else None, seconds=seconds
        )
        self.stats.activity(self.stats.gpu_loading, True, started)
        try:
            await asyncio.sleep(self.scaled(seconds))
        except asyncio.CancelledError:
            self._load_gone(r)
            self.stats.model(r.model).load_aborts += 1
            self.stats.event("load_abort", r.model, None)
            r.loaded.set_exception(LoadAborted())
            return
        finally:
            self.stats.activity(self.stats.gpu_loading, False, time.monotonic())
        counters = self.stats.model(r.model)
        if fail is not None:
            self._load_gone(r)
            counters.load_failures += 1
            self.stats.event("load_fail", r.model, None, message=fail)
            r.loaded.set_exception(LoadFailed(fail))
            return
        r.state = "ready"
        r.loaded_at = time.monotonic()
        r.trigger = None
        counters.loads += 1
        counters.load_seconds += r.loaded_at - started
        if self.last_loaded is not None and self.last_loaded != r.model:
            self.stats.model_switches += 1
        self.last_loaded = r.model
        self.warm.add(r.model)
        self.stats.event("load_end", r.model, None, seconds=r.loaded_at - started)
        r.loaded.set_result(None)
        if r.refcount <= 0:
            self._idle(r)

    def _load_gone(self, r: Runner) -> None:
        r.state = "gone"
        if self.runners.get(r.model) is r:
            del self.runners[r.model]
        r.unloaded.set()
