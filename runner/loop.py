"""The runner loop: claim, run, heartbeat, report, stop gracefully.

One main thread talks to the database (claims, heartbeats, reports, reaps); actors run on a pool
of `concurrency` threads and hand their results back through a queue, so no database connection
or transaction is held while an actor runs (invariant 8). Every database call borrows a pooled
connection for that call only; when the database is unreachable the loop keeps the running
calls going, holds their results, and reports them once it is back (the fence decides whether
they still count)."""

from __future__ import annotations

import os
import queue
import signal
import socket
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg

from turing_pg import __version__, executors, logs
from turing_pg.breaker import Breaker
from turing_pg.config import RunnerConfig
from turing_pg.credentials import hide, hide_values, mask_dsn, mask_url
from turing_pg.db import DatabaseUnavailable, DsnSource, Outcome, Turing, TuringError, UnknownModel
from turing_pg.discovery import Discoverer
from turing_pg.execution import DATABASE, Attempt, Executor, Result
from turing_pg.metrics import RunnerMetrics
from turing_pg.wakeup import POLL, Listener, polling

IDLE_HEARTBEAT_S = 5.0
# why: a warm call's load_duration is a few milliseconds of bookkeeping; only a real load is
# worth reporting as the model's load time.
LOAD_REPORT_MIN_S = 0.5
# why: a runner idle beside work its --stage excludes looks for it at most this often (one
# query), and logs each actor version once.
HELD_BACK_CHECK_S = 5.0
# why: a retry while the database is away costs one refused connection (nothing at all while
# the embedded server is known to be stopped), and the target is the first completion within
# 5 s of the database coming back: so the retries come often, and never more than 1 s apart.
DB_RETRY_FIRST_S, DB_RETRY_MAX_S = 0.25, 1.0


@dataclass
class Finished:
    attempt: Attempt
    result: Result
    seconds: float


@dataclass
class _Timers:
    """The loop's local clocks (time.monotonic())."""

    next_heartbeat: float
    idle_since: float | None = None


# how each kind of result is reported: one call per group. A fault and a release go back to
# pending without an attempt charged (return_tickets).
_REPORTED_AS = {"completed": "complete", "failed": "fail", "timed_out": "fail",
                "released": "return", "fault": "return"}


def _calls(group: list[Finished]) -> list[dict[str, Any]]:
    """The call records of a group of results (p_calls of complete_batch / fail_batch)."""
    return [f.result.call.as_json(f.attempt.ticket.ticket_id) for f in group
            if f.result.call is not None]


def report_group(turing: Turing, worker: str, group: list[Finished]) -> list[Outcome]:
    """Report results that end the same way (completed, failures, released: _REPORTED_AS) in
    one fenced call: what every runner does with what its executors return, and what
    `turing harness --save` does with its one attempt."""
    how = _REPORTED_AS[group[0].result.kind]
    if how == "complete":
        return turing.complete_batch(
            [(f.attempt.ticket.ticket_id, f.attempt.ticket.lease_token, f.result.output)
             for f in group], _calls(group))
    if how == "fail":
        return turing.fail_batch(
            [(f.attempt.ticket.ticket_id, f.attempt.ticket.lease_token,
              f.result.error or "", f.result.kind, f.result.retryable)
             for f in group], _calls(group))
    outcomes: list[Outcome] = []
    for f in group:
        # why: one call per reason is rare enough (faults come in bursts of one kind). A fault
        # naming a setting is not counted on the ticket: every call fails alike, whatever the
        # input.
        t, r = f.attempt.ticket, f.result
        outcomes += turing.return_tickets(
            worker, [(t.ticket_id, t.lease_token)], r.error or "given back",
            fault=r.kind == "fault" and r.setting is None)
    return outcomes


def _dsn_source(cfg: RunnerConfig) -> DsnSource:
    """The DSN given, or, when it came from the embedded server, a lookup of the server's DSN
    that the pool and the listener make again for every new connection: after `turing db stop`
    and a new start (maybe on another port) the runner finds the server by itself, and never
    starts one an operator stopped."""
    if cfg.dsn_from != "embedded":
        return cfg.dsn
    from turing_pg.pgserver import EmbeddedDsn

    def moved(previous: str, current: str) -> None:
        logs.event("dsn_changed", **{"from": mask_dsn(previous), "to": mask_dsn(current)},
                   reason="the embedded server started on another port", level=logs.WARNING)

    return EmbeddedDsn(initial=cfg.dsn, on_change=moved)


class Runner:
    def __init__(self, cfg: RunnerConfig) -> None:
        self.cfg = cfg
        # why: from here on no log line, error or stored text of this process carries these
        # passwords, whatever path it takes (the masking at each source is the first layer).
        hide(cfg.dsn, cfg.ollama_host, cfg.listen_dsn, cfg.openai_base_url)
        hide_values(cfg.openai_api_key)
        self.turing: Turing | None = None
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.queued: deque[Attempt] = deque()
        self.running: dict[int, Attempt] = {}
        self.finished: queue.SimpleQueue[Finished] = queue.SimpleQueue()
        self.unreported: list[Finished] = []
        self.pool = ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="actor")
        self.executors: dict[str, Executor] = {}
        self.breakers: dict[str, Breaker] = {}
        self.breaker_reports: dict[str, tuple[bool, str | None, str | None]] = {}
        self.discoverer: Discoverer | None = None
        self.current = cfg.models[0]
        # why: which of this runner's models must be loaded by a model server (model_backlog's
        # llm column); only those are switched explicitly, and counted.
        self.loadable_models: set[str] = set()
        self.loaded: str | None = None
        # why: a model is warm (loaded on the model server) after a preload or a call to it,
        # until keep_alive passes without one; an attempt started cold gets the model's load
        # time added to an auto timeout (time.monotonic()).
        self.warm_until: dict[str, float] = {}
        self.load_reports: list[tuple[str, float]] = []
        self.switches = 0
        # the (actor, version) whose pending work this runner's stage keeps it from running,
        # already logged; and when to look again per model (a monotonic deadline)
        self.held_back_said: set[tuple[str, int]] = set()
        self.held_back_due: dict[str, float] = {}
        self.stats: Counter[str] = Counter()
        self.db_down_since: float | None = None
        self.connected = False  # registered once; from then on db_down_since says it is away
        self.db_backoff = DB_RETRY_FIRST_S
        self.next_db_try = 0.0
        self.force_stop = False
        self.claim_broke = False  # a claim failed mid-call: release_unheld before the next
        self.dsn = _dsn_source(cfg)
        self.metrics = RunnerMetrics(worker=cfg.worker, models=cfg.models, version=__version__,
                                     backend=cfg.backend, concurrency=cfg.concurrency)
        self.metrics.watch(
            models=cfg.models,
            breaker_state=lambda m: self.breakers[m].state if m in self.breakers else "closed",
            database_up=lambda: self.connected and self.db_down_since is None,
            queued=lambda: len(self.queued))

    # -- lifecycle -------------------------------------------------------------------------
    def install_signals(self) -> None:
        def on_signal(signum: int, _frame: Any) -> None:
            if self.stopping.is_set():
                self.force_stop = True  # a second signal: skip the grace period
            logs.event("signal", signal=signal.Signals(signum).name,
                       action="stop claiming, release unstarted claims, finish running calls")
            self.stopping.set()
            self.wake.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def run(self) -> int:
        logs.event("config", version=__version__, **self.cfg.masked())
        self._serve_metrics()
        try:
            return self._run()
        finally:
            self.metrics.close()

    def _serve_metrics(self) -> None:
        """/metrics where --metrics-port says, from before the database answers: a runner that
        waits for it is seen waiting (turing_runner_database_up 0)."""
        if self.cfg.metrics_port is None:
            return
        port = self.metrics.serve(self.cfg.metrics_host, self.cfg.metrics_port)
        host = f"[{self.cfg.metrics_host}]" if ":" in self.cfg.metrics_host \
            else self.cfg.metrics_host
        logs.event("metrics", url=f"http://{host}:{port}/metrics", port=port)

    def _run(self) -> int:
        if not self._connect():
            return 0
        assert self.turing is not None
        self.executors = executors.for_runner(executors.Context(self.cfg, self.turing))
        self.discoverer = Discoverer(
            self.turing, self.cfg.models, worker=self.cfg.worker, want=self.cfg.batch,
            interval_s=self.cfg.poll_interval, reap_interval_s=self.cfg.reap_interval,
            timeout_s=self.cfg.discover_timeout, wake_runner=self.wake, stopping=self.stopping)
        self.discoverer.start()
        listener = self._listener()
        self._loop()
        self._shutdown()
        logs.event("stopped", worker=self.cfg.worker, **dict(self.stats),
                   switches=self.switches,
                   listener_reconnects=listener.reconnects if listener else 0)
        assert self.turing is not None
        self.turing.close()
        return 0

    def _listener(self) -> Listener | None:
        """LISTEN where --listen-dsn says (default: the database connection itself), or poll
        only (`--listen-dsn poll`), saying so."""
        if self.cfg.listen_dsn == POLL:
            polling("--listen-dsn poll", self.cfg.poll_interval)
            return None
        assert self.turing is not None
        listener = Listener(self.cfg.listen_dsn or self.dsn, self.cfg.models, self.wake,
                            self.stopping, announce=self.turing.notify_work,
                            poll_interval=self.cfg.poll_interval,
                            on_work=self.discoverer.poke if self.discoverer else None)
        listener.start()
        return listener

    def _connect(self) -> bool:
        """Register, reap, and log the state found; wait for the database if it is down."""
        backoff = DB_RETRY_FIRST_S
        while not self.stopping.is_set():
            try:
                if self.turing is None:
                    # why: the actor slots, the loop, the discovery workers and upkeep
                    self.turing = Turing(self.dsn, min_size=1,
                                         max_size=self.cfg.concurrency + 5, wait_s=5.0)
                self._register()
                reaped = self.turing.reap(self.cfg.worker)
                state = self.turing.startup_state(self.cfg.models)
                self._refuse_unrunnable(state)
                self.metrics.actors((s.model, s.actor) for s in state
                                    if not executors.refusal(s.kind))
                backlog = self.turing.model_backlog(self.cfg.models, self.cfg.worker,
                                                    stage=self.cfg.stage)
                self.loadable_models = {r["model"] for r in backlog if r["llm"]}
                if len(self.cfg.models) > 1 and backlog and backlog[0]["ready"] > 0:
                    self.current = backlog[0]["model"]
                logs.event("startup", worker=self.cfg.worker, reaped=reaped, state=[
                    {"actor": s.actor, "kind": s.kind, "model": s.model, "enabled": s.enabled,
                     "pending": s.pending, "running": s.running, "expired": s.expired,
                     "dead": s.dead} for s in state
                ])
                self.connected = True
                return True
            except DatabaseUnavailable as exc:
                logs.event("db_unavailable", error=str(exc), retry_in_s=backoff,
                           level=logs.WARNING)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, DB_RETRY_MAX_S)
        return False

    def _refuse_unrunnable(self, state: list[Any]) -> None:
        """A model whose every actor is of a kind no runner runs (people answer human tickets)
        is refused at start, with who does answer them."""
        for model in self.cfg.models:
            kinds = {s.kind for s in state if s.model == model}
            reasons = {executors.refusal(k) for k in kinds}
            if kinds and all(reasons):
                raise UnknownModel(f"model {model!r}: " + "; ".join(sorted(reasons)),
                                   "serve the models of llm, script or sql actors")

    def _register(self) -> None:
        assert self.turing is not None
        self.turing.register_runner(
            self.cfg.worker, self.cfg.models, hostname=socket.gethostname(), pid=os.getpid(),
            concurrency=self.cfg.concurrency,
            info={"version": __version__, "batch": self.cfg.batch,
                  "backend": self.cfg.backend,
                  "model_server": mask_url(self.cfg.openai_base_url
                                           if self.cfg.backend == "openai"
                                           else self.cfg.ollama_host)},
        )

    # -- the loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        """Run passes until stopped. An unexpected error in one pass is logged and the loop goes
        on after a pause (the database decides what is still valid), so one bad answer from SQL
        never takes a GPU's runner down."""
        timers = _Timers(next_heartbeat=time.monotonic())
        while not self.stopping.is_set():
            try:
                wait = self._pass(timers)
            except Exception as exc:
                logs.event("loop_error", error=f"{type(exc).__name__}: {exc}", retry_in_s=1.0,
                           level=logs.ERROR)
                wait = 1.0
            if wait > 0:
                self.wake.wait(wait)
                self.wake.clear()

    def _pass(self, timers: _Timers) -> float:
        """One pass: collect, start, report, heartbeat, reap, claim. Returns how long to wait
        for a wake-up before the next pass."""
        self._collect()
        # why: queued tickets are already leased; a freed slot takes one before this pass
        # spends a round trip reporting the result that freed it.
        self._start_queued()
        if not self._db_ok():
            return 0.2
        self._report()
        self._report_breakers()
        self._report_loads()
        now = time.monotonic()
        if now >= timers.next_heartbeat:
            self._heartbeat()
            timers.next_heartbeat = time.monotonic() + self._heartbeat_interval()
        for br in self.breakers.values():
            executor = self.executors.get(br.kind)
            if executor is not None:
                br.maybe_probe(executor.probe, self.wake)
        self._start_queued()
        claimed = False
        if self._want_claim():
            claimed = self._claim()
            self._start_queued()
            if claimed:
                # why: the idle heartbeat period is long; new leases need the short one.
                timers.next_heartbeat = min(timers.next_heartbeat,
                                            time.monotonic() + self._heartbeat_interval())
        busy = bool(self.running or self.queued or self.unreported)
        if busy or claimed:
            timers.idle_since = None
        else:
            timers.idle_since = timers.idle_since or time.monotonic()
            if self.cfg.exit_when_idle and \
                    time.monotonic() - timers.idle_since >= self.cfg.exit_when_idle:
                logs.event("idle_exit", idle_s=self.cfg.exit_when_idle)
                self.stopping.set()
                return 0.0
        if claimed and self._want_claim():
            return 0.0  # there may be more to claim right away
        return min(max(0.0, timers.next_heartbeat - time.monotonic()), self.cfg.poll_interval)

    def _db_ok(self) -> bool:
        if self.db_down_since is None:
            return True
        if time.monotonic() < self.next_db_try:
            return False
        try:
            assert self.turing is not None
            self._register()
        except DatabaseUnavailable:
            self._db_failed(None)
            return False
        logs.event("db_back", down_s=round(time.monotonic() - self.db_down_since, 2),
                   unreported=len(self.unreported))
        self.db_down_since = None
        self.db_backoff = DB_RETRY_FIRST_S
        return True

    def _db_failed(self, exc: Exception | None) -> None:
        now = time.monotonic()
        if self.db_down_since is None:
            self.db_down_since = now
            logs.event("db_unavailable", error=str(exc), running=len(self.running),
                       action="keep running calls, report when the database is back",
                       level=logs.WARNING)
        self.next_db_try = now + self.db_backoff
        self.db_backoff = min(self.db_backoff * 2, DB_RETRY_MAX_S)

    def _heartbeat_interval(self) -> float:
        held = [a.ticket.actor.lease_s for a in self._held()]
        # why: a third of the shortest lease leaves two chances before a lease could lapse.
        return max(0.2, min(held) / 3) if held else IDLE_HEARTBEAT_S

    def _held(self) -> list[Attempt]:
        return [*self.queued, *self.running.values()]

    # -- claiming --------------------------------------------------------------------------
    def _want_claim(self) -> bool:
        """Claim when a slot is free and nothing waits for it, or, while every slot is busy,
        when nothing is queued: one batch of prefetch, so a slot that frees up finds its next
        ticket already leased instead of waiting for a claim round trip."""
        held = len(self.running) + len(self.queued)
        return held < self.cfg.concurrency or not self.queued

    def _claim_limit(self) -> int:
        # why: at most concurrency + batch tickets held: the running ones and one batch ahead.
        held = len(self.running) + len(self.queued)
        return max(0, min(self.cfg.batch, self.cfg.concurrency + self.cfg.batch - held))

    def _claim(self) -> bool:
        assert self.turing is not None
        if self.claim_broke and not self._release_unheld():
            return False
        if self._claim_limit() == 0:
            return False
        try:
            idle = not self.running and not self.queued
            if idle and len(self.cfg.models) > 1:
                # why: an idle multi-model runner chooses before it claims, so two idle GPUs
                # that see work appear at once take different models instead of both taking
                # the first one listed.
                tickets = self._choose()
            else:
                tickets = self._claim_model(self.current)
                if not tickets and len(self.cfg.models) > 1 and not self.running:
                    tickets = self._choose()
        except DatabaseUnavailable as exc:
            # why: the claim may have committed with its answer lost; what it claimed is
            # given back once the database answers again (release_unheld), not left to reap.
            self.claim_broke = True
            self._db_failed(exc)
            return False
        if not tickets:
            return False
        now = time.monotonic()
        for t in tickets:
            attempt = Attempt(t, now, threading.Event())
            # why: the claim started as many as there were free slots; those run at once,
            # with the timeout it fixed for them
            attempt.started_in_db = t.started
            attempt.timeout_s = t.timeout_s
            self.queued.append(attempt)
        self.stats["claimed"] += len(tickets)
        self.metrics.claimed(self.current, len(tickets))
        logs.event("claim", model=self.current, batch=tickets[0].batch_id, n=len(tickets),
                   actors=sorted({t.actor.name for t in tickets}))
        return True

    def _release_unheld(self) -> bool:
        """Give back what a claim that broke off may have claimed; False while the database
        is still away."""
        assert self.turing is not None
        held = [a.ticket.ticket_id for a in self._held()] + \
            [f.attempt.ticket.ticket_id for f in self.unreported]
        try:
            n = self.turing.release_unheld(self.cfg.worker, held)
        except DatabaseUnavailable as exc:
            self._db_failed(exc)
            return False
        self.claim_broke = False
        if n:
            logs.event("release", released=n, reason="claimed by a claim that broke off as it "
                       "committed; never run here", charged="no attempt charged")
        return True

    def _claim_model(self, model: str) -> list[Any]:
        """One claim of `model`, within what its breaker allows; a short claim asks the
        discovery thread to look for more work."""
        assert self.turing is not None and self.discoverer is not None
        limit = self._claim_limit()
        br = self.breakers.get(model)
        allowed = br.may_claim() if br is not None else None
        if allowed is not None:
            limit = min(limit, allowed)
        if limit <= 0:
            return []
        free = max(0, self.cfg.concurrency - len(self.running) - len(self.queued))
        tickets = self.turing.claim_batch(model, self.cfg.worker, limit,
                                          start_now=min(free, limit), discover=False,
                                          cold=self._cold(model), stage=self.cfg.stage)
        if tickets and br is not None:
            br.claimed_trial()
        if not tickets:
            self._say_held_back(model)
        if len(tickets) < limit:
            self.discoverer.poke()
        return tickets

    def _say_held_back(self, model: str) -> None:
        """Idle beside pending work that this runner's --stage excludes: say so once per actor
        version, with what to do, instead of idling in silence."""
        assert self.turing is not None
        now = time.monotonic()
        if self.cfg.stage == "develop" or now < self.held_back_due.get(model, 0.0):
            return
        self.held_back_due[model] = now + HELD_BACK_CHECK_S
        for row in self.turing.held_back(model, self.cfg.stage):
            key = (row["actor"], row["version"])
            if key in self.held_back_said:
                continue
            self.held_back_said.add(key)
            logs.event(
                "held_back", actor=row["actor"], version=row["version"], stage=row["stage"],
                pending=row["pending"], runner_stage=self.cfg.stage, level=logs.WARNING,
                message=(f"actor {row['actor']} has {row['pending']} pending tickets but its "
                         f"version {row['version']} is at stage {row['stage']} and it has no "
                         f"production version; this runner runs --stage {self.cfg.stage}: "
                         f"promote it (turing actor promote {row['actor']}) or start a runner "
                         f"with --stage {row['stage']} (or --stage develop)"))

    def _choose(self) -> list[Any]:
        """Nothing of this runner runs: claim from the model model_backlog ranks first (ready
        work, then no other runner on it, then the loaded one, then most work), switching the
        GPU to it when it is not the loaded one."""
        assert self.turing is not None
        for row in self.turing.model_backlog(self.cfg.models, self.cfg.worker,
                                             stage=self.cfg.stage):
            if row["ready"] <= 0:
                break
            br = self.breakers.get(row["model"])
            if br is not None and br.may_claim() == 0:
                continue  # why: its backend is down; another model's work can go on
            if row["model"] != self.current or self.loaded is None:
                if row["llm"]:
                    self._switch_to(row["model"])
                self.current = row["model"]
            tickets = self._claim_model(self.current)
            if tickets:
                return tickets
        # why: nothing ready by the counts; one plain claim still catches work that appeared
        # since, and keeps the unknown-model check of claim_batch.
        return self._claim_model(self.current)

    def _cold(self, model: str) -> bool:
        """Whether an attempt of `model` started now must wait for the model server to load it
        first: a model that needs loading, with no preload or call of this runner within its
        keep_alive. What another runner on the same server did is not known here; a model
        evicted by it is a cold start counted as warm, which the timeout floor absorbs."""
        return model in self.loadable_models \
            and time.monotonic() >= self.warm_until.get(model, 0.0)

    def _warmed(self, model: str) -> None:
        if model in self.loadable_models:
            self.warm_until[model] = time.monotonic() + self.cfg.keep_alive_s()

    def _switch_to(self, model: str) -> None:
        """Move this GPU to `model`: the executors that load models unload the one this runner
        loaded and preload the new one."""
        if model == self.loaded:
            return
        previous, started = self.loaded, time.monotonic()
        for ex in self.executors.values():
            if ex.loads_models:
                load_s = ex.switch_model(previous, model)
                if load_s is not None:
                    self._warmed(model)
                    self._loaded(model, load_s)
        if previous is not None:
            # why: unloaded to make room: its next attempt starts cold.
            self.warm_until.pop(previous, None)
        self.loaded = model
        if previous is not None:
            self.switches += 1
            self.metrics.model_switched(model)
        # why: the first preload is a load, not a switch; only switches thrash a GPU.
        logs.event("switch" if previous else "load", **{"from": previous, "to": model},
                   switches=self.switches, seconds=round(time.monotonic() - started, 3))

    # -- running ---------------------------------------------------------------------------
    def _start_queued(self) -> None:
        """Fill free slots from the queue. Tickets the claim did not start are started in the
        database first (one call for all of them), so their timeout counts from now."""
        take: list[Attempt] = []
        while self.queued and len(self.running) + len(take) < self.cfg.concurrency \
                and not self.stopping.is_set():
            attempt = self.queued.popleft()
            if not attempt.lease_lost:
                take.append(attempt)
        late = [a for a in take if not a.started_in_db]
        if late:
            assert self.turing is not None
            # why: one call per model, since whether it is cold is a property of the model
            by_model: dict[str, list[Attempt]] = {}
            for a in late:
                by_model.setdefault(a.ticket.actor.model, []).append(a)
            timeouts: dict[int, float | None] = {}
            try:
                for model, group in by_model.items():
                    timeouts.update(self.turing.start_tickets(
                        self.cfg.worker, [(a.ticket.ticket_id, a.ticket.lease_token)
                                          for a in group], cold=self._cold(model)))
            except DatabaseUnavailable as exc:
                # why: not started, so not run; they wait (leased) for the database. A group
                # started before the outage is started again by the next call, which keeps
                # its start and its timeout.
                self.queued.extendleft(reversed(take))
                self._db_failed(exc)
                return
            for a in late:
                a.started_in_db = True
                a.timeout_s = timeouts.get(a.ticket.ticket_id)
                if a.timeout_s is None:
                    a.lease_lost = True
                    logs.event("lease_lost", ticket=a.ticket.ticket_id, actor=a.ticket.actor.name,
                               started=False, action="not run", level=logs.WARNING)
        for attempt in take:
            if attempt.lease_lost:
                continue
            attempt.started_monotonic = time.monotonic()
            self.running[attempt.ticket.ticket_id] = attempt
            t, a = attempt.ticket, attempt.ticket.actor
            self.metrics.call_started(a.model, a.name)
            logs.event("start", ticket=t.ticket_id, actor=a.name, kind=a.kind,
                       subject=t.subject_id, attempt=t.attempt)
            if len(self.cfg.models) > 1 and a.model in self.loadable_models:
                self.loaded = self.loaded or a.model
            self.pool.submit(self._execute, attempt)

    def _execute(self, attempt: Attempt) -> None:
        """Runs on an actor thread; touches no shared state but the finished queue."""
        started = time.monotonic()
        result = executors.run_attempt(self.executors, attempt)
        self.finished.put(Finished(attempt, result, time.monotonic() - started))
        self.wake.set()

    def _collect(self) -> None:
        while True:
            try:
                done = self.finished.get_nowait()
            except queue.Empty:
                return
            self.running.pop(done.attempt.ticket.ticket_id, None)
            a = done.attempt.ticket.actor
            self.metrics.call_ended(a.model, a.name, done.result, done.seconds)
            self._breaker_sees(done)
            self._model_sees(done)
            if done.result.recorded is not None:
                # why: the executor already recorded it (a sql ticket, in its own transaction).
                self._log_outcomes([done], [done.result.recorded])
            elif done.result.kind == "unknown":
                t = done.attempt.ticket
                logs.event("outcome_unknown", ticket=t.ticket_id, actor=t.actor.name,
                           error=done.result.error, level=logs.WARNING,
                           consequence="if it did not commit, the lease expires and reap "
                           "retries it")
            else:
                self.unreported.append(done)

    # -- model loads -----------------------------------------------------------------------
    def _model_sees(self, done: Finished) -> None:
        """A call that reached the model server leaves its model loaded (warm); one that loaded
        it measured how long that took."""
        model, r = done.attempt.ticket.actor.model, done.result
        if r.kind == "fault":
            return
        self._warmed(model)
        if r.load_s is not None and r.load_s >= LOAD_REPORT_MIN_S:
            self._loaded(model, r.load_s)

    def _loaded(self, model: str, load_s: float) -> None:
        """A load measured (by a preload or a cold call): reported to the database, counted."""
        self.load_reports.append((model, load_s))
        self.metrics.model_loaded(model, load_s)

    def _report_loads(self) -> None:
        """Measured load times go to turing.model_loads (what auto timeouts add when cold)."""
        assert self.turing is not None
        while self.load_reports:
            model, load_s = self.load_reports[0]
            try:
                self.turing.report_model_load(self.cfg.worker, model, load_s)
            except DatabaseUnavailable as exc:
                self._db_failed(exc)
                return
            except (TuringError, psycopg.Error) as exc:
                logs.event("load_report_error", model=model, error=str(exc), level=logs.WARNING)
            logs.event("model_load", model=model, seconds=round(load_s, 3))
            self.load_reports.pop(0)

    # -- the breakers ----------------------------------------------------------------------
    def _breaker_sees(self, done: Finished) -> None:
        """Every result tells the breaker of its model whether the backend works."""
        a, r = done.attempt.ticket.actor, done.result
        if r.kind == "fault":
            self.stats["faults"] += 1
        if r.kind == "fault" and r.backend == DATABASE:
            # why: the database's own faults are paced by the loop's reconnect backoff; they
            # say nothing about the model's backend, whose breaker would keep the model from
            # claiming after the database is back.
            return
        br = self.breakers.setdefault(a.model, Breaker(a.model))
        br.kind = a.kind
        if r.kind == "fault":
            if br.fault(r.backend or "?", r.error or "", r.setting):
                logs.event("breaker_open", model=a.model, backend=br.backend, error=br.last_error,
                           setting=br.setting, level=logs.WARNING,
                           action="stop claiming this model, give back its queued tickets, "
                           "probe the backend, resume by itself")
                self.breaker_reports[a.model] = (False, br.last_error, br.setting)
                self._give_back_queued(a.model, f"backend down: {br.last_error}")
        elif r.kind in ("completed", "failed", "timed_out") and br.success():
            logs.event("breaker_closed", model=a.model, backend=br.backend)
            self.breaker_reports[a.model] = (True, None, None)

    def _give_back_queued(self, model: str, reason: str) -> None:
        mine = [q for q in self.queued if q.ticket.actor.model == model and not q.lease_lost]
        if not mine:
            return
        self.queued = deque(q for q in self.queued if q not in mine)
        for q in mine:
            self.unreported.append(Finished(q, Result.fault(
                reason, backend=self.breakers[model].backend), 0.0))

    def _report_breakers(self) -> None:
        """What the breakers know goes to turing.backend_status (the backend_down alert)."""
        assert self.turing is not None
        for model, (up, error, setting) in list(self.breaker_reports.items()):
            br = self.breakers[model]
            try:
                self.turing.report_backend(self.cfg.worker, mask_url(br.backend), model, up,
                                           error, setting)
            except DatabaseUnavailable as exc:
                self._db_failed(exc)
                return
            del self.breaker_reports[model]

    # -- reporting -------------------------------------------------------------------------
    def _report(self) -> None:
        if not self.unreported:
            return
        assert self.turing is not None
        batch, self.unreported = self.unreported, []
        groups: dict[str, list[Finished]] = {}
        for f in batch:
            groups.setdefault(_REPORTED_AS[f.result.kind], []).append(f)
        pending = list(groups.values())
        while pending:
            group = pending.pop(0)
            try:
                self._report_batch(group)
            except DatabaseUnavailable as exc:
                # why: never a failure: kept, and reported again with the same lease tokens
                # once the database is back (the fence decides whether they still count); the
                # other groups wait too instead of each waiting for the pool in turn.
                self.unreported = [*group, *(f for g in pending for f in g), *self.unreported]
                self._db_failed(exc)
                return
            except (TuringError, psycopg.Error) as exc:
                # why: one result the database refuses must not block the others: report them
                # one by one, and a result that still cannot be saved becomes a failed attempt.
                logs.event("report_error", error=str(exc), n=len(group),
                           action="reporting one by one", level=logs.WARNING)
                for f in group:
                    self._report_one(f)

    def _report_one(self, f: Finished) -> None:
        assert self.turing is not None
        try:
            self._report_batch([f])
        except DatabaseUnavailable as exc:
            self.unreported.append(f)
            self._db_failed(exc)
        except (TuringError, psycopg.Error) as exc:
            t = f.attempt.ticket
            failed = Finished(f.attempt, Result.failed(
                f"actor {t.actor.name}: the result could not be saved: {exc}"), f.seconds)
            try:
                self._report_batch([failed])
            except DatabaseUnavailable as again:
                self.unreported.append(failed)  # why: reported with its token once it is back
                self._db_failed(again)
            except (TuringError, psycopg.Error) as again:
                logs.event("report_lost", ticket=t.ticket_id, error=str(again),
                           level=logs.ERROR,
                           consequence="the lease expires and reap retries the ticket")

    def _report_batch(self, group: list[Finished]) -> None:
        """Report results that end the same way (completed, failures, released) in one call."""
        assert self.turing is not None
        self._log_outcomes(group, report_group(self.turing, self.cfg.worker, group))

    def _log_outcomes(self, done: list[Finished], outcomes: list[Outcome]) -> None:
        by_id = {o.ticket_id: o for o in outcomes}
        for f in done:
            t = f.attempt.ticket
            o = by_id.get(t.ticket_id)
            common = {"ticket": t.ticket_id, "actor": t.actor.name, "subject": t.subject_id,
                      "seconds": round(f.seconds, 3)}
            if o is None or not o.accepted:
                # why: invariant 4: the lease moved on (reaped or released); the result of this
                # attempt is not saved, and the operator can see that it happened.
                self.stats["discarded"] += 1
                self.metrics.discarded(t.actor.model, t.actor.name)
                logs.event("discard", **common, result=f.result.kind,
                           reason="lease lost (reaped or released); the current holder's "
                           "result stands", level=logs.WARNING)
            elif o.status == "pending":
                self.stats["returned"] += 1
                logs.event("fault" if f.result.kind == "fault" else "returned", **common,
                           reason=f.result.error, backend=f.result.backend,
                           charged="no attempt charged",
                           level=logs.WARNING if f.result.kind == "fault" else logs.INFO)
            elif o.status == "completed":
                self.stats["completed"] += 1
                self.metrics.completed(t.actor.model, t.actor.name)
                c = f.result.call
                tokens = {} if c is None else {
                    k: v for k, v in (("prompt_tokens", c.prompt_eval_count),
                                      ("output_tokens", c.eval_count)) if v is not None}
                logs.event("finish", **common, **tokens)
            else:
                self.stats["failed"] += 1
                self.metrics.failed(t.actor.model, t.actor.name, f.result)
                logs.event("fail", **common, kind=f.result.kind, status=o.status,
                           error=f.result.error or o.error or "(no error text)",
                           level=logs.WARNING)

    # -- leases ----------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        assert self.turing is not None
        held = self._held()
        try:
            answer = self.turing.heartbeat(
                self.cfg.worker, [(a.ticket.ticket_id, a.ticket.lease_token) for a in held])
        except DatabaseUnavailable as exc:
            self._db_failed(exc)
            return
        for a in held:
            if answer.get(a.ticket.ticket_id) is False and not a.lease_lost:
                a.lease_lost = True
                a.cancel.set()
                executor = self.executors.get(a.ticket.actor.kind)
                if executor is not None and executor.reports_itself \
                        and a.started_monotonic is not None:
                    # why: a sql ticket ends in the database itself; "not held" is most often
                    # its own commit. Its recorded outcome says what happened.
                    continue
                logs.event("lease_lost", ticket=a.ticket.ticket_id, actor=a.ticket.actor.name,
                           started=a.started_monotonic is not None,
                           action="stop the call if possible; its result will be discarded",
                           level=logs.WARNING)
        if any(a.lease_lost for a in self.queued):
            self.queued = deque(a for a in self.queued if not a.lease_lost)

    # -- graceful stop ---------------------------------------------------------------------
    def _shutdown(self) -> None:
        """Invariant 10: unstarted claims go back at once; running calls get `grace` seconds;
        what still runs after that is released (scripts killed first). Nothing is marked
        interrupted."""
        assert self.turing is not None
        unstarted = [a.ticket.ticket_id for a in self.queued if not a.lease_lost]
        self.queued.clear()
        if unstarted:
            try:
                n = self.turing.release_worker(self.cfg.worker, unstarted, stopping=False)
                logs.event("release", released=n, reason="unstarted claims at stop")
            except DatabaseUnavailable as exc:
                logs.event("release_failed", error=str(exc), level=logs.WARNING,
                           consequence="they return to pending when their leases expire")
        deadline = time.monotonic() + self.cfg.grace
        next_heartbeat = time.monotonic()
        while self.running and time.monotonic() < deadline and not self.force_stop:
            self._collect()
            self._report()
            if time.monotonic() >= next_heartbeat and self.running:
                self._heartbeat()
                next_heartbeat = time.monotonic() + self._heartbeat_interval()
            self.wake.wait(0.2)
            self.wake.clear()
        if self.running:
            for a in self.running.values():
                a.cancel.set()
            killed = sum(ex.stop_all() for ex in self.executors.values())
            logs.event("grace_over", still_running=len(self.running), killed=killed,
                       level=logs.WARNING)
            time.sleep(0.2)
        self._collect()
        self._report()
        self.pool.shutdown(wait=False, cancel_futures=True)
        try:
            n = self.turing.release_worker(self.cfg.worker, None, stopping=True)
            if n:
                logs.event("release", released=n, reason="still running after the grace period")
        except DatabaseUnavailable as exc:
            logs.event("release_failed", error=str(exc), level=logs.WARNING,
                       consequence="their leases expire and reap retries them")
