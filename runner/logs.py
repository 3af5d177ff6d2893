"""Structured log lines for the runner: one event per line, JSON or readable."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from turing_pg.credentials import redact

log = logging.getLogger("turing.runner")

# the levels callers pass to event(), by name
INFO, WARNING, ERROR = logging.INFO, logging.WARNING, logging.ERROR


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        # why: the net under the masking at the source: an error text that quotes a DSN or a
        # script's stderr that prints one never puts a password in a log line.
        return redact(json.dumps(data, default=str))


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        return redact(f"{stamp} {record.levelname:<7} {record.getMessage():<10} {extra}".rstrip())


def setup(fmt: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event (claim, start, finish, fail, discard, reap, switch, …) with its fields."""
    log.log(level, name, extra={"fields": fields})
