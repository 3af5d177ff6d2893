"""A terminal that reads well: the real `turing` in a subprocess, and in a real terminal (tmux,
on a server of the test's own, killed by the test)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from turing_pg.cli.output import TEXT_WIDTH, duration

TURING = [sys.executable, "-m", "turing_pg.cli"]
LONG_ERROR = "Traceback (most recent call last):\n  " + "the model said no; " * 16  # 300+ chars
ESC = "\x1b["


def run(*args: str, dsn: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
    proc = subprocess.run([*TURING, *args], capture_output=True, text=True, timeout=120,
                          env={**full, "TURING_DSN": dsn, **(env or {})})
    assert proc.returncode == 0, f"turing {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    return proc


@pytest.fixture
def busy(turing: Any, conn: Any, jobs: int) -> Any:
    """More than a screen of actors, a runner that works, one seen a day ago, one stopped, a
    failed attempt with a 300-character error, and an alert (llm work with no runner)."""
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", inbox=["new"], outbox=["scored"],
        work_query="select id as subject_id, title from public.jobs where status = 'new'",
        on_complete="public.jobs_scored", max_attempts=1))
    turing.register_actor(dict(
        name="classifier", kind="llm", model="llama3.1:8b", prompt_template="Classify {title}",
        output_schema={"type": "object"},
        work_query="select id as subject_id, title from public.jobs where status = 'new'"))
    for i in range(30):
        turing.register_actor(dict(name=f"step_{i:02d}_with_a_longer_name", kind="script",
                                   script="cat"))
    turing.register_runner("cpu-live", ["cpu"])
    turing.register_runner("cpu-quiet", ["cpu", "llama3.1:8b"])
    conn.execute("update turing.runners set last_seen_at = now() - interval '1 day 2 hours' "
                 "where worker = 'cpu-quiet'")
    turing.register_runner("cpu-gone", ["cpu"])
    turing.release_worker("cpu-gone")
    turing.discover("scorer")
    turing.discover("classifier")
    [t] = turing.claim_batch("cpu", "cpu-live", 1, discover=False)
    turing.fail_ticket(t.ticket_id, t.lease_token, LONG_ERROR)
    return turing


# -- tables --------------------------------------------------------------------------------------


def test_cells_read_as_people_read_them(busy: Any, dsn: str) -> None:
    out = run("status", "--all", dsn=dsn).stdout
    runners = {line.split()[0]: line for line in out.splitlines()
               if line.startswith("cpu-")}
    assert "['cpu'" not in out and "True" not in out and "day," not in out
    assert "cpu, llama3.1:8b" in runners["cpu-quiet"]          # a list, joined
    assert " no " in runners["cpu-quiet"] and " yes " in runners["cpu-live"]  # alive
    assert runners["cpu-quiet"].rstrip().endswith("1d 2h")  # silent for, humanised

    tickets = run("tickets", "--status", "dead", dsn=dsn).stdout.splitlines()
    header, row = tickets[0], tickets[2]
    assert header.split()[:2] == ["ticket", "actor"]       # short headers
    error = row[header.index("error"):]
    assert error.startswith("Traceback (most recent call last): the model said no;")
    assert error.endswith("…") and len(error) == TEXT_WIDTH  # one line, cut, not 300 chars
    finished = row[header.index("finished"):header.index("error")].strip()
    assert finished == "now" or finished.endswith(" ago")  # when, humanised


def test_json_has_numbers_seconds_and_iso_times(busy: Any, dsn: str) -> None:
    data = json.loads(run("status", "--json", "--all", dsn=dsn).stdout)
    quiet = next(r for r in data["runners"] if r["worker"] == "cpu-quiet")
    assert isinstance(quiet["silent_for"], float) and 93_600 <= quiet["silent_for"] < 93_700
    seen = dt.datetime.fromisoformat(quiet["last_seen_at"])
    assert "T" in quiet["last_seen_at"] and seen.tzinfo is not None
    assert quiet["models"] == ["cpu", "llama3.1:8b"] and quiet["alive"] is False
    scorer = next(a for a in data["actors"] if a["actor"] == "scorer")
    assert isinstance(scorer["rate_per_min"], float)  # numeric(…, 1): a float, even at 0.0
    assert isinstance(scorer["pending"], int) and scorer["pending"] == 199
    idle = next(a for a in data["actors"] if a["actor"].startswith("step_"))
    assert idle["eta"] == 0.0 and isinstance(idle["eta"], float)  # an interval: seconds
    assert all(not isinstance(v, str) for a in data["actors"] for k, v in a.items()
               if k in ("rate_per_min", "p95_ms", "eta"))

    [dead] = json.loads(run("tickets", "--status", "dead", "--json", dsn=dsn).stdout)
    assert dead["error"] == LONG_ERROR  # JSON keeps all of it
    assert dt.datetime.fromisoformat(dead["finished_at"]).tzinfo is not None


def test_stopped_runners_leave_the_tables(busy: Any, dsn: str) -> None:
    text = run("status", dsn=dsn).stdout
    assert "cpu-gone" not in text and "cpu-live" in text
    assert "1 stopped not shown: --all shows them" in text
    assert "cpu-gone" in run("status", "--all", dsn=dsn).stdout
    data = json.loads(run("status", "--json", dsn=dsn).stdout)
    assert data["runners_hidden"] == 1
    assert {r["worker"] for r in data["runners"]} == {"cpu-live", "cpu-quiet"}
    assert json.loads(run("status", "--json", "--all", dsn=dsn).stdout)["runners_hidden"] == 0


def test_a_pipe_gets_no_colour_and_the_whole_table(busy: Any, dsn: str) -> None:
    out = run("status", dsn=dsn).stdout
    assert ESC not in out
    assert sum(line.startswith("step_") for line in out.splitlines()) == 30  # nothing cut


def test_top_without_a_terminal_prints_a_frame_per_interval(busy: Any, dsn: str) -> None:
    text = run("top", "--count", "2", "--interval", "0", dsn=dsn).stdout
    assert text.count("turing top") == 2 and "runners:" in text and "alerts:" in text
    frames = run("top", "--json", "--count", "2", "--interval", "0", dsn=dsn).stdout
    docs = [json.loads(line) for line in frames.splitlines()]
    assert len(docs) == 2 and docs[0]["runners_hidden"] == 1


@pytest.mark.parametrize(("delta", "text"), [
    (dt.timedelta(seconds=0.4), "0.4s"), (dt.timedelta(seconds=12), "12s"),
    (dt.timedelta(minutes=4, seconds=10), "4m 10s"), (dt.timedelta(hours=3, minutes=5), "3h 5m"),
    (dt.timedelta(days=1), "1d"), (dt.timedelta(days=1, hours=2, minutes=3), "1d 2h"),
])
def test_durations_read_like_an_operator_says_them(delta: dt.timedelta, text: str) -> None:
    assert duration(delta) == text


# -- a real terminal -----------------------------------------------------------------------------


class Terminal:
    """One tmux server on a socket of its own, running one command in a pane of a fixed size."""

    def __init__(self, command: list[str], env: dict[str, str], width: int, height: int) -> None:
        self.socket = f"turing-test-{uuid.uuid4().hex[:12]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self.tmux("new-session", "-d", "-x", str(width), "-y", str(height),
                  f"env {exports} {shlex.join(command)}; echo exit=$?; stty -a; sleep 600")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                              capture_output=True, text=True, check=True, timeout=30).stdout

    def screen(self, escapes: bool = False, scrolled: bool = False) -> list[str]:
        """The visible lines (and those scrolled off the top), wrapped lines joined, so a line
        too long for the terminal shows as longer than its width."""
        return self.tmux("capture-pane", "-p", "-J", *(["-e"] if escapes else []),
                         *(["-S", "-"] if scrolled else [])).split("\n")

    def wait_for(self, text: str, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.screen()
            if any(text in line for line in lines):
                return lines
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared:\n" + "\n".join(self.screen()))

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30)


@pytest.fixture
def terminal(dsn: str) -> Iterator[Any]:
    if shutil.which("tmux") is None:
        if os.environ.get("TURING_REQUIRE_TMUX") == "1":
            pytest.fail("tmux is not installed, and TURING_REQUIRE_TMUX=1 (CI) needs it")
        pytest.skip("tmux is not installed (apt-get install tmux)")
    opened: list[Terminal] = []

    def open_(*args: str, width: int = 80, height: int = 24,
              env: dict[str, str] | None = None) -> Terminal:
        base = {"TURING_DSN": dsn, "TERM": "xterm-256color"}
        opened.append(Terminal([*TURING, *args], {**base, **(env or {})}, width, height))
        return opened[-1]

    yield open_
    for t in opened:
        t.kill()


def test_top_fits_80x24_keeps_its_header_and_q_quits(busy: Any, terminal: Any) -> None:
    term = terminal("top", "--interval", "0.3")
    term.wait_for("turing top")
    time.sleep(1.0)  # a few redraws: the header must stay on the first line
    lines = term.screen()
    visible = [line.rstrip() for line in lines if line.strip()]
    assert len(lines) <= 25 and len(visible) <= 24
    assert all(len(line) <= 80 for line in visible), "\n".join(visible)
    assert visible[0].startswith("turing top") and "q quits" in visible[0]
    assert visible[1].split()[:3] == ["actor", "model", "on"]
    assert any(line.startswith("… ") and line.endswith(" more") for line in visible)
    assert "runners:  (1 stopped not shown: --all shows them)" in visible
    assert "alerts:" in visible and any(line.startswith("[") for line in visible)
    assert not any("cpu-gone" in line for line in visible)

    term.tmux("send-keys", "q")
    after = term.wait_for("exit=", timeout=10)
    assert "exit=0" in after
    settings = " ".join(after)
    assert " icanon " in settings and " echo " in settings  # the terminal is as it was
    assert not any(line.startswith("turing top") for line in after)  # left the alternate screen


def test_colour_on_a_terminal_only_and_never_under_no_color(busy: Any, terminal: Any) -> None:
    for env, coloured in (({}, True), ({"NO_COLOR": "1"}, False)):
        status = terminal("status", env=env)
        status.wait_for("exit=")
        error = terminal("submit", "ghost", "1", env=env)
        error.wait_for("exit=4")
        top = terminal("top", "--interval", "0.3", env=env)
        top.wait_for("alerts:")
        for term in (status, error, top):
            assert (ESC in "\n".join(term.screen(escapes=True))) is coloured, (env, term.screen())
        top.tmux("send-keys", "q")


def test_the_demo_shows_a_bar_per_stage_with_totals(dsn: str, terminal: Any) -> None:
    term = terminal("demo", "--limit", "5")
    term.wait_for("exit=", timeout=120)
    lines = term.screen(scrolled=True)
    bars = {line.split()[0]: line for line in lines if "━" in line}
    assert {"clean_skills", "create_entities", "classify_qwen", "commit_placement"} <= set(bars)
    assert "5/5" in bars["clean_skills"]
    for bar in bars.values():  # drained: every stage did all that reached it
        done, total = next(w for w in bar.split() if "/" in w).split("/")
        assert done == total and int(total) > 0, bar
    assert "exit=0" in lines

    piped = run("demo", "--limit", "5", "--json", dsn=dsn)  # no terminal: plain lines
    assert ESC not in piped.stderr
    assert "clean_skills 5/5  merge_duplicates" in piped.stderr.splitlines()[-1]
