"""`turing reap | tick | metrics`: the maintenance that runners and cron do, by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from turing_pg.cli.options import client, common_options, format_table, handle_errors, print_data
from turing_pg.cli.params import LIMIT_OR_ALL


@click.command("reap")
@common_options
@handle_errors
def reap(dsn: str | None, as_json: bool, verbose: int) -> None:
    """Take back expired leases now (runners and tick do it too). Example: turing reap"""
    with client(dsn) as t:
        n = t.reap("cli")
    print_data({"reaped": n}, as_json, lambda d: f"reaped {d['reaped']}")


@click.command("tick")
@common_options
@handle_errors
def tick(dsn: str | None, as_json: bool, verbose: int) -> None:
    """Reap, discover, compute metrics, prune history: run it from cron every minute.

    \b
    Example (crontab):
      * * * * * TURING_DSN=postgresql://... turing tick
    """
    with client(dsn) as t:
        result = t.tick("cli")
    print_data(result, as_json, lambda d: ", ".join(f"{k} {v}" for k, v in d.items()))


@click.command("metrics")
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="YYYY-MM-DD to recompute (default today).")
@click.option("--reaps", type=LIMIT_OR_ALL, default=20, show_default=True,
              help="Show this many entries of the reaper's log (last 24 hours).")
@common_options
@handle_errors
def metrics(day: datetime | None, reaps: int, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Failure rates per model and actor, the reaper's log and timeout recommendations.

    The failure rates count today's attempts as they finish (no `turing tick` needed); the
    reaper's log lists what reap() took back and why (the attempt ran past its timeout, or its
    runner stopped heartbeating), claims it returned unstarted and runners it marked lost. A
    login that may compute the daily metrics (turing_admin) recomputes --day first; turing_viewer
    is shown the same, as measured.

    \b
    Example:
      turing metrics
      turing metrics --json | jq '.failure_rates[] | select(.actor == null)'
    """
    with client(dsn) as t:
        # why: computing writes metrics_daily (the days before today); a read-only role still
        # gets every figure shown here, which reads the tickets themselves for today.
        if t.may_execute("compute_metrics(date)"):
            t.compute_metrics(None if day is None else day.date().isoformat())
        data = {
            "failure_rates": sorted(t.view("v_failure_rates"), key=_rollup_order),
            "reaps": t.recent_reaps(reaps),
            "timeouts": t.view("v_timeout_recommendations"),
        }
    print_data(data, as_json, _metrics_text)


def _rollup_order(row: dict[str, Any]) -> tuple[bool, str, bool, str]:
    """Per model its actors, then the model's total; the grand total last."""
    return (row["model"] is None, row["model"] or "", row["actor"] is None, row["actor"] or "")


def _metrics_text(d: dict[str, Any]) -> str:
    rates = [{**r, "model": r["model"] or "(all)", "actor": r["actor"] or "(all)"}
             for r in d["failure_rates"]]
    return "\n\n".join([
        "failure rates (failed + timed out + dead / finished):\n" + format_table(
            rates, ["model", "actor", "finished_today", "failure_rate_today", "finished_7d",
                    "failure_rate_7d"]),
        "reaper's log (last 24 hours, newest first):\n" + format_table(
            d["reaps"], ["reaped_at", "what", "ticket_id", "actor", "subject_id", "attempt",
                         "worker", "outcome", "reason"]),
        "timeouts:\n" + format_table(d["timeouts"]),
    ])
