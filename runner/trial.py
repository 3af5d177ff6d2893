"""Running an actor outside the queue: one attempt on one input through the runner's own
executors (executors.run_attempt), so the rendered prompt, the validation against the
output_schema and the failure classes are the runner's, not a copy of them.

Nothing is written unless asked: a trial has no ticket and runs no on_complete. `save` makes
the attempt a ticket of its own the honest way: this process submits it (turing.submit, top
priority), registers as a worker, claims it with claim_batch, runs it and reports it through
the same fenced call a runner makes (loop.report_group), then deregisters; so the ticket, its
call record and its on_complete are exactly a runner's. `turing harness`, `matrix` and `chat`
run their trials here."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from turing_pg import executors
from turing_pg.config import RunnerConfig
from turing_pg.db import (
    ActorRuntime,
    ClaimedTicket,
    InvalidArgument,
    Turing,
    TuringError,
    UnknownModel,
    UnknownTicket,
)
from turing_pg.execution import Attempt, Result
from turing_pg.exits import Exit
from turing_pg.loop import Finished, report_group

# why: the saved ticket must be the one the harness claims next, ahead of the actor's queue
SAVE_PRIORITY = 2**31 - 1
# why: another pending ticket of the model with the same top priority may come first; each is
# given back at once, uncharged, and the claim tried again this many times
SAVE_CLAIMS = 5
# the kinds a trial runs: a sql actor ends its own ticket in the database, a person answers a
# human one; both only through a real ticket
TRIAL_KINDS = ("llm", "script")


class ClaimedElsewhere(TuringError):
    """The saved ticket was claimed by a runner before the harness could claim it."""

    sqlstate, exit_code = None, Exit.REFUSED


@dataclass(frozen=True)
class Input:
    """One input a trial runs on: where it came from is `source`: `work_query` (the row the
    actor's work_query returns now), `ticket` (the latest ticket's, for a subject no longer in
    the inbox) or `given` (--input)."""

    subject_id: str
    input: dict[str, Any]
    source: str


@dataclass(frozen=True)
class Trial:
    """One attempt of an actor on one input, and what came of it."""

    actor: str
    version: int
    model: str
    item: Input
    result: Result
    seconds: float
    ticket_id: int | None = None  # with save: the ticket that holds it
    status: str | None = None  # with save: that ticket's status after the report

    @property
    def output(self) -> Any:
        """What the answer parsed to: the output when it passed, else what the call record
        kept of a refused one (None when it was not JSON)."""
        if self.result.kind == "completed":
            return self.result.output
        return self.result.call.output if self.result.call is not None else None

    @property
    def valid(self) -> bool:
        return self.result.kind == "completed"

    @property
    def tokens(self) -> tuple[int | None, int | None]:
        c = self.result.call
        return (None, None) if c is None else (c.prompt_eval_count, c.eval_count)

    def as_json(self) -> dict[str, Any]:
        r, c = self.result, self.result.call
        return {
            "actor": self.actor, "version": self.version, "model": self.model,
            "subject_id": self.item.subject_id, "input": self.item.input,
            "input_source": self.item.source, "result": r.kind, "valid": self.valid,
            "output": self.output, "error": r.error,
            "retryable": r.retryable if r.kind in ("failed", "timed_out") else None,
            "seconds": round(self.seconds, 4),
            "call": None if c is None else {
                "model": c.model, "options": c.options, "system_prompt": c.system,
                "prompt": c.prompt, "answer": c.answer,
                "tokens": {"prompt": c.prompt_eval_count, "output": c.eval_count},
                "timings_ns": {"load": c.load_duration, "prompt_eval": c.prompt_eval_duration,
                               "eval": c.eval_duration, "total": c.total_duration},
            },
            "saved": self.ticket_id is not None, "ticket_id": self.ticket_id,
            "ticket_status": self.status,
        }


def trial_config(dsn: str, model: str, *, concurrency: int = 1, **server: Any) -> RunnerConfig:
    """The configuration a runner of `model` would have, with the model server options given
    (turing_pg.cli.model_server.NAMES)."""
    worker = f"harness:{socket.gethostname()}:{os.getpid()}"
    return RunnerConfig(models=[model], dsn=dsn, worker=worker, concurrency=concurrency,
                        **server)


class Trials:
    """Trials of actors with one runner configuration: its executors, built once."""

    def __init__(self, turing: Turing, cfg: RunnerConfig) -> None:
        self.turing, self.cfg = turing, cfg
        self.executors = executors.for_runner(executors.Context(cfg, turing))
        self._served: list[str] | None = None
        self._asked = False

    def actor(self, name: str, kinds: tuple[str, ...] = TRIAL_KINDS
              ) -> tuple[ActorRuntime, int, float]:
        """The actor's definition, version and warm timeout; UnknownActor, or InvalidArgument
        for a kind this tool does not run."""
        runtime, version, timeout_s = self.turing.actor_runtime(name)
        if runtime.kind not in kinds:
            why = {"sql": "a sql actor ends its ticket in the database itself, so it runs only "
                          "as a ticket",
                   "human": "a person answers a human actor's tickets (`turing human`)",
                   "script": "a script actor has no model or prompt"}.get(
                runtime.kind, f"its kind is {runtime.kind}")
            raise InvalidArgument(
                f"actor {name} is a {runtime.kind} actor: {why}",
                f"this command runs {' and '.join(kinds)} actors"
                + (("; `turing harness " + name + " --subject S --save` runs it as a ticket")
                   if runtime.kind == "sql" and "script" in kinds else ""))
        return runtime, version, timeout_s

    def check_model(self, model: str) -> None:
        """UnknownModel when the model server lists its models and `model` is not one of them
        (a server that cannot say is left to answer the call)."""
        if not self._asked:
            backend = self.executors["llm"].backend  # type: ignore[attr-defined]
            self._served, self._asked = backend.served(), True
        if self._served is None:
            return
        names = set(self._served)
        if model in names or (":" not in model and f"{model}:latest" in names):
            return
        server = self.executors["llm"].backend.label  # type: ignore[attr-defined]
        raise UnknownModel(
            f"unknown model {model!r}: {server} does not have it",
            f"it has {', '.join(self._served[:20]) or 'none'}; pick one of them")

    def inputs(self, actor: str, subjects: list[str] | None = None, limit: int = 100,
               *, or_else: str = "") -> list[Input]:
        """The inputs for `subjects` (each must have one: UnknownTicket names the first that
        does not, its hint ending with `or_else`), or the first `limit` the actor offers."""
        rows = self.turing.actor_inputs(actor, subjects, limit)
        found = {r["subject_id"]: Input(r["subject_id"], r["input"] or {}, r["source"])
                 for r in rows}
        if subjects is None:
            return list(found.values())
        missing = [s for s in subjects if s not in found]
        if missing:
            raise UnknownTicket(
                f"unknown subject {missing[0]} for actor {actor}: its work_query does not "
                "return it and it has no ticket",
                "name a subject of its inbox or of its tickets (`turing tickets --actor "
                + actor + "`)" + or_else)
        return [found[s] for s in subjects]

    def _attempt(self, actor: ActorRuntime, item: Input, timeout_s: float) -> Attempt:
        ticket = ClaimedTicket(ticket_id=0, lease_token=uuid.uuid4(), batch_id=0,
                               subject_id=item.subject_id, input=item.input, attempt=1,
                               chain_id=0, started=True, actor=actor, timeout_s=timeout_s)
        return Attempt(ticket, time.monotonic(), threading.Event(),
                       started_monotonic=time.monotonic(), started_in_db=True,
                       timeout_s=timeout_s)

    def run(self, actor: ActorRuntime, version: int, timeout_s: float, item: Input) -> Trial:
        """One attempt on `item`, nothing saved (the actor's model unless `actor` was given
        another with dataclasses.replace)."""
        started = time.monotonic()
        result = executors.run_attempt(self.executors, self._attempt(actor, item, timeout_s))
        return Trial(actor.name, version, actor.model, item, result, time.monotonic() - started)

    def save(self, name: str, item: Input) -> Trial:
        """One attempt on `item` as a ticket of its own, run as a runner runs it (see the
        module's docstring). DuplicateOpenTicket when the subject already has an open ticket;
        ClaimedElsewhere when a runner claimed it first (it runs there)."""
        runtime, version, _timeout = self.turing.actor_runtime(name)
        t, worker = self.turing, self.cfg.worker
        # why: registered first, so a login that may not work tickets is refused before a
        # top-priority ticket exists for a runner to find
        t.register_runner(worker, [runtime.model], hostname=socket.gethostname(),
                          pid=os.getpid(), concurrency=1, info={"harness": True})
        try:
            ticket_id = t.submit(name, item.subject_id, item.input, priority=SAVE_PRIORITY)
            claimed = self._claim(runtime.model, ticket_id)
            if claimed is None:
                raise ClaimedElsewhere(
                    f"ticket {ticket_id} was claimed by a runner before the harness could "
                    "claim it; it runs there",
                    f"see its result with `turing tickets show {ticket_id}`")
            attempt = Attempt(claimed, time.monotonic(), threading.Event(),
                              started_monotonic=time.monotonic(),
                              started_in_db=claimed.started, timeout_s=claimed.timeout_s)
            started = time.monotonic()
            result = executors.run_attempt(self.executors, attempt)
            seconds = time.monotonic() - started
            if result.recorded is not None:  # a sql actor ended it in the database
                status = result.recorded.status
            elif result.kind == "unknown":
                status = None
            else:
                done = Finished(attempt, result, seconds)
                [outcome] = report_group(t, worker, [done]) or [None]
                status = outcome.status if outcome is not None and outcome.accepted else None
            return Trial(name, version, runtime.model, item, result, seconds, ticket_id,
                         status)
        finally:
            t.release_worker(worker, None, stopping=True)

    def _claim(self, model: str, ticket_id: int) -> ClaimedTicket | None:
        """Claim `ticket_id` as this worker; other tickets a claim brings are given back."""
        for _ in range(SAVE_CLAIMS):
            got = self.turing.claim_batch(model, self.cfg.worker, 1, discover=False)
            if not got:
                return None
            [c] = got
            if c.ticket_id == ticket_id:
                return c
            self.turing.return_tickets(self.cfg.worker, [(c.ticket_id, c.lease_token)],
                                       "claimed by `turing harness --save` for another "
                                       "ticket; given back")
        return None
