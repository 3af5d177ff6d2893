"""What running one ticket produced, whatever ran it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from turing_pg.db import ClaimedTicket


@dataclass(frozen=True)
class Result:
    """The outcome of one attempt, before it is reported through the fenced SQL functions.

    kind is `completed` (output is set), `failed` or `timed_out` (error says what failed, where,
    and what to do); retryable = False sends a failure straight to `dead` (nothing a retry could
    change, e.g. a prompt variable missing from the work_query)."""

    kind: str
    output: Any = None
    error: str | None = None
    retryable: bool = True

    @classmethod
    def ok(cls, output: Any) -> Result:
        return cls("completed", output=output)

    @classmethod
    def failed(cls, error: str, *, retryable: bool = True) -> Result:
        return cls("failed", error=error, retryable=retryable)

    @classmethod
    def timed_out(cls, error: str) -> Result:
        return cls("timed_out", error=error)


@dataclass
class Attempt:
    """A claimed ticket in this runner: its local deadline and a way to cancel it."""

    ticket: ClaimedTicket
    claimed_at: float  # time.monotonic() at claim
    cancel: threading.Event
    started_at: float | None = None
    lease_lost: bool = False

    @property
    def deadline(self) -> float:
        """The local deadline (monotonic): the actor's timeout counted from the claim, the same
        moment the database counts it from, so the runner gives up no later than reap would."""
        return self.claimed_at + self.ticket.timeout_s

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class Executor(Protocol):
    def run(self, attempt: Attempt) -> Result: ...


def require_container(output: Any, where: str) -> Result:
    """complete_ticket stores JSON objects or arrays only; say so instead of failing in SQL."""
    if isinstance(output, (dict, list)):
        return Result.ok(output)
    return Result.failed(
        f"{where} produced a JSON {type(output).__name__}, not an object or array; "
        "wrap the value in an object, e.g. {\"value\": ...}"
    )
