"""The executors: one module per actor kind, behind the one protocol in turing_pg.execution,
chosen by kind from REGISTRY. The runner's loop names no kind.

Adding a kind takes four files: a row in turing.actor_kinds (a migration), its module here, its
line in REGISTRY, and a test."""

from __future__ import annotations

from collections.abc import Mapping

from turing_pg.execution import Attempt, Executor, Result
from turing_pg.executors.context import Context
from turing_pg.executors.human import HumanExecutor
from turing_pg.executors.llm import LlmExecutor
from turing_pg.executors.script import ScriptExecutor
from turing_pg.executors.sql import SqlExecutor

REGISTRY: dict[str, type[Executor]] = {
    cls.kind: cls for cls in (LlmExecutor, ScriptExecutor, SqlExecutor, HumanExecutor)
}

__all__ = ["REGISTRY", "Context", "for_runner", "refusal", "run_attempt"]


def for_runner(ctx: Context) -> dict[str, Executor]:
    """One executor per kind a runner runs (kinds with a refusal are answered elsewhere)."""
    return {kind: cls(ctx) for kind, cls in REGISTRY.items() if cls.refusal is None}


def refusal(kind: str) -> str:
    """Why a runner does not run this kind (for the failure it reports)."""
    cls = REGISTRY.get(kind)
    if cls is None:
        return (f"no executor for kind {kind!r} in this version of Turing; upgrade the runner "
                f"(it knows {', '.join(sorted(REGISTRY))})")
    return cls.refusal or ""


def run_attempt(found: Mapping[str, Executor], attempt: Attempt) -> Result:
    """Run one started attempt with the executor of its kind (from `found`, for_runner's): the
    one path from a ticket to its Result, for the runner's loop and for `turing harness`,
    `matrix` and `chat` alike. Never raises: an input that cannot be read, a kind no executor
    runs and a bug in an executor are each this attempt's failure."""
    a = attempt.ticket.actor
    executor = found.get(a.kind)
    try:
        if attempt.ticket.input_error:
            # why: nothing can run on an input that cannot be read; only this ticket fails
            return Result.failed(f"actor {a.name}: {attempt.ticket.input_error}",
                                 retryable=False)
        if executor is None:
            return Result.failed(f"actor {a.name}: {refusal(a.kind)}", retryable=False)
        return executor.run(attempt)
    except Exception as exc:  # a bug in an executor must not lose the ticket
        return Result.failed(f"actor {a.name}: runner error {type(exc).__name__}: {exc}")
