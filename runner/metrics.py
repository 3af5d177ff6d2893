"""The runner's Prometheus metrics: what the loop counts, and the /metrics endpoint that serves
it (`turing-runner --metrics-port P`).

The loop tells this module what happened (`metrics.claimed(model, n)`, `metrics.call_ended(…)`)
and never touches prometheus_client itself. Each runner counts into a registry of its own, not
the library's global one, so two runners in one process (the tests, the demo) never add into
each other's counts and nothing else the process imports shows up in a runner's scrape.

What is counted, and where the loop counts it, is chosen so the figures agree with the
database: a completion is counted when the database accepted it (the fence), so
`turing_runner_completed_total` equals the completed tickets this runner saved."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)

from turing_pg.db import TuringError
from turing_pg.execution import Result
from turing_pg.exits import Exit

# why: from a 0.2 s script to a 10-minute extraction: the buckets must resolve both ends, and a
# timeout recommendation (p99 × 2) read off the histogram needs the long tail.
CALL_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                  300.0, 600.0, 1200.0)
# why: a model load takes from half a second (a small model from the page cache) to minutes
# (a 70B model from disk).
LOAD_BUCKETS_S = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

# the value of turing_runner_breaker_state for each state of runner/breaker.py
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}

# the `class` label of turing_runner_failures_total: DESIGN.md's three classes of failure
FAILURE_CLASSES = ("failure", "definition", "fault")


class MetricsUnavailable(TuringError):
    """The /metrics endpoint cannot listen where it was told to."""

    exit_code = Exit.USAGE


def failure_class(result: Result) -> str:
    """Which of DESIGN.md's classes a failed result belongs to: `fault` (the infrastructure;
    no attempt charged), `definition` (not retried: dead at once, nothing a retry could
    change), or `failure` (the work's own failure, a timeout included: an attempt charged,
    retried with backoff up to max_attempts)."""
    if result.kind == "fault":
        return "fault"
    if not result.retryable:
        return "definition"
    return "failure"


class RunnerMetrics:
    """The metrics of one runner, in a registry of its own."""

    def __init__(self, *, worker: str, models: Iterable[str], version: str, backend: str,
                 concurrency: int) -> None:
        # why: a `_created` series beside every counter and histogram doubles what Prometheus
        # stores for a figure no panel reads (the process start is in process_start_time).
        disable_created_metrics()
        self.registry = CollectorRegistry()
        self._server: Any = None
        self.port: int | None = None
        r = self.registry
        # the process's CPU, memory, open files and start time (process_…), as exporters do
        ProcessCollector(registry=r)
        self._info = Info("turing_runner", "This runner: its name, models, version and model "
                          "server protocol.", registry=r)
        self._info.info({"worker": worker, "models": ",".join(models), "version": version,
                         "backend": backend, "python": platform.python_version()})
        Gauge("turing_runner_concurrency", "Tickets this runner runs at once "
              "(--concurrency): the ceiling of turing_runner_calls_in_flight.",
              registry=r).set(concurrency)
        self._claimed = Counter("turing_runner_claimed_tickets_total",
                                "Tickets claimed (leased) by this runner.", ["model"], registry=r)
        self._completed = Counter("turing_runner_completed_total",
                                  "Tickets completed, as accepted by the database.",
                                  ["model", "actor"], registry=r)
        self._failures = Counter(
            "turing_runner_failures_total",
            "Failed attempts by class: failure = the work's own (a timeout included; an "
            "attempt charged, retried), definition = dead at once (not retried), fault = the "
            "infrastructure (no attempt charged, back to pending).",
            ["model", "actor", "class"], registry=r)
        self._discarded = Counter(
            "turing_runner_discarded_total",
            "Results discarded because the lease had moved on (reaped or released).",
            ["model", "actor"], registry=r)
        self._in_flight = Gauge("turing_runner_calls_in_flight",
                                "Calls running now (actor threads busy).", ["model", "actor"],
                                registry=r)
        self._queued = Gauge("turing_runner_tickets_queued",
                             "Tickets claimed ahead, waiting here for a free slot.", registry=r)
        self._call_seconds = Histogram(
            "turing_runner_call_seconds",
            "Seconds one call took on this runner (from its start, never from its claim), by "
            "how it ended (completed, failed, timed_out, fault, released, unknown).",
            ["model", "actor", "outcome"], buckets=CALL_BUCKETS_S, registry=r)
        self._tokens = Counter(
            "turing_runner_tokens_total",
            "Tokens the model server counted (Ollama's prompt_eval_count and eval_count), by "
            "type: prompt or output.", ["model", "actor", "type"], registry=r)
        self._loads = Counter("turing_runner_model_loads_total",
                              "Model loads this runner caused (a preload or a cold call).",
                              ["model"], registry=r)
        self._load_seconds = Histogram("turing_runner_model_load_seconds",
                                       "Seconds a model load took.", ["model"],
                                       buckets=LOAD_BUCKETS_S, registry=r)
        self._switches = Counter(
            "turing_runner_model_switches_total",
            "Switches of this runner's GPU to another model (the first load is not one), by "
            "the model switched to.", ["model"], registry=r)
        self._breaker = Gauge(
            "turing_runner_breaker_state",
            "The circuit breaker of a model's backend: 0 closed (claiming), 1 half-open (one "
            "trial ticket), 2 open (not claiming; the backend is probed).", ["model"],
            registry=r)
        self._db_up = Gauge("turing_runner_database_up",
                            "1 while the database answers this runner, 0 while it is away.",
                            registry=r)
        for model in models:
            # why: series that exist from the start make rate() and increase() see the first
            # event, and a dashboard shows 0 rather than "no data".
            self._claimed.labels(model)
            self._loads.labels(model)
            self._switches.labels(model)

    # -- the endpoint ----------------------------------------------------------------------
    def serve(self, host: str, port: int) -> int:
        """Serve /metrics on host:port (port 0: any free port) on a thread of its own; returns
        the port it listens on."""
        try:
            self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsUnavailable(
                f"--metrics-port {port}: cannot listen on {host}:{port} "
                f"({exc.strerror or exc}); give a free port (0 picks one) or stop what listens "
                "there") from None
        self.port = int(self._server.server_port)
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- what the loop tells ---------------------------------------------------------------
    def watch(self, *, models: Iterable[str], breaker_state: Callable[[str], str],
              database_up: Callable[[], bool], queued: Callable[[], int]) -> None:
        """Gauges read at scrape time from the runner's own state, so they are never stale:
        each model's breaker state, whether the database answers, the claims queued here."""
        for model in models:
            self._breaker.labels(model).set_function(
                lambda m=model: BREAKER_STATES[breaker_state(m)])
        self._db_up.set_function(lambda: 1.0 if database_up() else 0.0)
        self._queued.set_function(queued)

    def actors(self, pairs: Iterable[tuple[str, str]]) -> None:
        """The (model, actor) pairs this runner serves, known at start: their series start at
        0. An actor registered later gets its series at its first ticket."""
        for model, actor in pairs:
            self._completed.labels(model, actor)
            self._discarded.labels(model, actor)
            self._in_flight.labels(model, actor)
            for cls in FAILURE_CLASSES:
                self._failures.labels(model, actor, cls)

    def claimed(self, model: str, n: int) -> None:
        self._claimed.labels(model).inc(n)

    def call_started(self, model: str, actor: str) -> None:
        self._in_flight.labels(model, actor).inc()

    def call_ended(self, model: str, actor: str, result: Result, seconds: float) -> None:
        """A call ended, whatever its outcome: its latency and tokens, and a fault (counted
        here, when it happened: it is never reported as an attempt)."""
        self._in_flight.labels(model, actor).dec()
        self._call_seconds.labels(model, actor, result.kind).observe(seconds)
        # why: the tokens are the call record's (Ollama's counters), when a call was sent
        call = result.call
        if call is not None and call.prompt_eval_count:
            self._tokens.labels(model, actor, "prompt").inc(call.prompt_eval_count)
        if call is not None and call.eval_count:
            self._tokens.labels(model, actor, "output").inc(call.eval_count)
        if result.kind == "fault":
            self._failures.labels(model, actor, "fault").inc()

    def completed(self, model: str, actor: str) -> None:
        self._completed.labels(model, actor).inc()

    def failed(self, model: str, actor: str, result: Result) -> None:
        """A failed attempt the database accepted (failed, timed out, or dead)."""
        if result.kind == "fault":
            return  # why: counted when the call ended (call_ended); it is no attempt
        self._failures.labels(model, actor, failure_class(result)).inc()

    def discarded(self, model: str, actor: str) -> None:
        self._discarded.labels(model, actor).inc()

    def model_loaded(self, model: str, seconds: float) -> None:
        self._loads.labels(model).inc()
        self._load_seconds.labels(model).observe(seconds)

    def model_switched(self, model: str) -> None:
        self._switches.labels(model).inc()
