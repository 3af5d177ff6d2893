"""What `turing` draws live: the status screen (`status` prints it once, `top` redraws it in the
terminal's alternate screen until `q`), and the demo's progress bar per stage.

A screen fits the terminal: at 80×24 `top` keeps its title, every section's header and the
alerts in view, and says how many rows it could not show instead of scrolling.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from turing_pg.cli.output import STATUS_STYLES, cell, console, table

ACTOR_COLUMNS = ["actor", "model", "enabled", "pending", "running", "done_last_hour",
                 "rate_per_min", "failed_last_hour", "dead", "p95_ms", "tokens_per_s", "eta"]
RUNNER_COLUMNS = ["worker", "models", "status", "alive", "current_model", "current_batch_id",
                  "in_flight", "silent_for"]
QUIT_KEYS = frozenset("qQ")


# -- the status screen ---------------------------------------------------------------------------


def _share(wanted: Sequence[int], budget: int) -> list[int]:
    """Rows for each section out of `budget`, one at a time round the sections, so a long
    section never pushes a short one off the screen."""
    given = [0] * len(wanted)
    while budget > 0 and any(g < w for g, w in zip(given, wanted, strict=True)):
        for i, w in enumerate(wanted):
            if budget and given[i] < w:
                given[i] += 1
                budget -= 1
    return given


def _section(rows: list[dict[str, Any]], columns: list[str], room: int | None,
             width: int | None) -> RenderableType:
    """A table of the rows that fit in `room` rows (all when None), the last one saying how
    many more there are."""
    if not rows:
        return Text("(none)", style="dim")
    if room is None or room >= len(rows):
        return table(rows, columns, width=width)
    shown = max(room - 1, 0)
    return Group(table(rows[:shown], columns, width=width),
                 Text(f"… {len(rows) - shown} more", style="dim", no_wrap=True))


def _alert_line(a: dict[str, Any]) -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"[{a['severity']}]", style=STATUS_STYLES.get(str(a["severity"]), ""))
    line.append(f" {a['alert']}: {cell(a['message'])}")
    return line


def status_view(data: dict[str, Any], *, width: int | None = None, height: int | None = None,
                title: Text | None = None) -> RenderableType:
    """Actors, runners and alerts, as `turing status` prints them; with a height, cut to fit
    it (every section keeps its header; a cut one ends in `… N more`)."""
    actors, runners, alerts = data["actors"], data["runners"], data["alerts"]
    hidden = data.get("runners_hidden", 0)
    rooms: list[int | None] = [None, None, None]
    if height is not None:
        # fixed lines: title, each table's header and rule, the blank and heading lines between
        fixed = (1 if title else 0) + (2 if actors else 1) + 2 + (2 if runners else 1) + 2
        wanted = [len(actors), len(runners), len(alerts)]
        rooms = list(_share(wanted, max(height - fixed - (0 if alerts else 1), 0)))
    runners_heading = "runners:" + (f"  ({hidden} stopped not shown: --all shows them)"
                                    if hidden else "")
    alert_room = len(alerts) if rooms[2] is None else max(rooms[2], 1)
    alert_lines: list[RenderableType] = [_alert_line(a) for a in alerts[:alert_room]]
    if len(alerts) > alert_room:
        alert_lines[-1:] = [Text(f"… {len(alerts) - alert_room + 1} more alerts "
                                 "(turing status shows all)", style="dim", no_wrap=True)]
    parts: list[RenderableType] = [
        *([title] if title else []),
        _section(actors, ACTOR_COLUMNS, rooms[0], width),
        Text(""),
        Text(runners_heading, style="bold"),
        _section(runners, RUNNER_COLUMNS, rooms[1], width),
        Text(""),
        Text("alerts:", style="bold"),
        *(alert_lines or [Text("(none)", style="dim")]),
    ]
    return Group(*parts)


# -- top: the live screen ------------------------------------------------------------------------


class _Keys:
    """The keyboard in cbreak mode (a key arrives without Enter and is not echoed; Ctrl-C
    still interrupts), put back as it was on exit."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.saved: Any = None

    def __enter__(self) -> _Keys:
        if sys.stdin.isatty():
            import termios
            import tty

            self.fd = sys.stdin.fileno()
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def quit_within(self, seconds: float) -> bool:
        """Wait up to `seconds` for a key; True when it was a quit key."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.fd is None:
                time.sleep(left)
                return False
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready and os.read(self.fd, 1).decode(errors="replace") in QUIT_KEYS:
                return True
        return False


def live(frame: Callable[[int, int], RenderableType], interval: float, count: int) -> None:
    """Redraw `frame(width, height)` in the alternate screen every `interval` seconds until
    `q` (or Ctrl-C, or `count` frames); the terminal is left as it was found."""
    con = console()
    with _Keys() as keys, Live(console=con, screen=True, auto_refresh=False,
                               redirect_stdout=False, redirect_stderr=False) as screen:
        shown = 0
        while True:
            width, height = con.size
            screen.update(frame(width, height), refresh=True)
            shown += 1
            if (count and shown >= count) or keys.quit_within(interval):
                return


# -- the demo's progress -------------------------------------------------------------------------


class StageLike(Protocol):
    actor: str
    done: int
    total: int
    dead: int


class StageDisplay:
    """The demo's progress: a bar per stage with done / total on a terminal, else a plain line
    each time the figures change. Messages print above the bars."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.last = ""
        self.bars: Progress | None = None
        self.tasks: dict[str, Any] = {}
        if stream.isatty():
            self.bars = Progress(
                TextColumn("{task.description:<18}"), BarColumn(bar_width=None),
                MofNCompleteColumn(), TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                console=console(stream), transient=False, expand=False)

    def message(self, text: str) -> None:
        if self.bars is not None:
            self.bars.console.print(Text(text))
        else:
            print(text, file=self.stream, flush=True)

    def stages(self, stages: Sequence[StageLike]) -> None:
        if self.bars is None:
            line = "  ".join(f"{s.actor} {s.done}/{s.total}" + (f" ({s.dead} dead)" if s.dead
                                                                  else "") for s in stages)
            if line != self.last:
                print(line, file=self.stream, flush=True)
                self.last = line
            return
        for s in stages:
            note = f"{s.dead} dead" if s.dead else ""
            total = s.total or None  # why: nothing has reached the stage yet: "0/?", no bar
            if s.actor not in self.tasks:
                self.tasks[s.actor] = self.bars.add_task(s.actor, total=total, note=note)
            self.bars.update(self.tasks[s.actor], completed=s.done, total=total, note=note)


@contextlib.contextmanager
def stage_display(stream: Any) -> Iterator[StageDisplay]:
    display = StageDisplay(stream)
    if display.bars is None:
        yield display
        return
    with display.bars:
        yield display
