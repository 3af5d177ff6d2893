"""`turing reap | tick | metrics`: the maintenance that runners and cron do, by hand."""

from __future__ import annotations

import click

from turing_pg.cli.options import client, common_options, format_table, handle_errors, print_data


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
@click.option("--day", default=None, help="YYYY-MM-DD (default today).")
@common_options
@handle_errors
def metrics(day: str | None, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Compute and show latency/failure metrics and timeout recommendations.

    A login that may not compute them (turing_viewer) is shown the recommendations, which read
    the measured run times; the daily metrics are then as `turing tick` last computed them.

    \b
    Example:
      turing metrics --day 2026-11-21
    """
    with client(dsn) as t:
        # why: computing writes metrics_daily; a read-only role still gets the read.
        if t.may_execute("compute_metrics(date)"):
            t.compute_metrics(day)
        else:
            click.echo("note: not recomputed (computing metrics needs role turing_admin); "
                       "showing what is measured", err=True)
        rows = t.view("v_timeout_recommendations")
    print_data(rows, as_json, format_table)
