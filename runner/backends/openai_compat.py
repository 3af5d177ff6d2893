"""OpenAI-compatible servers (vLLM, llama.cpp's llama-server, LM Studio, Ollama's /v1) through
the official `openai` client: `/v1/chat/completions` with the output_schema as a JSON-schema
`response_format`, streamed, with its usage counted; `/v1/models` as the breaker's probe and
as the list of models a 404 names.

What Ollama has and these servers do not: keep_alive and load options (the server loads its
model(s) when it starts, with its own context size), and an explicit load or unload (a runner
on such a server never switches models by itself; it just calls the model a ticket names)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
import openai

from turing_pg import backends
from turing_pg.backends.ollama import call_timeout
from turing_pg.config import RunnerConfig
from turing_pg.credentials import mask_url

# Ollama's option names that have a field of their own in the OpenAI request.
DIRECT = {"num_predict": "max_tokens", "temperature": "temperature", "top_p": "top_p",
          "seed": "seed", "stop": "stop", "presence_penalty": "presence_penalty",
          "frequency_penalty": "frequency_penalty"}
# Sampling options vLLM and llama.cpp's server take as extra body fields.
EXTRA = frozenset({"top_k", "min_p", "repeat_penalty", "typical_p"})
LEVELS = frozenset({"low", "medium", "high"})


class OpenAIBackend:
    settings: ClassVar[dict[str, str]] = {"max_tokens": "--num-predict"}

    def __init__(self, cfg: RunnerConfig) -> None:
        self.cfg = cfg
        self.base_url = cfg.openai_base_url.rstrip("/")
        self.address = mask_url(self.base_url)
        self.label = f"the OpenAI-compatible server at {self.address}"
        self._local = threading.local()

    def _client(self) -> openai.OpenAI:
        """This thread's client (one per thread and reused: building one costs ~50 ms).
        Each call passes its own timeout (the client's public per-request `timeout`)."""
        client: openai.OpenAI | None = getattr(self._local, "client", None)
        if client is None:
            client = openai.OpenAI(
                base_url=self.base_url,
                # why: local servers take any key; the client refuses to start without one.
                api_key=self.cfg.openai_api_key or "none",
                # why: retries are the executor's (503s within the attempt, faults to the
                # breaker); the client's own would spend the deadline behind our back.
                max_retries=0)
            self._local.client = client
        return client

    def request(self, call: backends.ChatCall) -> dict[str, Any]:
        """The create() arguments for a call."""
        args: dict[str, Any] = {"model": call.model, "messages": call.messages}
        extra: dict[str, Any] = {}
        for key, value in call.options.items():
            if key in DIRECT:
                args[DIRECT[key]] = value
            elif key in EXTRA:
                extra[key] = value
        if call.schema is not None:
            args["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "output", "schema": call.schema, "strict": True}}
        if call.think in LEVELS:
            args["reasoning_effort"] = call.think
        if extra:
            args["extra_body"] = extra
        return args

    def chat(self, call: backends.ChatCall, timeout_s: float,
             keep_going: Callable[[], bool]) -> backends.Answer:
        """One streamed call; closing the stream closes the connection, which vLLM and
        llama.cpp's server take as the client gone and stop generating."""
        answer = backends.Answer()
        finish: str | None = None
        started_ns = time.monotonic_ns()
        try:
            stream = self._client().chat.completions.create(
                **self.request(call), stream=True, stream_options={"include_usage": True},
                timeout=call_timeout(timeout_s))
            try:
                for chunk in stream:
                    if chunk.usage is not None:
                        # why: the usage counts are the tokens Ollama calls prompt_eval_count
                        # and eval_count; these servers measure no durations, so the call's
                        # own time (the runner's clock) stands for total_duration.
                        answer.prompt_eval_count = chunk.usage.prompt_tokens
                        answer.eval_count = chunk.usage.completion_tokens
                    for choice in chunk.choices:
                        answer.parts.append(choice.delta.content or "")
                        finish = choice.finish_reason or finish
                    if not keep_going() and finish is None:
                        raise backends.Stopped
            finally:
                stream.close()
        except openai.APITimeoutError as exc:
            raise backends.TimedOut(str(exc)) from exc
        except openai.APIConnectionError as exc:
            if isinstance(exc.__cause__, httpx.ConnectError):
                raise backends.Unreachable(f"cannot connect: {exc.__cause__}") from exc
            raise backends.TransportFailed(f"{type(exc.__cause__ or exc).__name__}: {exc}") from exc
        except openai.APIStatusError as exc:
            raise backends.ServerError(exc.status_code, error_text(exc)) from exc
        except openai.APIError as exc:
            # why: an error event inside an open stream (the server failed mid-answer)
            raise backends.ServerError(500, error_text(exc)) from exc
        except httpx.TimeoutException as exc:
            raise backends.TimedOut(str(exc)) from exc
        except httpx.TransportError as exc:
            raise backends.TransportFailed(f"{type(exc).__name__}: {exc}") from exc
        if finish is None:
            raise backends.TransportFailed(
                "RemoteProtocolError: the stream ended before the answer was done")
        answer.content = "".join(answer.parts)
        answer.cut_off = finish == "length"
        answer.total_duration = time.monotonic_ns() - started_ns
        return answer

    def models(self) -> list[str]:
        return sorted(m.id for m in self._client().models.list(timeout=call_timeout(5.0)))

    def served(self) -> list[str] | None:
        try:
            return self.models()
        except (openai.APIError, httpx.HTTPError):
            return None

    def probe(self) -> str | None:
        """GET /v1/models (cheap, loads nothing)."""
        try:
            self.models()
        except (openai.APIError, httpx.HTTPError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def preload(self, previous: str | None, model: str) -> float | None:
        return None  # why: the server loads what it serves when it starts

    def missing_model(self, model: str) -> str:
        try:
            served = self.models()
        except (openai.APIError, httpx.HTTPError) as exc:
            return f"it did not list its models either ({type(exc).__name__}); check the " \
                   "name it serves (GET /v1/models)"
        names = ", ".join(served[:20]) or "none"
        return (f"it serves {names}; set the actor's model to one of them, or start the "
                "server with this one")


def error_text(exc: openai.APIError) -> str:
    """The error's own message (OpenAI's {"error": {"message": …}}), not the client's
    "Error code: 404 - {…}" wrapping."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return exc.message
