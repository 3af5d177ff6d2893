"""Running one ticket, whatever runs it: the attempt in this runner, what it produced, and the
protocol every executor (runner/executors/, one per actor kind) follows."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from turing_pg.db import ClaimedTicket, Outcome

# the backend a fault names when the database itself failed (a backend killed, the server
# restarting or unreachable): the runner's own reconnect backoff handles it, not a model breaker
DATABASE = "database"


@dataclass(frozen=True)
class CallRecord:
    """What one LLM call sent and got back, kept in turing.calls by the transaction that ends
    the attempt (complete_batch / fail_batch): the rendered prompts, the raw answer, and the
    counts and durations the model server measured (nanoseconds, Ollama's names; None where
    the server does not report one). `output` is what the answer parsed to when it was not
    saved (JSON against the output_schema); a saved output is the ticket's and is not sent
    twice."""

    model: str
    options: dict[str, Any]
    prompt: str
    system: str | None = None
    answer: str | None = None
    output: Any = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    total_duration: int | None = None

    def as_json(self, ticket_id: int) -> dict[str, Any]:
        """The record as complete_batch / fail_batch take it in p_calls."""
        return {"ticket_id": ticket_id, **self.__dict__}


@dataclass(frozen=True)
class Result:
    """The outcome of one attempt, before it is reported through the fenced SQL functions.

    kind is
    * `completed` (output is set);
    * `failed` or `timed_out` (error says what failed, where, and what to do); retryable =
      False sends a failure straight to `dead` (nothing a retry could change, e.g. a prompt
      variable missing from the work_query);
    * `released`: the ticket goes back to pending without an attempt charged (a person
      skipped it);
    * `fault`: the infrastructure failed, not the work (the model server unreachable or
      refusing connections, 503 past its retries, its runner process crashed), or a runner
      setting makes every call fail alike (`setting` names it): the ticket goes back to pending
      without an attempt charged, and the runner's breaker for `backend` counts it;
    * `unknown`: the executor ran it inside the database and cannot tell whether that
      committed (the connection broke); the lease decides, nothing is reported.

    `recorded` is set when the executor already recorded the outcome in the database (the sql
    executor completes in the same transaction that runs the function): nothing is left to
    report, the runner only logs it."""

    kind: str
    output: Any = None
    error: str | None = None
    retryable: bool = True
    recorded: Outcome | None = None
    backend: str | None = None  # fault: the model server (host, credentials masked)
    setting: str | None = None  # fault: the runner option every call fails on, if one
    # why: the call's own measure of a model load (Ollama's load_duration), whatever the
    # outcome: auto timeouts add the measured load time for attempts started cold.
    load_s: float | None = None
    # an LLM attempt that sent a call: what it sent and got back (turing.calls)
    call: CallRecord | None = None

    @classmethod
    def ok(cls, output: Any) -> Result:
        return cls("completed", output=output)

    @classmethod
    def failed(cls, error: str, *, retryable: bool = True) -> Result:
        return cls("failed", error=error, retryable=retryable)

    @classmethod
    def timed_out(cls, error: str) -> Result:
        return cls("timed_out", error=error)

    @classmethod
    def released(cls, reason: str) -> Result:
        return cls("released", error=reason)

    @classmethod
    def fault(cls, error: str, *, backend: str, setting: str | None = None) -> Result:
        return cls("fault", error=error, backend=backend, setting=setting)

    @classmethod
    def unknown(cls, error: str) -> Result:
        return cls("unknown", error=error)


@dataclass
class Attempt:
    """A claimed ticket in this runner: its local deadline and a way to cancel it."""

    ticket: ClaimedTicket
    claimed_monotonic: float  # time.monotonic() at claim
    cancel: threading.Event
    started_monotonic: float | None = None  # when this runner started the call
    started_in_db: bool = False  # started_at set (by the claim, or by start_tickets)
    lease_lost: bool = False
    # the timeout the database fixed when it started this attempt (claim or start_tickets)
    timeout_s: float | None = None

    @property
    def timeout(self) -> float:
        """Seconds this attempt may run: the timeout the database stored when it started
        it (an auto timeout's value of that moment), the one heartbeat and reap count too."""
        for value in (self.timeout_s, self.ticket.timeout_s, self.ticket.actor.timeout_s):
            if value is not None:
                return value
        raise ValueError(f"ticket {self.ticket.ticket_id} has no timeout: it was never started")

    @property
    def deadline_monotonic(self) -> float:
        """The local deadline (time.monotonic()): the attempt's timeout counted from the start
        of the call, as the database counts it from started_at (set at most a round trip
        earlier), so the runner gives up no later than reap would. Queue time never counts."""
        start = self.started_monotonic if self.started_monotonic is not None \
            else time.monotonic()
        return start + self.timeout

    def remaining(self) -> float:
        return self.deadline_monotonic - time.monotonic()


class Executor(Protocol):
    """Runs the tickets of one actor kind; built once per runner with an executors.Context.
    `run` is called on an actor thread and must not touch the runner's state; it returns what
    happened and never raises for the work's own failures."""

    kind: ClassVar[str]
    # why: a runner serving a model that needs loading (an LLM on a GPU) switches models
    # explicitly; script and sql resources have nothing to load.
    loads_models: ClassVar[bool]
    # None when a runner runs this kind; else the sentence saying who does (a person).
    refusal: ClassVar[str | None]
    # why: an executor that ends the ticket in the database itself (sql) reports its own
    # outcome; the runner only logs it, and a lost lease may just be its own commit.
    reports_itself: ClassVar[bool]

    def run(self, attempt: Attempt) -> Result: ...

    def switch_model(self, previous: str | None, model: str) -> float | None:
        """The runner moves its GPU from `previous` to `model` (unload, then preload).
        Returns the seconds the preload took to load `model`, or None when it did not load."""
        ...

    def probe(self) -> str | None:
        """A cheap check of the backend this executor calls (e.g. GET /api/ps): None when
        it answers, else what failed. The runner's breaker probes with it while open."""
        ...

    def stop_all(self) -> int:
        """Stop whatever still runs at the end of the grace period; returns how many."""
        ...


def require_container(output: Any, where: str) -> Result:
    """complete_ticket stores JSON objects or arrays only; say so instead of failing in SQL."""
    if isinstance(output, (dict, list)):
        return Result.ok(output)
    return Result.failed(
        f"{where} produced a JSON {type(output).__name__}, not an object or array; "
        "wrap the value in an object, e.g. {\"value\": ...}"
    )
