"""Benchmark: how fast each page of `turing web` answers over a big history.

For each size (default 1 M, 3 M and 10 M finished tickets) a fresh database on a throwaway
embedded server gets bench/history.py's six-actor pipeline and its history, loaded quickly AS
THE SUPERUSER straight into turing.ticket_history (one INSERT ... SELECT generate_series per
2 M rows, plus the dead letters), then the hourly rollup is folded by roll_up_throughput() as
tick() would have done. Then the real `turing web` is started in a subprocess, a login that is
a member of turing_admin (not a superuser: the app refuses one) logs in over HTTP, and each page
is fetched N times after one warm-up; the figure is the median (and p90) of the full request
(server render + transfer) as a browser would see it, without the browser's own drawing.

    python bench/web_pages.py --sizes 1000000,3000000,10000000 --requests 30 \
        --output docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import harness
import psycopg
from harness import BenchServer, machine_facts, percentile
from history import history_facts, load_history, setup_pipeline
from psycopg import sql
from recovery import write_section

BEGIN, END = "<!-- bench/web_pages.py: begin -->", "<!-- bench/web_pages.py: end -->"
TARGET_MS = 100.0
LOGIN, PASSWORD = "bench_web_admin", "bench-web-password"
NOTE = (
    'The pages read trigger-kept counts, the hourly rollup and indexes, so their cost does '
    "not follow the history's size: the largest step from 1 M to 10 M is the pipeline and "
    "charts pages (about 5 ms more: `v_dashboard`'s and `v_throughput_hourly`'s last hour of "
    'history holds ten times the rows). Dead letters is the heaviest page in bytes: 200 rows '
    'with a retry form each.'
)


def pages(dsn: str) -> list[tuple[str, str]]:
    """(label, path) of every page, the ticket and chain pages at a real finished ticket."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select max(ticket_id) from turing.ticket_history").fetchone()
    newest = int(row[0]) if row and row[0] else 1
    return [
        ("pipeline", "/pipeline"), ("pipeline, live fragment", "/pipeline?part=live"),
        ("runners", "/runners"), ("alerts", "/alerts"), ("charts", "/charts"),
        ("dead letters (newest 200)", "/dead"), ("tickets (newest 100)", "/tickets"),
        ("tickets of one actor, dead", "/tickets?actor=score_posting&status=dead"),
        ("one ticket", f"/ticket/{newest}"), ("one chain", f"/chain/{newest}"),
    ]


def make_login(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (LOGIN,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create role {} login password {} in role turing_admin").format(
                sql.Identifier(LOGIN), sql.Literal(PASSWORD)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_pages(dsn: str, requests: int) -> list[dict[str, Any]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "turing_pg.cli", "web", "--port", str(port), "--dsn", dsn],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        deadline = time.monotonic() + 30
        while True:
            try:
                opener.open(f"{url}/login", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        form = urllib.parse.urlencode({"user": LOGIN, "password": PASSWORD}).encode()
        with opener.open(f"{url}/login", form) as r:
            assert r.url.endswith("/pipeline"), r.url
        out = []
        for label, path in pages(dsn):
            body = opener.open(url + path).read()  # warm-up
            assert b'class="error"' not in body, (path, body[:2000])
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                opener.open(url + path).read()
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            out.append({"page": label, "path": path, "median": statistics.median(times),
                        "p90": percentile(times, 90), "bytes": len(body)})
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def section(results: dict[int, list[dict[str, Any]]], facts: dict[int, dict[str, Any]],
            requests: int, command: str, machine: dict[str, str]) -> list[str]:
    sizes = sorted(results)
    head = " | ".join(f"median / p90 at {s:,}" for s in sizes)
    lines = [
        BEGIN,
        "## 8. `turing web` pages over the history",
        "",
        f"`{command}` on {machine.get('cpu', '?')} ({machine.get('nproc', '?')} cores), "
        "PostgreSQL from the embedded wheel. Each size is its own database with bench/"
        "history.py's six-actor pipeline and that many finished tickets, loaded as the "
        "superuser straight into `turing.ticket_history` (INSERT … SELECT generate_series), "
        "the dead letters with them, then `roll_up_throughput()` as `tick()` would have run it. "
        f"The real `turing web` in a subprocess; a turing_admin login; each page fetched "
        f"{requests} times over HTTP after a warm-up (ms, full request: render and transfer). "
        f"Target: median under {TARGET_MS:.0f} ms.",
        "",
        "| page | " + head + " | size | target |",
        "|---|" + "---:|" * len(sizes) + "---:|---|",
    ]
    by_page = {r["page"]: {s: next(x for x in results[s] if x["page"] == r["page"])
                           for s in sizes} for r in results[sizes[0]]}
    for page, per in by_page.items():
        cells = " | ".join(f"{per[s]['median']:.1f} / {per[s]['p90']:.1f}" for s in sizes)
        ok = all(per[s]["median"] < TARGET_MS for s in sizes)
        lines.append(f"| {page} | {cells} | {per[sizes[-1]]['bytes'] // 1024} kB | "
                     f"{'pass' if ok else '**miss**'} |")
    lines += ["", NOTE, "", "History loaded: " + "; ".join(
        f"{s:,} rows ({facts[s]['total_size']} with indexes) in {facts[s]['load_s']:.0f} s"
        for s in sizes) + ".", "", END]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000000,3000000,10000000")
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--output", default=None, help="write the section into this file")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, list[dict[str, Any]]] = {}
    facts: dict[int, dict[str, Any]] = {}
    with BenchServer() as server:
        for size in sizes:
            dsn = server.create_database(f"web_{size}")
            ids = setup_pipeline(dsn)
            load_s = load_history(dsn, size, ids)
            harness.execute(dsn, "select turing.roll_up_throughput()")
            make_login(dsn)
            facts[size] = {**history_facts(dsn), "load_s": load_s}
            print(f"{size:,} rows loaded in {load_s:.0f} s", flush=True)
            results[size] = time_pages(dsn, args.requests)
            for r in results[size]:
                print(f"  {r['page']:<32} median {r['median']:7.1f} ms  p90 {r['p90']:7.1f} ms",
                      flush=True)
            with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("drop database {} with (force)").format(
                    sql.Identifier(f"web_{size}")))
    command = "python bench/web_pages.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = section(results, facts, args.requests, command.strip(), machine_facts())
    print("\n".join(lines))
    if args.output:
        write_section(Path(args.output), lines, BEGIN, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
