"""`turing demo`: the taxonomy pipeline end to end (the work itself is in turing_pg.demo)."""

from __future__ import annotations

import sys

import click

from turing_pg.cli.options import (
    common_options,
    exit_codes,
    format_table,
    handle_errors,
    print_data,
    target_dsn,
)
from turing_pg.cli.params import LIMIT, SECONDS
from turing_pg.cli.screen import stage_display
from turing_pg.credentials import mask_dsn
from turing_pg.exits import Exit


@click.command("demo")
@click.option("--limit", type=LIMIT, default=None,
              help="Load only the first N sample skills (default: all of them).")
@click.option("--ollama-host", envvar="TURING_OLLAMA_HOST", default=None,
              help="A real Ollama to use when it answers; otherwise a simulated one is started.")
@click.option("--time-scale", type=click.FloatRange(0, min_open=True), default=0.02,
              show_default=True,
              help="Speed of the simulated GPU (1.0 = real-time load and token latencies).")
@click.option("--timeout", "timeout_s", type=SECONDS, default=600, show_default=True,
              help="Give up waiting for the pipeline to drain after this many seconds.")
@common_options
@handle_errors
@exit_codes((Exit.OK, "drained"), (Exit.ERROR, "or the pipeline did not drain within --timeout"))
def demo(limit: int | None, ollama_host: str | None, time_scale: float, timeout_s: float,
         dsn: str | None, as_json: bool, verbose: int) -> None:
    """Run the taxonomy demo pipeline end to end (embedded server by default).

    \b
    Example:
      turing demo                 # everything simulated, about a minute
      turing demo --limit 40      # a quick look
    """
    from turing_pg.demo import run_demo

    target = target_dsn(dsn)
    # why: with --json stdout is the document; the progress goes to stderr
    with stage_display(sys.stderr if as_json else sys.stdout) as shown:
        result = run_demo(target, limit=limit, ollama_host=ollama_host, time_scale=time_scale,
                          timeout_s=timeout_s, progress=shown.message, stages=shown.stages)
    data = {"seconds": round(result.seconds, 1), "drained": result.drained,
            "waiting_for_people": result.waiting_for_people, "simulated": result.simulated,
            "counts": result.counts,
            "dashboard": result.dashboard, "taxonomy": result.tree, "dsn": mask_dsn(target)}
    print_data(data, as_json, lambda d: "\n".join([
        "", "This run (finished attempts per actor):", format_table(d["counts"]),
        "", "Dashboard (turing status):",
        format_table(d["dashboard"], ["actor", "model", "kind", "enabled", "pending", "running",
                                      "dead", "done_last_hour", "p95_ms"]),
        "", d["taxonomy"],
        *(["(simulated model answers: the placements are deterministic but arbitrary; "
           "use --ollama-host with a real Ollama for real ones)"] if d["simulated"] else []),
        f"{'drained' if d['drained'] else 'NOT drained'} in {d['seconds']} s; "
        "explore with: psql \"$(turing db dsn)\"",
        *([f"{d['waiting_for_people']} ticket(s) wait for a person: answer them with "
           "`turing human`"] if d["waiting_for_people"] else []),
    ]))
    if not result.drained:
        sys.exit(Exit.ERROR)
