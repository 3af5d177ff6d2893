"""The `llm` executor (kind llm): one chat call per ticket to the runner's model server, Ollama
or an OpenAI-compatible one (runner/backends/, chosen by `--backend`).

The actor's prompt (and its system prompt) is rendered strictly from the ticket input, its
output_schema goes as the server's structured-output format, and the answer is validated
against that schema with jsonschema before anything is saved. What can go wrong is sorted three
ways (DESIGN.md, failures and faults), the same for every backend:
* the server's trouble (refused connection, 503 past its retries, its model runner crashed, a
  runner option refused on every call) is a fault: the ticket goes back uncharged and the
  runner's breaker for this backend counts it;
* a request no retry can fix (a prompt variable the input lacks, a model the server does not
  have, an output_schema the server refuses) fails straight to dead with the reason;
* everything else (not JSON, against the schema, cut off, another HTTP error) is the work's
  failure, retried by the database with backoff up to max_attempts."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import jsonschema

from turing_pg import logs
from turing_pg.backends import (
    Answer,
    Backend,
    ChatCall,
    ServerError,
    Stopped,
    TimedOut,
    TransportFailed,
    Unreachable,
    backend_for,
)
from turing_pg.config import LOAD_OPTIONS, RunnerConfig
from turing_pg.db import ActorRuntime, output_schema_problem
from turing_pg.execution import Attempt, CallRecord, Result, require_container
from turing_pg.executors.context import Context
from turing_pg.prompt import PromptError, render

TRANSPORT_RETRIES = 3
# Ollama's words when the model runner process died (an OOM, a driver fault): the server's
# trouble, not the ticket's.
RUNNER_CRASHED = ("runner process has terminated", "runner has unexpectedly stopped",
                  "runner process no longer running")


class LlmExecutor:
    kind = "llm"
    reports_itself = False
    loads_models = True
    refusal = None

    def __init__(self, ctx: Context) -> None:
        if ctx.cfg is None:
            raise ValueError("the llm executor runs in a runner, with its configuration")
        self.cfg: RunnerConfig = ctx.cfg
        self.backend: Backend = backend_for(self.cfg)
        self._warned: set[str] = set()
        self._schema_checked: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def switch_model(self, previous: str | None, model: str) -> float | None:
        """Unload `previous` (to free the GPU), then preload `model`, for a runner that serves
        several models on one GPU. Returns how long the load took, or None when nothing was
        loaded (the preload failed, or the server loads its models by itself)."""
        return self.backend.preload(previous, model)

    def probe(self) -> str | None:
        """A cheap request to the model server that loads nothing: None when it answers."""
        return self.backend.probe()

    def stop_all(self) -> int:
        return 0  # why: each call watches attempt.cancel and its own deadline

    def _schema_problem(self, schema: Any) -> str | None:
        """output_schema_problem, once per distinct schema (a check costs a validator build)."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._schema_checked:
            with self._lock:
                self._schema_checked[key] = output_schema_problem(schema)
        return self._schema_checked[key]

    def options(self, actor: str, actor_options: dict[str, Any]) -> dict[str, Any]:
        """Sampling options from the actor, load options fixed per runner: an actor asking for
        another num_ctx would make Ollama reload the model on every switch between actors."""
        conflicting = {k: v for k, v in actor_options.items()
                       if k in LOAD_OPTIONS and self.cfg.load_options.get(k) != v}
        if conflicting and actor not in self._warned:
            with self._lock:
                self._warned.add(actor)
            logs.event("options_ignored", actor=actor, ignored=conflicting,
                       why="load options are fixed per model by the runner (--num-ctx)",
                       level=logs.WARNING)
        sampling = {k: v for k, v in actor_options.items() if k not in LOAD_OPTIONS}
        return {"num_predict": self.cfg.num_predict, **sampling, **self.cfg.load_options}

    @staticmethod
    def messages(a: ActorRuntime, values: dict[str, Any]) -> list[dict[str, str]]:
        """The system prompt (if the actor has one) and the prompt, both rendered strictly."""
        messages = [{"role": "user", "content": render(a.prompt_template or "", values)}]
        if a.system_prompt:
            messages.insert(0, {"role": "system", "content": render(a.system_prompt, values)})
        return messages

    def run(self, attempt: Attempt) -> Result:
        t, a = attempt.ticket, attempt.ticket.actor
        where = f"actor {a.name}, model {a.model}"
        try:
            messages = self.messages(a, {"subject_id": t.subject_id, **t.input})
        except PromptError as exc:
            # why: not retryable: the same input renders the same way; fix the work_query or
            # the template, then `turing dead retry`.
            return Result.failed(f"{where}: {exc}; nothing was sent to the model",
                                 retryable=False)
        problem = self._schema_problem(a.output_schema)
        if problem is not None:
            return Result.failed(f"{where}: {problem}; nothing was sent to the model. Fix it "
                                 "with `turing actor set`, then `turing dead retry`",
                                 retryable=False)
        call = ChatCall(model=a.model, messages=messages, schema=a.output_schema,
                        options=self.options(a.name, a.options or {}), think=a.think,
                        keep_alive=self.cfg.keep_alive)
        result = self._call(attempt, call, where)
        if result.call is None and result.kind in ("failed", "timed_out"):
            # why: no answer came (a timeout, an HTTP error): the record still shows what was
            # asked.
            result = dataclasses.replace(result, call=self.record(call))
        return result

    @staticmethod
    def record(call: ChatCall, answer: Answer | None = None, output: Any = None) -> CallRecord:
        """The call record of `call` (turing.calls), with what `answer` measured if one came."""
        system = next((m["content"] for m in call.messages if m["role"] == "system"), None)
        options = {**call.options, "think": call.think, "keep_alive": call.keep_alive}
        if answer is None:
            return CallRecord(model=call.model, options=options,
                              prompt=call.messages[-1]["content"], system=system)
        text = answer.content
        if "\x00" in text:
            # why: PostgreSQL text cannot hold NUL; a failed answer with one must still be kept
            text = text.replace("\x00", "\N{REPLACEMENT CHARACTER}")
        return CallRecord(model=call.model, options=options,
                          prompt=call.messages[-1]["content"], system=system,
                          answer=text, output=output, **answer.counters())

    def _call(self, attempt: Attempt, call: ChatCall, where: str) -> Result:
        """The call with its transport retries, within the attempt's deadline."""
        t, a = attempt.ticket, attempt.ticket.actor
        backoff = 0.5
        reason = ""
        for try_no in range(1, TRANSPORT_RETRIES + 2):
            remaining = attempt.remaining()
            if remaining <= 0:
                return self._timed_out(attempt, where, called=try_no > 1)
            try:
                answer = self.backend.chat(call, remaining,
                                           lambda: not attempt.cancel.is_set()
                                           and attempt.remaining() > 0)
                return self.check(answer, call, where)
            except Stopped:
                if attempt.cancel.is_set():
                    return Result.released(f"{where}: the lease was lost; the call was stopped")
                return self._timed_out(attempt, where, called=True)
            except Unreachable as exc:
                # why: refused or unroutable: retrying here only burns the deadline; the
                # breaker probes the server and claims resume when it answers.
                return self._fault(where, str(exc))
            except TimedOut:
                return self._timed_out(attempt, where, called=True)
            except ServerError as exc:
                verdict = self._classify(exc, where, a.model, a.options or {})
                if verdict is not None:
                    return verdict
                if try_no > TRANSPORT_RETRIES:
                    return self._fault(where, f"HTTP 503 after {try_no} tries: {exc.text}")
                reason = f"HTTP 503 {exc.text}"
            except TransportFailed as exc:
                if try_no > TRANSPORT_RETRIES:
                    return self._fault(where, f"{try_no} tries failed: {exc}")
                reason = str(exc)
            logs.event("llm_retry", ticket=t.ticket_id, actor=a.name, model=a.model,
                       try_no=try_no, reason=reason, level=logs.WARNING)
            if attempt.cancel.wait(min(backoff, max(attempt.remaining(), 0))):
                return Result.released(f"{where}: the lease was lost while retrying ({reason})")
            backoff *= 2
        raise AssertionError("unreachable: the last try returns")

    def _fault(self, where: str, error: str, setting: str | None = None) -> Result:
        return Result.fault(f"{where}: {self.backend.label}: {error}",
                            backend=self.backend.address, setting=setting)

    def _classify(self, exc: ServerError, where: str, model: str,
                  actor_options: dict[str, Any]) -> Result | None:
        """What an error answer from the model server means; None = busy (503), retry after a
        pause.

        The server's own trouble is a fault (no attempt charged; the breaker counts it); a
        request no retry can fix (the model is missing, the output_schema is not a schema) is
        a failure sent straight to dead; a runner option refused on every call is a fault
        naming the setting, so the breaker holds the work instead of killing it ticket by
        ticket; anything else is the work's failure and is retried."""
        status, text = exc.status, exc.text
        low = text.lower()
        server = self.backend.label
        if status == 503:
            return None
        if any(m in low for m in RUNNER_CRASHED):
            return self._fault(where, f"its model runner stopped: {text}")
        if status == 404 or ("not found" in low and "model" in low) \
                or ("does not exist" in low and "model" in low):
            return Result.failed(
                f"{where}: {server} does not have model {model!r} ({text}); "
                f"{self.backend.missing_model(model)}, then `turing dead retry`",
                retryable=False)
        if "invalid format" in low or "json schema" in low or "json_schema" in low:
            return Result.failed(
                f"{where}: {server} refused the actor's output_schema: {text}; fix it with "
                "`turing actor set`, then `turing dead retry`", retryable=False)
        if status == 400:
            for option, flag in self.backend.settings.items():
                if option in low and option not in actor_options:
                    return self._fault(where, f"HTTP 400 {text}", setting=flag)
            return Result.failed(
                f"{where}: {server} refused the request (HTTP 400): {text}; check the "
                "actor's options, think and prompt", retryable=False)
        # why: any other error (a 500 included) is charged: it may be this ticket's own input
        # that makes the server fail, and a fault is never charged, so a poison ticket
        # treated as a fault would come back forever.
        return Result.failed(f"{where}: {server} answered HTTP {status}: {text}")

    def _timed_out(self, attempt: Attempt, where: str, *, called: bool) -> Result:
        what = ("the call was cancelled" if called
                else "no call was made: the time ran out before it")
        return Result.timed_out(
            f"{where}: no complete answer within the actor's timeout of "
            f"{attempt.timeout:g}s ({what}); raise the timeout or timeout_ceiling if the "
            "model is just slow (see turing.v_timeout_recommendations)"
        )

    @staticmethod
    def check(answer: Answer, call: ChatCall, where: str) -> Result:
        """Turn a chat answer into a Result: complete, JSON, valid against the schema; with
        its load time and token counts whatever the verdict."""
        content, schema = answer.content, call.schema
        if answer.cut_off:
            thinking = ("; the model thought first (think: " + call.think + "), which counts "
                        "against it: set think: false" if call.think != "false" else "")
            result = Result.failed(
                f"{where}: the answer was cut off at num_predict="
                f"{call.options.get('num_predict')} tokens (done_reason=length): "
                f"{content[:200]!r}; raise options.num_predict or ask for a shorter answer"
                f"{thinking}")
            parsed = None
        else:
            result, parsed = LlmExecutor._validated(content, schema, where)
        # why: a saved output is the ticket's; the record keeps only one that was refused
        unsaved = parsed if result.kind != "completed" else None
        return dataclasses.replace(result, load_s=answer.load_s,
                                   call=LlmExecutor.record(call, answer, unsaved))

    @staticmethod
    def _validated(content: str, schema: dict[str, Any] | None, where: str
                   ) -> tuple[Result, Any]:
        """The verdict on an answer, and what it parsed to (None when it is not JSON)."""
        try:
            output = json.loads(content)
        except json.JSONDecodeError as exc:
            return Result.failed(
                f"{where}: the answer is not JSON ({exc.msg} at char {exc.pos}): "
                f"{content[:300]!r}"
            ), None
        if schema is not None:
            error = jsonschema.exceptions.best_match(
                jsonschema.validators.validator_for(schema)(schema).iter_errors(output)
            )
            if error is not None:
                path = "/" + "/".join(str(p) for p in error.absolute_path)
                return Result.failed(
                    f"{where}: the answer violates output_schema at {path}: {error.message}"
                ), output
        return require_container(output, where), output
