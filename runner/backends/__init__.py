"""Model servers the `llm` executor talks to: one module per wire protocol, behind one small
protocol, chosen by `turing-runner --backend` from BACKENDS.

A backend only speaks its server's protocol: it sends one chat call, streams the answer back
(so a lost lease stops it between two chunks), and turns its client's exceptions into the
few below. Everything else — rendering the prompt, validating the answer against the
output_schema, deciding what is a fault, a definition error or the work's failure — is the
llm executor's, once for every backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from turing_pg.config import RunnerConfig


@dataclass(frozen=True)
class ChatCall:
    """One chat call, whatever the server."""

    model: str
    messages: list[dict[str, str]]
    schema: dict[str, Any] | None
    options: dict[str, Any]  # Ollama's option names (num_predict, temperature, seed, stop, …)
    think: str  # false, true, low, medium, high
    keep_alive: int | str


# what a model server measures of a call, under Ollama's names (durations in nanoseconds)
COUNTERS = ("load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
            "eval_duration", "total_duration")


@dataclass
class Answer:
    """A whole answer: its text, whether it was cut off at the token limit, and what the server
    measured (COUNTERS, None where it does not report one)."""

    content: str = ""
    cut_off: bool = False
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    total_duration: int | None = None
    parts: list[str] = field(default_factory=list)

    @property
    def load_s(self) -> float | None:
        """Seconds the server spent loading the model for this call, when it says."""
        ns = self.load_duration
        return ns / 1e9 if ns is not None and ns >= 0 else None

    def counters(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in COUNTERS}


class Unreachable(Exception):
    """The server refused or never answered the connection: nothing was sent."""


class TimedOut(Exception):
    """No answer (or no next chunk) within the time left."""


class TransportFailed(Exception):
    """The connection broke mid-call, or the reply could not be read: worth a retry."""


class ServerError(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.text = text


class Stopped(Exception):
    """The caller asked the stream to stop (a lost lease or the deadline)."""


class Backend(Protocol):
    # how messages name it: "Ollama at http://gpu1:11434"
    label: str
    # the server's URL, credentials masked (what the breaker and its alert name)
    address: str
    # the runner options a 400 may name, when every call fails on one of them: {word: flag}
    settings: dict[str, str]

    def chat(self, call: ChatCall, timeout_s: float, keep_going: Callable[[], bool]) -> Answer:
        """One streamed call; `keep_going()` is asked after every chunk (False: raise
        Stopped, closing the connection so the server stops generating)."""
        ...

    def probe(self) -> str | None:
        """A cheap request that loads nothing: None when the server answers."""
        ...

    def preload(self, previous: str | None, model: str) -> float | None:
        """Unload `previous`, load `model`; seconds the load took, None when not loaded (or
        the server has no such control)."""
        ...

    def missing_model(self, model: str) -> str:
        """What to do when the server does not have `model` (its hint, one sentence)."""
        ...

    def served(self) -> list[str] | None:
        """The names of the models the server has (sorted), or None when it cannot say (it
        is unreachable, or has no such list)."""
        ...


# --backend NAME: the module and class of each (imported only when chosen)
BACKENDS = {"ollama": ("turing_pg.backends.ollama", "OllamaBackend"),
            "openai": ("turing_pg.backends.openai_compat", "OpenAIBackend")}


def backend_for(cfg: RunnerConfig) -> Backend:
    """The backend the runner's --backend names."""
    import importlib

    module, name = BACKENDS[cfg.backend]
    backend: Backend = getattr(importlib.import_module(module), name)(cfg)
    return backend
