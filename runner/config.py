"""The runner's configuration: every option also comes from a TURING_… environment variable."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

# Ollama options that decide how a model is loaded: a request that changes one of them makes
# Ollama reload the model (reference §2.5), so the runner fixes them per model.
LOAD_OPTIONS = frozenset({"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread"})


@dataclass
class RunnerConfig:
    models: list[str]
    dsn: str
    ollama_host: str = "http://127.0.0.1:11434"
    concurrency: int = 4
    batch: int = 0  # 0 = concurrency
    worker: str = ""
    poll_interval: float = 2.0
    reap_interval: float = 10.0
    grace: float = 30.0
    keep_alive: str = "30m"
    num_ctx: int = 4096
    num_predict: int = 1024
    log_format: str = "text"
    exit_when_idle: float = 0.0  # seconds with nothing to do before exiting; 0 = never
    discover_timeout: float = 300.0  # the time one actor's work_query may take in discovery
    load_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.worker:
            self.worker = f"{socket.gethostname()}:{os.getpid()}:{'+'.join(self.models)}"
        if self.batch <= 0:
            self.batch = self.concurrency
        self.load_options = {"num_ctx": self.num_ctx, **self.load_options}

    def keep_alive_s(self) -> float:
        """How long Ollama keeps a model loaded after its last call (keep_alive: "30m", "1h",
        "90s" or plain seconds; negative = for ever). What the runner assumes when it decides
        whether a model it served is still warm."""
        return parse_keep_alive(self.keep_alive)

    def masked(self) -> dict[str, Any]:
        """The effective configuration for the start log line, with secrets masked."""
        out = asdict(self)
        out["dsn"] = mask_dsn(self.dsn)
        return out


def parse_keep_alive(value: str) -> float:
    """Seconds of an Ollama keep_alive ("30m", "1h30m", "90s", "300", "-1" = for ever); 0.0
    for what cannot be read, so a model is then never assumed warm."""
    import re

    text = str(value).strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = re.fullmatch(r"(-)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
                             r"(?:(\d+(?:\.\d+)?)s)?", text)
        if not parts or not any(parts.groups()[1:]):
            return 0.0
        sign, h, m, sec = parts.groups()
        seconds = float(h or 0) * 3600 + float(m or 0) * 60 + float(sec or 0)
        if sign:
            seconds = -seconds
    return float("inf") if seconds < 0 else seconds


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ***."""
    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        return "<unparsable dsn>"
    if params.get("password"):
        params["password"] = "***"
    return make_conninfo(**params)


def mask_url(url: str) -> str:
    """A URL with the password of its user info replaced by *** (http://u:***@host)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
