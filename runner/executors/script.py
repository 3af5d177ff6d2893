"""The `script` executor (kind script): the actor's command as a subprocess, JSON in and out.

The command line is split with shlex; a leading `python`/`python3` means this runner's own
interpreter, so actor scripts installed with Turing run in the same environment. The child gets
its own process group, and a timeout or a lost lease kills the whole group, so a script's own
children never outlive it."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections import deque
from typing import Any

from turing_pg.execution import Attempt, Result, require_container
from turing_pg.executors.context import Context

STDERR_TAIL = 2000


def command_line(script: str) -> list[str]:
    argv = shlex.split(script)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text[-STDERR_TAIL:] if text else "(empty)"


class ScriptExecutor:
    kind = "script"
    reports_itself = False
    loads_models = False
    refusal = None

    def __init__(self, ctx: Context) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def switch_model(self, previous: str | None, model: str) -> float | None:
        return None  # why: a script's resource has nothing to load

    def probe(self) -> str | None:
        return None  # why: no remote backend of its own

    def stop_all(self) -> int:
        """Kill the process groups of every script still running (at the end of the grace)."""
        with self._lock:
            procs = list(self._procs.values())
        for p in procs:
            _kill_group(p)
        return len(procs)

    def run(self, attempt: Attempt) -> Result:
        t, a = attempt.ticket, attempt.ticket.actor
        where = f"actor {a.name}, script {a.script!r}"
        try:
            argv = command_line(a.script or "")
        except ValueError as exc:
            return Result.failed(f"{where}: cannot parse the command line: {exc}", retryable=False)
        if not argv:
            return Result.failed(f"{where}: empty command", retryable=False)
        payload = json.dumps({
            "ticket_id": t.ticket_id, "actor": a.name, "subject_id": t.subject_id,
            "input": t.input, "attempt": t.attempt, "chain_id": t.chain_id,
        }).encode()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                # why: its own session = its own process group, killed as a whole on timeout.
                start_new_session=True,
            )
        except OSError as exc:
            return Result.failed(f"{where}: cannot start {argv[0]!r}: {exc}", retryable=False)
        with self._lock:
            self._procs[t.ticket_id] = proc
        try:
            return self._wait(proc, payload, attempt, where)
        finally:
            with self._lock:
                self._procs.pop(t.ticket_id, None)

    def _wait(self, proc: subprocess.Popen[bytes], payload: bytes, attempt: Attempt,
              where: str) -> Result:
        out: deque[bytes] = deque()
        err: deque[bytes] = deque()

        def pump(stream: Any, sink: deque[bytes]) -> None:
            for chunk in iter(lambda: stream.read(65536), b""):
                sink.append(chunk)

        readers = [threading.Thread(target=pump, args=(proc.stdout, out), daemon=True),
                   threading.Thread(target=pump, args=(proc.stderr, err), daemon=True)]
        for r in readers:
            r.start()
        try:
            assert proc.stdin is not None
            proc.stdin.write(payload)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the script exited without reading its input; its exit code tells the rest
        killed = ""
        while proc.poll() is None:
            remaining = attempt.remaining()
            if remaining <= 0:
                killed = "timeout"
            elif attempt.cancel.is_set():
                killed = "lease lost" if attempt.lease_lost else "runner stopping"
            if killed:
                _kill_group(proc)
                break
            try:
                proc.wait(timeout=min(0.2, remaining))
            except subprocess.TimeoutExpired:
                continue
        proc.wait()
        for r in readers:
            r.join(timeout=5)
        stdout, stderr = b"".join(out), b"".join(err)
        if killed == "timeout":
            return Result.timed_out(
                f"{where}: killed (with its process group) after the actor's timeout of "
                f"{attempt.timeout:g}s; stderr tail: {_tail(stderr)}. Raise the "
                "actor's timeout (see turing.v_timeout_recommendations) if this is normal."
            )
        if killed:
            # why: a lost lease's result is refused by the fence anyway, and a runner stopping
            # gives the ticket back (invariant 10): neither is the work's failure.
            return Result.released(f"{where}: killed ({killed})")
        if proc.returncode != 0:
            return Result.failed(
                f"{where}: exited with status {proc.returncode}; stderr tail: {_tail(stderr)}"
            )
        text = stdout.decode("utf-8", "replace").strip()
        try:
            output = json.loads(text)
        except json.JSONDecodeError as exc:
            return Result.failed(
                f"{where}: stdout is not JSON ({exc.msg} at char {exc.pos}): {text[:300]!r}; "
                "a script prints exactly one JSON value on stdout (logs go to stderr)"
            )
        return require_container(output, where)
