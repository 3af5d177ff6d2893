"""The runner's configuration: every option also comes from a TURING_… environment variable."""

from __future__ import annotations

import math
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from turing_pg.credentials import mask_dsn, mask_url

# Ollama options that decide how a model is loaded: a request that changes one of them makes
# Ollama reload the model (reference §2.5), so the runner fixes them per model.
# the stages an actor version climbs (turing.stages), in order
STAGES = ("develop", "stabilize", "prove", "qa", "production")

LOAD_OPTIONS = frozenset({"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread"})


@dataclass
class RunnerConfig:
    models: list[str]
    dsn: str
    # where dsn came from: "given" (--dsn / TURING_DSN, used as is) or "embedded" (the embedded
    # server's, looked up again on every reconnect, since a new start may move it)
    dsn_from: str = "given"
    # where the wake-up listener LISTENs: "" = dsn; "poll" = nowhere (poll only); a DSN = a
    # direct connection when dsn goes through a transaction pooler (PgBouncer)
    listen_dsn: str = ""
    ollama_host: str = "http://127.0.0.1:11434"
    # the model server's protocol (runner/backends/): "ollama", or "openai" for an
    # OpenAI-compatible server (vLLM, llama.cpp's server, LM Studio) at openai_base_url
    backend: str = "ollama"
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_api_key: str = ""
    concurrency: int = 4
    batch: int = 0  # 0 = concurrency
    worker: str = ""
    poll_interval: float = 2.0
    reap_interval: float = 10.0
    grace: float = 30.0
    keep_alive: int | str = "30m"  # normalised by parse_keep_alive to what Ollama accepts
    num_ctx: int = 4096
    num_predict: int = 1024
    log_format: str = "text"
    exit_when_idle: float = 0.0  # seconds with nothing to do before exiting; 0 = never
    discover_timeout: float = 300.0  # the time one actor's work_query may take in discovery
    load_options: dict[str, Any] = field(default_factory=dict)
    # where /metrics (Prometheus) is served: None = not served; 0 = any free port
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # the lowest stage of an actor's current version this runner runs (turing.stages); below
    # it, the actor's last production version runs, if any
    stage: str = "production"

    def __post_init__(self) -> None:
        if not self.worker:
            self.worker = f"{socket.gethostname()}:{os.getpid()}:{'+'.join(self.models)}"
        if self.batch <= 0:
            self.batch = self.concurrency
        self.load_options = {"num_ctx": self.num_ctx, **self.load_options}
        self.keep_alive = parse_keep_alive(self.keep_alive)

    def keep_alive_s(self) -> float:
        """How long Ollama keeps a model loaded after its last call (keep_alive: "30m", "1h",
        "90s" or plain seconds; negative = for ever). What the runner assumes when it decides
        whether a model it served is still warm."""
        return keep_alive_seconds(self.keep_alive)

    def masked(self) -> dict[str, Any]:
        """The effective configuration for the start log line, with secrets masked."""
        out = asdict(self)
        out["dsn"] = mask_dsn(self.dsn)
        if self.listen_dsn not in ("", "poll"):
            out["listen_dsn"] = mask_dsn(self.listen_dsn)
        out["ollama_host"] = mask_url(self.ollama_host)
        out["openai_base_url"] = mask_url(self.openai_base_url)
        out["openai_api_key"] = "***" if self.openai_api_key else ""
        return out


KEEP_ALIVE_FORMS = ("write a duration such as 30m, 1h30m, 90s or 300ms, a number of seconds "
                    "such as 300, 0 to unload the model after each call, or -1 to keep it loaded")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
# Go's time.ParseDuration, which Ollama applies to a keep_alive string
_GO_DURATION = re.compile(r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
              "h": 3600.0}
# why: Go durations are int64 nanoseconds (~292 years); Ollama refuses a longer one with 400.
_MAX_KEEP_ALIVE_S = 2**63 / 1e9


def parse_keep_alive(value: int | float | str) -> int | str:
    """Any keep_alive form Ollama documents, as Ollama accepts it on the wire.

    Ollama takes a JSON number (seconds) or a Go duration string, and refuses a numeric string
    ("-1", "300") with HTTP 400 on every call: a command line or an environment variable only
    ever gives strings, so a number is sent as a number. Negative means forever (sent as -1),
    0 unloads after each call (sent as 0), whole seconds go as an integer and fractions as
    milliseconds ("1500ms"); a Go duration such as "1h30m" goes unchanged, so the log shows
    what the operator wrote."""
    if isinstance(value, bool):  # why: bool is an int; Ollama refuses it (400)
        raise ValueError(f"keep_alive {value!r} is not a duration; {KEEP_ALIVE_FORMS}")
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and _GO_DURATION.fullmatch(text):
        seconds = sum(float(n) * _GO_UNIT_S[u] for n, u in _GO_PART.findall(text))
        seconds = -seconds if text.startswith("-") else seconds
        if seconds > 0:
            return text
    elif (_NUMBER.fullmatch(text) if isinstance(text, str)
          else isinstance(text, (int, float)) and math.isfinite(text)):
        seconds = float(text)
    else:
        raise ValueError(f"keep_alive {value!r} is not a duration; {KEEP_ALIVE_FORMS}")
    if seconds < 0:
        return -1
    if seconds >= _MAX_KEEP_ALIVE_S:
        raise ValueError(f"keep_alive {value!r} is longer than Ollama can store; write -1 to "
                         "keep the model loaded")
    if seconds == 0:
        return 0
    if seconds.is_integer():
        return int(seconds)
    return f"{seconds * 1000:g}ms"


def keep_alive_seconds(value: int | float | str) -> float:
    """Seconds a keep_alive keeps a model loaded (inf = for ever); 0.0 for what cannot be read,
    so a model is then never assumed warm."""
    try:
        wire = parse_keep_alive(value)
    except ValueError:
        return 0.0
    if isinstance(wire, int):
        return math.inf if wire < 0 else float(wire)
    return sum(float(n) * _GO_UNIT_S[u] for n, u in _GO_PART.findall(wire))
