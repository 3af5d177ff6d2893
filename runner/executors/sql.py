"""The `sql` executor (kind sql): the actor's sql_function runs inside the database, through
turing.run_sql_ticket, which also completes (or fails) the ticket in the same transaction, so
the function's effects, on_complete and the status change commit together or not at all."""

from __future__ import annotations

import time

from turing_pg import logs
from turing_pg.db import DatabaseUnavailable, Outcome
from turing_pg.execution import DATABASE, Attempt, Result
from turing_pg.executors.context import Context

# why: a killed backend is replaced at once, so a short retry in place usually succeeds; a
# database that stays away longer than RETRY_BUDGET_S is an outage: the ticket goes back to
# pending (a fault, no attempt charged) instead of holding its slot for the whole timeout.
RETRY_FIRST_S, RETRY_MAX_S, RETRY_BUDGET_S = 0.1, 1.0, 10.0


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
        delay, retried = RETRY_FIRST_S, False
        give_up = time.monotonic() + min(RETRY_BUDGET_S, attempt.remaining())
        while True:
            try:
                accepted, status, error = self.turing.run_sql_ticket(t.ticket_id, t.lease_token)
                break
            except DatabaseUnavailable as exc:
                # why: the call was cut off (a backend killed, the server restarting): it
                # committed or changed nothing. Made again with the same lease token it runs
                # once or is refused, so it is retried, never charged as the work's failure.
                if attempt.cancel.is_set() or time.monotonic() + delay >= give_up:
                    # why: returned with its token (fenced: refused if the call committed).
                    return Result.fault(f"actor {t.actor.name}: {exc}", backend=DATABASE)
                logs.event("sql_retry", ticket=t.ticket_id, actor=t.actor.name,
                           reason=str(exc), retry_in_s=delay, level=logs.WARNING)
                attempt.cancel.wait(delay)
                delay, retried = min(delay * 2, RETRY_MAX_S), True
        if retried and not accepted:
            return Result.unknown(
                f"actor {t.actor.name}: the call was cut off and its retry with the same lease "
                "token was refused: the first call committed, or the lease was lost meanwhile")
        recorded = Outcome(t.ticket_id, accepted, status)
        if accepted and status == "completed":
            return Result("completed", recorded=recorded)
        # why: the failure text is the function's own error (or, when not accepted, why the
        # fence refused it), so the runner's log line says what happened.
        return Result("failed", error=error, recorded=recorded)
