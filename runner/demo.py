"""`turing demo`: the taxonomy pipeline end to end on the embedded server.

It creates the schema, loads the sample skills, starts the bundled Ollama-compatible server (its
answers are simulated; a real Ollama is used when --ollama-host reaches one), starts one runner
per model plus the cpu runner for script and SQL actors, shows progress while the pipeline
drains, and ends with the counts and the resulting taxonomy tree. Rerunnable: the demo schema is
rebuilt and the demo actors re-registered each time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg

from turing_pg.credentials import mask_url
from turing_pg.db import ActorState, Turing

DEMO_FAKE_MODELS = ("qwen2.5:7b", "llama3.1:8b", "mistral:7b")


@dataclass(frozen=True)
class Stage:
    """One actor of the demo as it drains: `total` is what has reached it so far (this run's
    finished subjects plus its open work), `done` what it completed."""

    actor: str
    done: int
    total: int
    dead: int


@dataclass
class DemoResult:
    seconds: float
    counts: list[dict[str, object]]  # this run's finished attempts per actor and status
    dashboard: list[dict[str, object]]  # turing.v_dashboard rows of the demo actors
    tree: str
    drained: bool  # nothing open for a machine, every work_query empty
    simulated: bool
    waiting_for_people: int = 0  # human tickets open: waiting, not drained


def _finished(t: Turing, actors: list[str]) -> dict[tuple[str, str], int]:
    return {(str(r["actor"]), str(r["status"])): int(r["n"]) for r in t.counts()
            if r["actor"] in actors and r["status"] not in ("pending", "running")}


def _ollama_reachable(host: str) -> bool:
    import httpx

    try:
        return httpx.get(host.rstrip("/") + "/api/version", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def fake_ollama(models: list[str], time_scale: float) -> Iterator[str]:
    """Start the bundled Ollama-compatible server in a subprocess; yield its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "turing_pg.fake_ollama", "--port", "0",
         "--models", ",".join(models), "--time-scale", str(time_scale)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening "):
            raise RuntimeError(f"the simulated Ollama server did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def runners(dsn: str, models: list[str], ollama_host: str | None
            ) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = []
    env = {**os.environ, "TURING_DSN": dsn}
    if ollama_host:
        env["TURING_OLLAMA_HOST"] = ollama_host
    try:
        for model in models:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "turing_pg.cli.runner", "--model", model,
                 "--concurrency", "4", "--log-format", "json",
                 # why: the demo's actors were just registered, so their versions are in
                 # develop; a production runner would leave them alone (README "From develop
                 # to production" takes one through the gates).
                 "--stage", "develop"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def run_demo(dsn: str, *, limit: int | None, ollama_host: str | None, time_scale: float,
             timeout_s: float, progress: Callable[[str], None],
             stages: Callable[[list[Stage]], None]) -> DemoResult:
    """Run the pipeline until it drains (or `timeout_s`); `progress` gets a line for each step,
    `stages` the figures of every stage a machine runs, at each poll (every half second)."""
    from turing_pg import schema
    from turing_pg.actors.taxonomy import loader

    started = time.monotonic()
    schema.upgrade(dsn)
    with Turing(dsn, max_size=2) as t, psycopg.connect(dsn, autocommit=True) as conn:
        actors = loader.load_pipeline(t, conn, limit=limit)
        # why: counts are cumulative over reruns; the demo reports what this run did.
        before = _finished(t, actors)
        models = sorted({s.model for s in t.startup_state() if s.actor in actors})
        progress(f"loaded {len(actors)} actors over models {', '.join(models)}")
        llm_models = [m for m in models if m not in ("cpu", "human")]
        use_real = bool(ollama_host) and _ollama_reachable(ollama_host or "")
        host_cm = (contextlib.nullcontext(ollama_host) if use_real
                   else fake_ollama(sorted(set(llm_models) | set(DEMO_FAKE_MODELS)), time_scale))
        with host_cm as host:
            progress(("using Ollama at " if use_real else "simulated Ollama (outputs are "
                      "simulated) at ") + mask_url(str(host)))
            with runners(dsn, [m for m in models if m != "human"], host):
                drained = _wait_drained(t, actors, before, timeout_s, stages)
        after = _finished(t, actors)
        counts = [{"actor": a, "status": st, "n": n - before.get((a, st), 0)}
                  for (a, st), n in sorted(after.items()) if n - before.get((a, st), 0)]
        dashboard = [r for r in t.view("v_dashboard") if r["actor"] in actors]
        tree = loader.taxonomy_tree(conn)
        waiting = sum(s.pending + s.running for s in t.startup_state()
                      if s.actor in actors and s.model == "human")
    return DemoResult(time.monotonic() - started, counts, dashboard, tree, drained,
                      simulated=not use_real, waiting_for_people=waiting)


def _nothing_to_discover(t: Turing, state: list[ActorState]) -> bool:
    """Run every enabled actor's work_query now; True when none found new work."""
    return sum(t.discover(s.actor) for s in state if s.enabled) == 0


def _stages(t: Turing, state: list[ActorState], before: dict[tuple[str, str], int]
            ) -> list[Stage]:
    now = _finished(t, [s.actor for s in state])
    run = {k: n - before.get(k, 0) for k, n in now.items()}
    return [Stage(s.actor, done=run.get((s.actor, "completed"), 0),
                  total=s.pending + s.running + sum(
                      n for (a, st), n in run.items()
                      if a == s.actor and st in ("completed", "dead", "cancelled")),
                  dead=run.get((s.actor, "dead"), 0))
            for s in state]


def _wait_drained(t: Turing, actors: list[str], before: dict[tuple[str, str], int],
                  timeout_s: float, stages: Callable[[list[Stage]], None]) -> bool:
    deadline = time.monotonic() + timeout_s
    quiet = 0
    order = {a: i for i, a in enumerate(actors)}
    while time.monotonic() < deadline:
        state = sorted((s for s in t.startup_state() if s.actor in actors and s.model != "human"),
                       key=lambda s: order[s.actor])
        stages(_stages(t, state, before))
        if sum(s.pending + s.running for s in state) == 0 and _nothing_to_discover(t, state):
            # why: discovery is lazy, so "nothing open" alone can mean "not discovered yet"
            # (runners still starting); drained = nothing open and every work_query empty,
            # twice in a row (a runner's own discover may be committing in between).
            quiet += 1
            if quiet >= 2:
                stages(_stages(t, state, before))
                return True
        else:
            quiet = 0
        time.sleep(0.5)
    return False
