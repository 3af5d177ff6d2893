"""The `llm` executor (kind llm): one chat call through the official `ollama` client per ticket.

The actor's prompt is rendered strictly from the ticket input, its output_schema goes as Ollama
`format`, and the answer is validated against that schema with jsonschema before anything is
saved. What can go wrong is sorted three ways (DESIGN.md, failures and faults):
* the server's trouble (refused connection, 503 past its retries, its model runner crashed, a
  runner option refused on every call) is a fault: the ticket goes back uncharged and the
  runner's breaker for this backend counts it;
* a request no retry can fix (a prompt variable the input lacks, a model the server does not
  have, an output_schema Ollama refuses) fails straight to dead with the reason;
* everything else (not JSON, against the schema, cut off, another HTTP error) is the work's
  failure, retried by the database with backoff up to max_attempts."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

import httpx
import jsonschema
import ollama

from turing_pg import logs
from turing_pg.config import LOAD_OPTIONS, RunnerConfig
from turing_pg.credentials import mask_url
from turing_pg.db import output_schema_problem
from turing_pg.execution import Attempt, Result, require_container
from turing_pg.executors.context import Context
from turing_pg.prompt import PromptError, render

TRANSPORT_RETRIES = 3
CONNECT_TIMEOUT_S = 5.0
# Ollama's words when the model runner process died (an OOM, a driver fault): the server's
# trouble, not the ticket's.
RUNNER_CRASHED = ("runner process has terminated", "runner has unexpectedly stopped",
                  "runner process no longer running")
# Runner options whose name in a 400 means the runner's setting is refused on every call.
RUNNER_SETTINGS = {"keep_alive": "--keep-alive", "num_ctx": "--num-ctx",
                   "num_predict": "--num-predict"}


class LlmExecutor:
    kind = "llm"
    reports_itself = False
    loads_models = True
    refusal = None

    def __init__(self, ctx: Context) -> None:
        if ctx.cfg is None:
            raise ValueError("the llm executor runs in a runner, with its configuration")
        self.cfg: RunnerConfig = ctx.cfg
        self._warned: set[str] = set()
        self._schema_checked: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def switch_model(self, previous: str | None, model: str) -> float | None:
        """Unload `previous` (to free the GPU), then preload `model`, for a runner that serves
        several models on one GPU. Returns how long the load took (Ollama's load_duration), or
        None when the preload failed."""
        # why: a load can take minutes on a slow disk; a load cut short by a client timeout is
        # aborted by Ollama and restarted by the next request, forever (reference §1.12).
        client = ollama.Client(host=self.cfg.ollama_host, timeout=httpx.Timeout(900, connect=5))
        if previous is not None:
            try:
                client.generate(model=previous, keep_alive=0)
            except (ollama.ResponseError, ConnectionError, httpx.HTTPError) as exc:
                logs.event("unload_failed", model=previous, error=str(exc), level=logs.WARNING)
        started = time.monotonic()
        try:
            reply = client.generate(model=model, keep_alive=self.cfg.keep_alive,
                                    options=dict(self.cfg.load_options))
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError) as exc:
            # why: not fatal: the first chat call loads the model anyway, and fails the ticket
            # with a clear error if the model is really missing.
            logs.event("preload_failed", model=model, error=str(exc), level=logs.WARNING)
            return None
        return load_seconds(reply, time.monotonic() - started)

    def probe(self) -> str | None:
        """GET /api/ps on the model server (cheap, loads nothing): None when it answers."""
        try:
            self._client(5.0).ps()
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def stop_all(self) -> int:
        return 0  # why: each call watches attempt.cancel and its own deadline

    def _client(self, timeout_s: float) -> ollama.Client:
        """This actor thread's client, with the timeout of the call about to be made.

        One client per thread, reused: building one (an httpx client with its TLS context)
        costs ~50 ms of CPU, which measured as 400 ms of overhead per call with 4 threads
        (bench/runner_bench.py). The ollama client has no per-call timeout and none by default
        (a hung server would hang the caller forever), so the thread's own httpx client gets
        what is left of the ticket's deadline before each call: with stream=False the server
        sends nothing until the answer is complete."""
        client: ollama.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = ollama.Client(host=self.cfg.ollama_host)
            self._local.client = client
        client._client.timeout = httpx.Timeout(
            max(timeout_s, 0.05), connect=min(CONNECT_TIMEOUT_S, max(timeout_s, 0.05)))
        return client

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

    def run(self, attempt: Attempt) -> Result:
        t, a = attempt.ticket, attempt.ticket.actor
        where = f"actor {a.name}, model {a.model}"
        try:
            prompt = render(a.prompt_template or "", {"subject_id": t.subject_id, **t.input})
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
        options = self.options(a.name, a.options or {})
        backoff = 0.5
        reason = ""
        for try_no in range(1, TRANSPORT_RETRIES + 2):
            remaining = attempt.remaining()
            if remaining <= 0:
                return self._timed_out(attempt, where, called=try_no > 1)
            try:
                return self._call(attempt, where, prompt, options, remaining)
            except httpx.ConnectError as exc:
                # why: refused or unroutable: retrying here only burns the deadline; the
                # breaker probes the server and claims resume when it answers.
                return self._fault(where, f"cannot connect: {exc}")
            except httpx.TimeoutException:
                return self._timed_out(attempt, where, called=True)
            except ollama.ResponseError as exc:
                verdict = self._classify(exc, where, a.model, a.options or {})
                if verdict is not None:
                    return verdict
                if try_no > TRANSPORT_RETRIES:
                    return self._fault(where, f"HTTP 503 after {try_no} tries: {exc.error}")
                reason = f"HTTP 503 {exc.error}"
            except (ConnectionError, httpx.TransportError) as exc:
                if try_no > TRANSPORT_RETRIES:
                    return self._fault(
                        where, f"{try_no} tries failed: {type(exc).__name__}: {exc}")
                reason = f"{type(exc).__name__}: {exc}"
            logs.event("llm_retry", ticket=t.ticket_id, actor=a.name, model=a.model,
                       try_no=try_no, reason=reason, level=logs.WARNING)
            if attempt.cancel.wait(min(backoff, max(attempt.remaining(), 0))):
                return Result.released(f"{where}: the lease was lost while retrying ({reason})")
            backoff *= 2
        raise AssertionError("unreachable: the last try returns")

    def _call(self, attempt: Attempt, where: str, prompt: str, options: dict[str, Any],
              timeout_s: float) -> Result:
        """One streamed chat call. Streamed so that a lost lease (attempt.cancel, set by the
        heartbeat) stops it between two chunks: closing the stream closes the connection, and
        Ollama stops generating for a client that went away, which frees the GPU slot at once
        instead of at the deadline."""
        a = attempt.ticket.actor
        stream = self._client(timeout_s).chat(
            model=a.model, messages=[{"role": "user", "content": prompt}],
            format=a.output_schema, options=options, keep_alive=self.cfg.keep_alive,
            stream=True)
        parts: list[str] = []
        last: Any = None
        try:
            for chunk in stream:
                parts.append(chunk.message.content or "")
                last = chunk
                if attempt.cancel.is_set():
                    return Result.released(f"{where}: the lease was lost; the call was stopped")
                if attempt.remaining() <= 0 and not chunk.done:
                    return self._timed_out(attempt, where, called=True)
        finally:
            stream.close()
        if last is None or not last.done:
            raise httpx.RemoteProtocolError("the stream ended before the answer was done")
        result = self.check("".join(parts), last.done_reason, a.output_schema, where, options)
        return dataclasses.replace(result, load_s=load_seconds(last, None))

    def _fault(self, where: str, error: str, setting: str | None = None) -> Result:
        host = mask_url(self.cfg.ollama_host)
        return Result.fault(f"{where}: Ollama at {host}: {error}", backend=host,
                            setting=setting)

    def _classify(self, exc: ollama.ResponseError, where: str, model: str,
                  actor_options: dict[str, Any]) -> Result | None:
        """What an error answer from Ollama means; None = busy (503), retry after a pause.

        The server's own trouble is a fault (no attempt charged; the breaker counts it); a
        request no retry can fix (the model is missing, the output_schema is not a schema) is
        a failure sent straight to dead; a runner option refused on every call is a fault
        naming the setting, so the breaker holds the work instead of killing it ticket by
        ticket; anything else is the work's failure and is retried."""
        status, text = exc.status_code, str(exc.error)
        low = text.lower()
        if status == 503:
            return None
        if any(m in low for m in RUNNER_CRASHED):
            return self._fault(where, f"its model runner stopped: {text}")
        if status == 404 or ("not found" in low and "model" in low):
            return Result.failed(
                f"{where}: Ollama at {mask_url(self.cfg.ollama_host)} does not have model "
                f"{model!r} ({text}); run `ollama pull {model}` there, then "
                "`turing dead retry`", retryable=False)
        if "invalid format" in low or "json schema" in low:
            return Result.failed(
                f"{where}: Ollama refused the actor's output_schema: {text}; fix it with "
                "`turing actor set`, then `turing dead retry`", retryable=False)
        if status == 400:
            for option, flag in RUNNER_SETTINGS.items():
                if option in low and option not in actor_options:
                    return self._fault(where, f"HTTP 400 {text}", setting=flag)
            return Result.failed(
                f"{where}: Ollama refused the request (HTTP 400): {text}; check the actor's "
                "options and prompt", retryable=False)
        # why: any other error (a 500 included) is charged: it may be this ticket's own input
        # that makes the server fail, and a fault is never charged, so a poison ticket
        # treated as a fault would come back forever.
        return Result.failed(f"{where}: Ollama answered HTTP {status}: {text}")

    def _timed_out(self, attempt: Attempt, where: str, *, called: bool) -> Result:
        what = ("the call was cancelled" if called
                else "no call was made: the time ran out before it")
        return Result.timed_out(
            f"{where}: no complete answer within the actor's timeout of "
            f"{attempt.timeout:g}s ({what}); raise the timeout or timeout_ceiling if the "
            "model is just slow (see turing.v_timeout_recommendations)"
        )

    @staticmethod
    def check(content: str, done_reason: str | None, schema: dict[str, Any] | None, where: str,
              options: dict[str, Any]) -> Result:
        """Turn a chat answer into a Result: complete, JSON, valid against the schema."""
        if done_reason == "length":
            return Result.failed(
                f"{where}: the answer was cut off at num_predict={options.get('num_predict')} "
                f"tokens (done_reason=length): {content[:200]!r}; raise options.num_predict "
                "or ask for a shorter answer"
            )
        try:
            output = json.loads(content)
        except json.JSONDecodeError as exc:
            return Result.failed(
                f"{where}: the answer is not JSON ({exc.msg} at char {exc.pos}): "
                f"{content[:300]!r}"
            )
        if schema is not None:
            error = jsonschema.exceptions.best_match(
                jsonschema.validators.validator_for(schema)(schema).iter_errors(output)
            )
            if error is not None:
                path = "/" + "/".join(str(p) for p in error.absolute_path)
                return Result.failed(
                    f"{where}: the answer violates output_schema at {path}: {error.message}"
                )
        return require_container(output, where)


def load_seconds(reply: Any, fallback: float | None) -> float | None:
    """Ollama's load_duration of a reply (nanoseconds) in seconds; `fallback` when the reply
    carries none (a server that does not report it)."""
    ns = getattr(reply, "load_duration", None)
    return ns / 1e9 if isinstance(ns, (int, float)) and ns >= 0 else fallback
