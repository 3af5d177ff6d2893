"""The executors: one module per actor kind, behind the one protocol in turing_pg.execution,
chosen by kind from REGISTRY. The runner's loop names no kind.

Adding a kind takes four files: a row in turing.actor_kinds (a migration), its module here, its
line in REGISTRY, and a test."""

from __future__ import annotations

from turing_pg.execution import Executor
from turing_pg.executors.context import Context
from turing_pg.executors.human import HumanExecutor
from turing_pg.executors.llm import LlmExecutor
from turing_pg.executors.script import ScriptExecutor
from turing_pg.executors.sql import SqlExecutor

REGISTRY: dict[str, type[Executor]] = {
    cls.kind: cls for cls in (LlmExecutor, ScriptExecutor, SqlExecutor, HumanExecutor)
}

__all__ = ["REGISTRY", "Context", "for_runner", "refusal"]


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
