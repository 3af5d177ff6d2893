"""Database back → first completion: how soon runners work again after the database returns.

    python bench/recovery.py [--rounds N] [--output docs/benchmarks.md]

Starts everything itself and stops it afterwards: an embedded PostgreSQL in a temporary
TURING_HOME, the bundled fake Ollama (fast answers, so what is measured is the reconnect, not
the model) and one real `turing-runner` without --dsn, so it follows the embedded server like
a runner of an operator's. The runner drains a steady stream of tickets while the database
goes away and comes back, once per round for each fault:

  fast stop + start    `turing db stop` then a new start on the same port
  port taken           the same, with another program holding the old port (a new port)
  crash                `pg_ctl -m immediate` (every backend killed, crash recovery on start)

"back" is the first moment a fresh connection to the new server succeeds (polled every 10 ms);
the figures are, from then, the first completion (a result held through the outage or a new
one) and the first completion of a ticket started after the restart (claim → run → report).
Both come from the database's own clock. Target: first completion within 5 s.

The section is written between markers into docs/benchmarks.md (bench/run.py keeps it when it
rewrites the file)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import psycopg
from harness import machine_facts

from turing_pg.db import Turing
from turing_pg.fake_ollama import FakeConfig, FakeOllama, ModelSpec
from turing_pg.pgserver import EmbeddedServer

REPO = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- bench/recovery.py: begin -->", "<!-- bench/recovery.py: end -->"
TARGET_S = 5.0
DOWN_S = 3.0
MODEL = "qwen2.5:7b"
SCHEMA = {"type": "object", "properties": {"label": {"type": "string", "enum": ["keep", "drop"]}},
          "required": ["label"]}
FAULTS = ("fast stop + start", "port taken", "crash")


def out(*args: Any) -> None:
    print(*args, flush=True)


def wait_until(cond: Any, timeout: float, what: str, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextlib.contextmanager
def holding_port(port: int) -> Iterator[None]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def first_connection(server: EmbeddedServer, stop: threading.Event) -> dict[str, Any]:
    """Poll until a fresh connection to the server succeeds; its clock_timestamp() is "back"."""
    found: dict[str, Any] = {}

    def poll() -> None:
        while not stop.is_set():
            info = server.running()
            if info is not None:
                try:
                    with psycopg.connect(info.dsn(), connect_timeout=1) as c:
                        found["at"] = c.execute("select clock_timestamp()").fetchone()[0]  # type: ignore[index]
                        return
                except psycopg.Error:
                    pass
            time.sleep(0.01)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    found["thread"] = thread
    return found


def one_round(server: EmbeddedServer, fault: str, env: dict[str, str]) -> dict[str, float]:
    port = server.running().port  # type: ignore[union-attr]
    if fault == "crash":
        server._pg("pg_ctl", "-D", str(server.pgdata), "-m", "immediate", "-w", "stop",
                   timeout=90)
    else:
        subprocess.run([sys.executable, "-m", "turing_pg.cli", "db", "stop"], env=env,
                       check=True, capture_output=True, timeout=120)
    with holding_port(port) if fault == "port taken" else contextlib.nullcontext():
        time.sleep(DOWN_S)
        stop = threading.Event()
        back = first_connection(server, stop)
        server.ensure_running()  # a new start, as `turing db dsn` or any command makes one
        back["thread"].join(timeout=60)
        stop.set()
        info = server.running()
        assert info is not None and "at" in back
        if fault == "port taken":
            assert info.port != port
        with psycopg.connect(info.dsn(), autocommit=True) as conn:
            def first(started_after: bool) -> float | None:
                return conn.execute(
                    "select extract(epoch from min(finished_at) - %(b)s) "
                    "from turing.ticket_history where status = 'completed' "
                    "and finished_at >= %(b)s and (not %(s)s or started_at >= %(b)s)",
                    {"b": back["at"], "s": started_after}).fetchone()[0]  # type: ignore[index]
            wait_until(lambda: first(True) is not None, 60, "a completion after the restart",
                       interval=0.05)
            return {"first": float(first(False)), "fresh": float(first(True))}  # type: ignore[arg-type]


def run(rounds: int, workdir: Path) -> dict[str, list[dict[str, float]]]:
    home = workdir / "home"
    server = EmbeddedServer(home)
    harness.upgrade(server.ensure_running().dsn())
    fake = FakeOllama(FakeConfig(models=[ModelSpec(name=MODEL, load_s=0.0, decode_tok_s=200.0)],
                                 time_scale=1.0, num_parallel=4)).start()
    env = {**os.environ, "TURING_HOME": str(home), "TURING_DSN": ""}
    log = open(workdir / "runner.log", "wb")  # noqa: SIM115 - closed below
    runner = None
    try:
        with Turing(server.running().dsn()) as t:  # type: ignore[union-attr]
            t.register_actor(dict(
                name="classify", kind="llm", model=MODEL, prompt_template="Classify {skill}.",
                output_schema=SCHEMA, timeout="60 seconds", lease="30 seconds",
                max_attempts=3, backoff_base="0 seconds", backoff_max="0 seconds"))
            for i in range(rounds * len(FAULTS) * 400):
                t.submit("classify", f"s{i}", {"skill": f"skill {i}"})
        runner = subprocess.Popen(
            [sys.executable, "-m", "turing_pg.cli.runner", "--model", MODEL, "--concurrency",
             "4", "--ollama-host", fake.base_url, "--log-format", "json"],
            env={**env, "TURING_POLL_INTERVAL": "0.5", "TURING_STAGE": "develop"}, stdout=log,
            stderr=subprocess.STDOUT)
        results: dict[str, list[dict[str, float]]] = {f: [] for f in FAULTS}
        for k in range(rounds):
            for fault in FAULTS:
                with psycopg.connect(server.running().dsn()) as c:  # type: ignore[union-attr]
                    wait_until(lambda c=c: c.execute(
                        "select count(*) from turing.ticket_history where finished_at > "
                        "clock_timestamp() - interval '1 second'").fetchone()[0] > 0,  # type: ignore[index]
                        60, "the runner busy before the fault", interval=0.05)
                r = one_round(server, fault, env)
                results[fault].append(r)
                out(f"round {k + 1} {fault}: first completion {r['first']:.2f} s, "
                    f"first of a ticket started after {r['fresh']:.2f} s")
        with psycopg.connect(server.running().dsn()) as c:  # type: ignore[union-attr]
            charged = c.execute("select count(*) from turing.ticket_history "
                                "where status <> 'completed' or attempt > 1").fetchone()[0]  # type: ignore[index]
        out(f"attempts charged to the faults: {charged}")
        results["_charged"] = [{"n": float(charged)}]
        return results
    finally:
        if runner is not None and runner.poll() is None:
            runner.terminate()
            runner.wait(timeout=30)
        log.close()
        fake.stop()
        server.destroy()


def section(results: dict[str, list[dict[str, float]]], command: str, facts: dict[str, str],
            rounds: int) -> list[str]:
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN, "## 5. Database back → first completion", "",
        f"Generated by `{command}` on {date} ({facts['nproc']} cores, {facts['cpu']}). One "
        "runner without --dsn (it follows the embedded server) drains fast simulated LLM "
        f"tickets at concurrency 4; the database goes away for {DOWN_S:g} s and comes back, "
        f"{rounds} rounds of each fault. \"back\" is the first fresh connection that succeeds; "
        "times are from then, on the database's clock. Target: first completion within "
        f"{TARGET_S:g} s.", "",
        "| fault | first completion, median / max (s) | first completion of a ticket started "
        "after, median / max (s) | target | |",
        "|---|---:|---:|---:|---|",
    ]
    for fault in FAULTS:
        rs = results[fault]
        first = [r["first"] for r in rs]
        fresh = [r["fresh"] for r in rs]
        ok = "pass" if max(first) <= TARGET_S else "miss"
        lines.append(f"| {fault} | {statistics.median(first):.2f} / {max(first):.2f} | "
                     f"{statistics.median(fresh):.2f} / {max(fresh):.2f} | {TARGET_S:g} | {ok} |")
    charged = int(results["_charged"][0]["n"])
    lines += ["", f"Attempts charged to the faults over the whole run: {charged} (target 0).",
              "", END]
    return lines


def write_section(path: Path, lines: list[str], begin: str = BEGIN, end: str = END) -> None:
    """Replace the section marked begin … end, or put it before the appendix (or at the end)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = "\n".join(lines)
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    elif "## Appendix" in text:
        head, rest = text.split("## Appendix", 1)
        text = head + block + "\n\n## Appendix" + rest
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--output", default=None, help="write the section into this file")
    args = ap.parse_args(argv)
    command = "python bench/recovery.py" + "".join(
        f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    workdir = Path(tempfile.mkdtemp(prefix="turing-bench-recovery-"))
    try:
        results = run(args.rounds, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lines = section(results, command, machine_facts(), args.rounds)
    out("\n".join(lines))
    if args.output:
        write_section(Path(args.output), lines)
        out(f"wrote {args.output}")
    worst = max(r["first"] for f in FAULTS for r in results[f])
    return 0 if worst <= TARGET_S and not results["_charged"][0]["n"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
