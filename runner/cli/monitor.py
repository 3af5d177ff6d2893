"""`turing status | top | graph | check | tickets | events`: what the pipeline is doing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from turing_pg.cli.options import (
    client,
    common_options,
    exit_codes,
    format_table,
    handle_errors,
    print_data,
)
from turing_pg.cli.output import console, render, to_json
from turing_pg.cli.params import LIMIT, LIMIT_OR_ALL, TICKET_ID
from turing_pg.cli.screen import live, status_view
from turing_pg.credentials import redact
from turing_pg.db import InvalidArgument
from turing_pg.exits import Exit


def _status_data(t: Any, show_all: bool) -> dict[str, Any]:
    runners = t.view("v_runners")
    shown = runners if show_all else [r for r in runners if r["status"] != "stopped"]
    return {
        "actors": t.view("v_dashboard"),
        "runners": shown,
        "runners_hidden": len(runners) - len(shown),
        "alerts": t.view("v_alerts"),
    }


def _status_text(d: dict[str, Any]) -> str:
    return render(status_view(d, width=console().width))


show_all_option = click.option(
    "--all", "show_all", is_flag=True,
    help="Show stopped runners too (hidden by default; JSON counts them in runners_hidden).")


@click.command("status")
@show_all_option
@common_options
@handle_errors
def status(show_all: bool, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Per actor: model, pending, running, done last hour, rate, failures, p95, tokens/s, ETA;
    runners
    alive with their model and current batch; alerts.

    \b
    Example:
      turing status
      turing status --json | jq '.alerts'
    """
    with client(dsn) as t:
        data = _status_data(t, show_all)
    print_data(data, as_json, _status_text)


@click.command("top")
@click.option("--interval", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds between refreshes.")
@click.option("--count", type=LIMIT_OR_ALL, default=0,
              help="Stop after N refreshes (0 = until q).")
@show_all_option
@common_options
@handle_errors
def top(interval: float, count: int, show_all: bool, dsn: str | None, as_json: bool,
        verbose: int) -> None:
    """`turing status`, refreshed live in the terminal until q (or Ctrl-C). The screen fits
    the terminal: each section keeps its header and says how many rows it could not show.
    Without a terminal (or with --json) it prints one frame (one JSON line) per interval.

    \b
    Example:
      turing top --interval 1
      turing top --json --count 3 > frames.jsonl
    """
    with client(dsn) as t:
        try:
            if sys.stdout.isatty() and not as_json:
                live(lambda w, h: status_view(_status_data(t, show_all), width=w, height=h,
                                              title=_top_title(interval)), interval, count)
                return
            n = 0
            while True:
                data = _status_data(t, show_all)
                if as_json:
                    click.echo(redact(to_json(data, indent=None)))
                else:
                    click.echo(redact(render(status_view(data, width=console().width,
                                                         title=_top_title(interval)))) + "\n")
                n += 1
                if count and n >= count:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            return


def _top_title(interval: float) -> Text:
    return Text.assemble(("turing top", "bold"),
                         f"  {time.strftime('%H:%M:%S')}  every {interval:g}s  q quits",
                         no_wrap=True, overflow="ellipsis")


@click.command("graph")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Write SVG or PNG (by suffix) with Graphviz instead of printing Mermaid.")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True, help="What to print without --output.")
@common_options
@handle_errors
def graph(output: Path | None, fmt: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """The pipeline as a graph: actors joined by the statuses they hand on.

    Unwired outboxes are drawn red, final ones green, inboxes fed from outside as circles.

    \b
    Example:
      turing graph > pipeline.mmd
      turing graph -o pipeline.svg
    """
    from turing_pg import graph as g

    with client(dsn) as t:
        nodes = [
            g.Node(r["name"], r["definition"]["kind"], r["definition"]["model"],
                   r["definition"]["enabled"])
            for r in t.actor_definitions()
        ]
        edges = [g.Edge(**e) for e in t.view("v_pipeline_edges")]
    if as_json:
        print_data({"nodes": [n.__dict__ for n in nodes], "edges": [e.__dict__ for e in edges]},
                   True)
        return
    if output is not None:
        try:
            g.render(g.dot(nodes, edges), output)
        except ValueError as exc:
            raise InvalidArgument(str(exc), "write e.g. -o pipeline.svg or -o pipeline.png"
                                  ) from exc
        except g.RendererMissing as exc:
            raise InvalidArgument(str(exc)) from exc
        except subprocess.CalledProcessError as exc:
            raise InvalidArgument(f"Graphviz's dot could not write {output} (exit "
                                  f"{exc.returncode})",
                                  "give a path in a directory this user may write") from exc
        click.echo(f"wrote {output}")
        return
    click.echo(g.mermaid(nodes, edges) if fmt == "mermaid" else g.dot(nodes, edges), nl=False)


@click.command("check")
@common_options
@handle_errors
@exit_codes(Exit.OK, (Exit.ERROR, "or an error-level finding exists"))
def check(dsn: str | None, as_json: bool, verbose: int) -> None:
    """Find wiring mistakes: unwired outboxes, inboxes nobody writes, disabled actors with work,
    work_queries that scan a large table; and what discovery could not do: a failing
    work_query, rows that cannot be tickets, finished subjects still in an inbox.

    \b
    Example:
      turing check && echo wired
    """
    with client(dsn) as t:
        findings = t.check_pipeline()
    print_data(findings, as_json, lambda f: "\n".join(
        f"[{x['severity']}] {x['actor']}: {x['message']}" for x in f) or "no findings")
    if any(f["severity"] == "error" for f in findings):
        sys.exit(Exit.ERROR)


@click.group("tickets", invoke_without_command=True)
@click.option("--actor", default=None)
@click.option("--status", default=None,
              type=click.Choice(["pending", "running", "completed", "failed", "timed_out",
                                 "cancelled", "dead"]))
@click.option("--subject", default=None, help="subject_id")
@click.option("--chain", type=TICKET_ID, default=None, help="chain_id")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True,
              help="At most this many tickets (1 to 10000).")
@common_options
@click.pass_context
@handle_errors
def tickets(ctx: click.Context, actor: str | None, status: str | None, subject: str | None,
            chain: int | None, limit: int, dsn: str | None, as_json: bool,
            verbose: int) -> None:
    """List tickets (every attempt), newest first; `turing tickets show ID` tells one
    attempt's whole story.

    \b
    Example:
      turing tickets --actor classifier_a --status failed
      turing tickets --subject 42
      turing tickets show 1234
    """
    if ctx.invoked_subcommand is not None:
        return
    with client(dsn) as t:
        rows = t.find_tickets(actor=actor, status=status, subject_id=subject, chain_id=chain,
                              limit=limit)
    print_data(rows, as_json, lambda r: format_table(r, ["ticket_id", "actor", "subject_id",
                                                         "status", "attempt", "chain_id",
                                                         "worker", "finished_at", "error"]))


@click.command("events")
@click.option("--follow", "-f", is_flag=True, help="Keep reading until Ctrl-C.")
@click.option("--limit", type=LIMIT, default=100, show_default=True,
              help="The newest N events (per read with --consume).")
@click.option("--consume", is_flag=True,
              help="Take the events off the queue: read and archive them (turing_admin).")
@common_options
@handle_errors
def events(follow: bool, limit: int, consume: bool, dsn: str | None, as_json: bool,
           verbose: int) -> None:
    """Print events (ticket finished/failed/dead, runner started/stopped, alerts) of the pgmq
    queue turing_events, oldest first: the newest --limit, then with -f each new one. They are
    left where they are, so any role that may watch (turing_viewer) can, beside the consumers
    that own the queue; --consume makes this command the consumer that archives each event
    once printed.

    \b
    Example:
      turing events -f --json
      turing events --consume --limit 1000 >> events.log
    """
    last = 0
    with client(dsn) as t:
        try:
            while True:
                rows = t.read_events(limit) if consume else t.peek_events(last, limit)
                for r in rows:
                    last = max(last, r["msg_id"])
                    m = r["message"]
                    if as_json:
                        click.echo(redact(to_json(m, indent=None)))
                    else:
                        detail = {k: v for k, v in m.items() if k not in ("event", "at")}
                        click.echo(redact(f"{m.get('at', '')}  {m.get('event')}  "
                                          f"{json.dumps(detail)}"))
                if not follow:
                    return
                time.sleep(1.0)
        except KeyboardInterrupt:
            return
