"""The `sql` executor (kind sql): the actor's sql_function runs inside the database, through
turing.run_sql_ticket, which also completes (or fails) the ticket in the same transaction, so
the function's effects, on_complete and the status change commit together or not at all."""

from __future__ import annotations

from turing_pg.db import DatabaseUnavailable, Outcome
from turing_pg.execution import Attempt, Result
from turing_pg.executors.context import Context


class SqlExecutor:
    kind = "sql"
    reports_itself = True
    loads_models = False
    refusal = None

    def __init__(self, ctx: Context) -> None:
        self.turing = ctx.turing

    def switch_model(self, previous: str | None, model: str) -> float | None:
        return None  # why: the database is the resource; nothing to load

    def probe(self) -> str | None:
        return None  # why: no remote backend of its own

    def stop_all(self) -> int:
        return 0  # why: a statement in flight ends with its statement_timeout or its lease

    def run(self, attempt: Attempt) -> Result:
        t = attempt.ticket
        try:
            accepted, status, error = self.turing.run_sql_ticket(t.ticket_id, t.lease_token)
        except DatabaseUnavailable as exc:
            # why: the outcome is unknown (committed or not); the lease decides: if it did not
            # commit, reap retries it.
            return Result.unknown(str(exc))
        recorded = Outcome(t.ticket_id, accepted, status)
        if accepted and status == "completed":
            return Result("completed", recorded=recorded)
        # why: the failure text is the function's own error (or, when not accepted, why the
        # fence refused it), so the runner's log line says what happened.
        return Result("failed", error=error, recorded=recorded)
