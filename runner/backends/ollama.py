"""Ollama's own API (`/api/chat`) through the official `ollama` client: the output_schema goes
as `format`, `think` and `keep_alive` as Ollama takes them, load options fixed per runner."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
import ollama

from turing_pg import backends, logs
from turing_pg.config import RunnerConfig
from turing_pg.credentials import mask_url

CONNECT_TIMEOUT_S = 5.0
# a load can take minutes on a slow disk; a load cut short by a client timeout is aborted by
# Ollama and restarted by the next request, forever (reference §1.12).
LOAD_TIMEOUT = httpx.Timeout(900, connect=CONNECT_TIMEOUT_S)
THINK = {"false": False, "true": True}


def call_timeout(timeout_s: float) -> httpx.Timeout:
    """The httpx timeout for a call with `timeout_s` left (at least 50 ms)."""
    left = max(timeout_s, 0.05)
    return httpx.Timeout(left, connect=min(CONNECT_TIMEOUT_S, left))


class OllamaBackend:
    settings: ClassVar[dict[str, str]] = {"keep_alive": "--keep-alive", "num_ctx": "--num-ctx",
                "num_predict": "--num-predict"}

    def __init__(self, cfg: RunnerConfig) -> None:
        self.cfg = cfg
        self.host = cfg.ollama_host
        self.address = mask_url(cfg.ollama_host)
        self.label = f"Ollama at {self.address}"
        self._local = threading.local()

    def _client(self, timeout_s: float) -> ollama.Client:
        """This thread's client; its next request gets `timeout_s`.

        One client per thread, reused: building one (an httpx client with its TLS context)
        costs ~50 ms of CPU, which measured as 400 ms of overhead per call with 4 threads
        (bench/runner_bench.py). The ollama client takes a timeout only when it is built, so
        each request gets its own through httpx's public API: the client passes extra keyword
        arguments to httpx.Client, here a request event hook, which sets the request's
        `timeout` extension (what the transport reads) from what is left of the ticket's
        deadline. With stream=True it bounds the connect and each wait for the next chunk."""
        self._local.timeout = call_timeout(timeout_s)
        client: ollama.Client | None = getattr(self._local, "client", None)
        if client is None:
            local = self._local

            def timeout_hook(request: httpx.Request) -> None:
                request.extensions["timeout"] = local.timeout.as_dict()

            client = ollama.Client(host=self.host, timeout=call_timeout(timeout_s),
                                   event_hooks={"request": [timeout_hook]})
            self._local.client = client
        return client

    def chat(self, call: backends.ChatCall, timeout_s: float,
             keep_going: Callable[[], bool]) -> backends.Answer:
        """One streamed chat call. Streamed so that a lost lease stops it between two chunks:
        closing the stream closes the connection, and Ollama stops generating for a client that
        went away, which frees the GPU slot at once instead of at the deadline."""
        try:
            stream = self._client(timeout_s).chat(
                model=call.model, messages=call.messages, format=call.schema,
                options=call.options, keep_alive=call.keep_alive,
                think=THINK.get(call.think, call.think), stream=True)
            answer = backends.Answer()
            last: Any = None
            try:
                for chunk in stream:
                    answer.parts.append(chunk.message.content or "")
                    last = chunk
                    if not keep_going() and not chunk.done:
                        raise backends.Stopped
            finally:
                stream.close()
        except httpx.ConnectError as exc:
            raise backends.Unreachable(f"cannot connect: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise backends.TimedOut(str(exc)) from exc
        except ollama.ResponseError as exc:
            raise backends.ServerError(exc.status_code, str(exc.error)) from exc
        except (ConnectionError, httpx.TransportError) as exc:
            raise backends.TransportFailed(f"{type(exc).__name__}: {exc}") from exc
        if last is None or not last.done:
            raise backends.TransportFailed(
                "RemoteProtocolError: the stream ended before the answer was done")
        answer.content = "".join(answer.parts)
        answer.cut_off = last.done_reason == "length"
        for name in backends.COUNTERS:
            value = getattr(last, name, None)
            setattr(answer, name, value if isinstance(value, int) else None)
        return answer

    def probe(self) -> str | None:
        """GET /api/ps (cheap, loads nothing)."""
        try:
            self._client(5.0).ps()
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def served(self) -> list[str] | None:
        """GET /api/tags: the models pulled on the server."""
        try:
            listed = self._client(5.0).list()
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError):
            return None
        return sorted(m.model for m in listed.models if m.model)

    def preload(self, previous: str | None, model: str) -> float | None:
        client = ollama.Client(host=self.host, timeout=LOAD_TIMEOUT)
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

    def missing_model(self, model: str) -> str:
        return f"run `ollama pull {model}` there"


def load_seconds(reply: Any, fallback: float | None) -> float | None:
    """Ollama's load_duration of a reply (nanoseconds) in seconds; `fallback` when the reply
    carries none (a server that does not report it)."""
    ns = getattr(reply, "load_duration", None)
    return ns / 1e9 if isinstance(ns, (int, float)) and ns >= 0 else fallback
