"""How `turing` prints: the one table renderer (rich), the cell formats and the JSON encoding.

Text is for people: a table fits the terminal, a cell shows a value the way an operator reads
it (`llama3.1:8b`, `yes`, `1d 2h`, `3m ago`), long text ends in an ellipsis, and colour appears
only on a terminal and never under NO_COLOR (https://no-color.org). JSON is for programs:
durations are seconds and timestamps ISO 8601, numbers are JSON numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from turing_pg.credentials import redact

# Short headers, so that `turing status` fits 80 columns; a column not named here is shown
# under its own name.
HEADERS: dict[str, str] = {
    "ticket_id": "ticket",
    "subject_id": "subject",
    "chain_id": "chain",
    "parent_ticket_id": "parent",
    "retry_ticket_id": "retry",
    "enabled": "on",
    "pending": "pend",
    "running": "run",
    "done_last_hour": "done/h",
    "failed_last_hour": "fail/h",
    "rate_per_min": "/min",
    "p95_ms": "p95 ms",
    "tokens_per_s": "tok/s",
    "current_model": "model now",
    "current_batch_id": "batch",
    "in_flight": "busy",
    "silent_for": "silent",
    "finished_at": "finished",
    "started_at": "started",
    "created_at": "created",
    "reaped_at": "reaped",
    "last_seen_at": "seen",
    "failure_kind": "failure",
    "finished_today": "done today",
    "failure_rate_today": "fail today",
    "finished_7d": "done 7d",
    "failure_rate_7d": "fail 7d",
    "configured_timeout": "timeout",
    "recommended_timeout": "recommended",
    "timeout_floor": "floor",
    "timeout_ceiling": "ceiling",
    "completed_measured": "measured",
    "p99_ms": "p99 ms",
    "model_load_ms": "load ms",
    "current_warm_timeout": "warm",
    "current_cold_timeout": "cold",
}

# Free text: these columns give up width first when a table is too wide, and never take more
# than TEXT_WIDTH characters (an error may be a 300-character stderr; --json has all of it).
TEXT_COLUMNS = frozenset({"error", "message", "reason", "detail", "hint", "input", "output",
                          "verdict"})
TEXT_WIDTH = 60

# why: with no terminal there is nothing to fit; a pipe or a file gets the table at its natural
# width (free text still capped at TEXT_WIDTH) rather than rich's default of 80 columns.
PIPE_WIDTH = 1000

STATUS_STYLES = {
    "completed": "green", "running": "cyan", "pending": "", "failed": "yellow",
    "timed_out": "yellow", "dead": "bold red", "cancelled": "dim",
    "stopping": "yellow", "stopped": "dim", "lost": "bold red",
    "critical": "bold red", "error": "bold red", "warning": "yellow", "info": "cyan",
}

_SPACES = re.compile(r"\s+")


def colour_wanted(stream: Any = None) -> bool:
    """Colour on a terminal only, and never when NO_COLOR is set to anything but empty."""
    stream = stream if stream is not None else sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def console(stream: Any = None, width: int | None = None) -> Console:
    """A rich console for `stream` (stdout): the terminal's width on a terminal, else COLUMNS
    or PIPE_WIDTH; colour as colour_wanted says."""
    stream = stream if stream is not None else sys.stdout
    tty = bool(getattr(stream, "isatty", lambda: False)())
    if width is None and not tty:
        width = int(os.environ.get("COLUMNS") or 0) or PIPE_WIDTH
    return Console(file=stream, width=width, force_terminal=tty, no_color=not colour_wanted(stream),
                   color_system="auto" if colour_wanted(stream) else None, highlight=False,
                   soft_wrap=False, emoji=False, markup=False)


# -- cells ---------------------------------------------------------------------------------------


def duration(value: dt.timedelta) -> str:
    """A duration as an operator says it: `1d 2h`, `3h 5m`, `4m 10s`, `12s`, `0.4s`."""
    seconds = value.total_seconds()
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    if seconds < 10:
        return f"{sign}{seconds:.1f}s".replace(".0s", "s")
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    first = next(i for i, (n, _) in enumerate(parts) if n)
    shown = [f"{n}{unit}" for n, unit in parts[first:first + 2] if n]
    return sign + " ".join(shown)


def moment(value: dt.datetime, now: dt.datetime | None = None) -> str:
    """A timestamp as how long ago it was (`3m ago`), or how far ahead (`in 20s`)."""
    if value.tzinfo is None:
        value = value.astimezone()
    now = now or dt.datetime.now(dt.timezone.utc)
    age = now - value
    if abs(age.total_seconds()) < 1:
        return "now"
    return f"{duration(age)} ago" if age.total_seconds() > 0 else f"in {duration(-age)}"


def number(value: float | Decimal) -> str:
    """A measured figure to a few significant digits, never in exponent notation."""
    v = float(value)
    if not math.isfinite(v):
        return ""
    if abs(v) >= 1000 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.3g}" if abs(v) >= 0.001 else f"{v:.1e}"


def cell(value: Any) -> str:
    """One value as a table shows it, on one line, without any password this process holds."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        return number(value)
    if isinstance(value, dt.timedelta):
        return duration(value)
    if isinstance(value, dt.datetime):
        return moment(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return redact(json.dumps(value, default=_json_default, separators=(",", ":")))
    return redact(_SPACES.sub(" ", str(value)).strip())


def _numeric(values: Iterable[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float | Decimal | dt.timedelta) and not isinstance(v, bool)
        for v in present)


# -- tables --------------------------------------------------------------------------------------


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
          *, width: int | None = None) -> Table:
    """Rows as a rich table: short headers, one line per row, numbers to the right, free text
    shrunk first (to fit `width`) and cut with an ellipsis."""
    columns = list(columns or (rows[0].keys() if rows else []))
    cells = [[_styled(c, r.get(c)) for c in columns] for r in rows]
    headers = [HEADERS.get(c, c) for c in columns]
    limits = _text_limits(columns, headers, cells, width)
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0,
              header_style="bold")
    for i, c in enumerate(columns):
        numeric = _numeric(r.get(c) for r in rows)
        t.add_column(headers[i], justify="right" if numeric else "left", no_wrap=numeric,
                     overflow="ellipsis", max_width=limits.get(i))
    for row in cells:
        t.add_row(*row)
    return t


def _text_limits(columns: list[str], headers: list[str], cells: list[list[Text]],
                 width: int | None) -> dict[int, int]:
    """The widest each free-text column may be: TEXT_WIDTH, less what the table is wider than
    `width` (the widest text column first, down to its header's width or 8); the other columns
    keep theirs as long as they can, and rich shares out what is still too wide."""
    natural = [max([len(h), *(row[i].cell_len for row in cells)]) for i, h in enumerate(headers)]
    text = [i for i, c in enumerate(columns) if c in TEXT_COLUMNS]
    limits = {i: min(natural[i], TEXT_WIDTH) for i in text}
    if width is None:
        return limits
    excess = sum(limits.get(i, n) for i, n in enumerate(natural)) + len(columns) - 1 - width
    for i in sorted(text, key=lambda i: -limits[i]):
        if excess <= 0:
            break
        cut = min(excess, limits[i] - max(len(headers[i]), 8))
        if cut > 0:
            limits[i] -= cut
            excess -= cut
    return limits


def _styled(column: str, value: Any) -> Text:
    text = cell(value)
    style = ""
    if column in ("status", "severity", "outcome"):
        style = STATUS_STYLES.get(text, "")
    elif column == "alive" and value is False:
        style = "bold red"
    elif column == "dead" and isinstance(value, int) and value > 0:
        style = "red"
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def render(*renderables: RenderableType, stream: Any = None, width: int | None = None) -> str:
    """What the renderables print as on `stream` (stdout): ANSI colour only where wanted."""
    con = console(stream, width)
    with con.capture() as captured:
        for r in renderables:
            con.print(r)
    # why: a cell is padded to its column's width; the padding after the last one is noise
    return "\n".join(line.rstrip(" ") for line in captured.get().rstrip("\n").split("\n"))


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows as a table that fits the terminal (all keys of the first row unless columns are
    given); `(none)` for no rows."""
    if not rows:
        return "(none)"
    return render(table(rows, columns, width=console().width))


# -- JSON ----------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        # why: the SQL's scale decides, so a column keeps one type: numeric(…, 1) stays a float
        # (3.0), a count an integer
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(data: Any, indent: int | None = 2) -> str:
    """Data as JSON for programs: durations in seconds, timestamps ISO 8601, numbers as
    numbers."""
    return json.dumps(data, indent=indent, default=_json_default)
