"""Operator commands of `turing` beyond the basics: graph, check, tickets, dead letters, events,
top, human answers, actor show/set. Registered on the main group by `turing_pg.cli`."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from turing_pg.cli import _client, _print, _table, actor, common_options, handle_errors, main
from turing_pg.db import InvalidArgument
from turing_pg.execution import Attempt


def _status_data(t: Any) -> dict[str, Any]:
    return {
        "actors": t.view("v_dashboard"),
        "runners": t.view("v_runners"),
        "alerts": t.view("v_alerts"),
    }


def _status_text(d: dict[str, Any]) -> str:
    actors = _table(d["actors"], ["actor", "model", "enabled", "pending", "running",
                                  "done_last_hour", "rate_per_min", "failed_last_hour", "dead",
                                  "p95_ms", "eta"])
    runners = _table(d["runners"], ["worker", "models", "status", "alive", "current_model",
                                    "current_batch_id", "in_flight", "silent_for"])
    alerts = "\n".join(f"[{a['severity']}] {a['alert']}: {a['message']}" for a in d["alerts"])
    return f"{actors}\n\nrunners:\n{runners}\n\nalerts:\n{alerts or '(none)'}"


@main.command("status")
@common_options
@handle_errors
def status(dsn: str | None, as_json: bool, verbose: int) -> None:
    """Per actor: model, pending, running, done last hour, rate, failures, p95, ETA; runners
    alive with their model and current batch; alerts.

    \b
    Example:
      turing status
      turing status --json | jq '.alerts'
    """
    with _client(dsn) as t:
        data = _status_data(t)
    _print(data, as_json, _status_text)


@main.command("top")
@click.option("--interval", type=float, default=2.0, show_default=True,
              help="Seconds between refreshes.")
@click.option("--count", type=int, default=0, help="Stop after N refreshes (0 = until Ctrl-C).")
@common_options
@handle_errors
def top(interval: float, count: int, dsn: str | None, as_json: bool, verbose: int) -> None:
    """`turing status`, refreshed live until Ctrl-C.

    \b
    Example:
      turing top --interval 1
    """
    n = 0
    with _client(dsn) as t:
        try:
            while True:
                data = _status_data(t)
                if as_json:
                    click.echo(json.dumps(data, default=str))
                else:
                    click.clear()
                    click.echo(time.strftime("%H:%M:%S") + "  turing top (Ctrl-C to quit)\n")
                    click.echo(_status_text(data))
                n += 1
                if count and n >= count:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            return


@main.command("graph")
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

    with _client(dsn) as t:
        nodes = [
            g.Node(r["name"], r["definition"]["kind"], r["definition"]["model"],
                   r["definition"]["enabled"])
            for r in t.actor_definitions()
        ]
        edges = [g.Edge(**e) for e in t.view("v_pipeline_edges")]
    if as_json:
        _print({"nodes": [n.__dict__ for n in nodes], "edges": [e.__dict__ for e in edges]}, True)
        return
    if output is not None:
        try:
            g.render(g.dot(nodes, edges), output)
        except (g.RendererMissing, ValueError) as exc:
            raise InvalidArgument(str(exc)) from exc
        click.echo(f"wrote {output}")
        return
    click.echo(g.mermaid(nodes, edges) if fmt == "mermaid" else g.dot(nodes, edges), nl=False)


@main.command("check")
@common_options
@handle_errors
def check(dsn: str | None, as_json: bool, verbose: int) -> None:
    """Find wiring mistakes: unwired outboxes, inboxes nobody writes, disabled actors with work,
    work_queries that scan a large table. Exits 1 when an error-level finding exists.

    \b
    Example:
      turing check && echo wired
    """
    with _client(dsn) as t:
        findings = t.check_pipeline()
    _print(findings, as_json, lambda f: "\n".join(
        f"[{x['severity']}] {x['actor']}: {x['message']}" for x in f) or "no findings")
    if any(f["severity"] == "error" for f in findings):
        sys.exit(1)


@main.command("tickets")
@click.option("--actor", default=None)
@click.option("--status", default=None,
              type=click.Choice(["pending", "running", "completed", "failed", "timed_out",
                                 "cancelled", "dead"]))
@click.option("--subject", default=None, help="subject_id")
@click.option("--chain", type=int, default=None, help="chain_id")
@click.option("--limit", type=int, default=50, show_default=True)
@common_options
@handle_errors
def tickets(actor: str | None, status: str | None, subject: str | None, chain: int | None,
            limit: int, dsn: str | None, as_json: bool, verbose: int) -> None:
    """List tickets (every attempt), newest first.

    \b
    Example:
      turing tickets --actor classifier_a --status failed
      turing tickets --subject 42
    """
    with _client(dsn) as t:
        rows = t.find_tickets(actor=actor, status=status, subject_id=subject, chain_id=chain,
                              limit=limit)
    _print(rows, as_json, lambda r: _table(r, ["ticket_id", "actor", "subject_id", "status",
                                               "attempt", "chain_id", "worker", "finished_at",
                                               "error"]))


@main.group("dead", invoke_without_command=True)
@click.option("--limit", type=int, default=50, show_default=True,
              help="Show the newest N dead letters; 0 for all.")
@common_options
@click.pass_context
@handle_errors
def dead(ctx: click.Context, limit: int, dsn: str | None, as_json: bool, verbose: int) -> None:
    """The dead letters (attempts exhausted), newest first, with `dead retry`.

    \b
    Example:
      turing dead
      turing dead --limit 0 --json > dead.json
      turing dead retry 1234
    """
    if ctx.invoked_subcommand is not None:
        return
    if limit < 0:
        raise InvalidArgument(f"--limit {limit} is negative", "pass a count, or 0 for all")
    with _client(dsn) as t:
        rows = t.dead_letters(limit or None)
    _print(rows, as_json, lambda r: _table(r, ["ticket_id", "actor", "subject_id", "attempt",
                                               "failure_kind", "finished_at", "error"]))


@dead.command("retry")
@click.argument("ticket_ids", type=int, nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead letter.")
@common_options
@handle_errors
def dead_retry(ticket_ids: tuple[int, ...], retry_all: bool, dsn: str | None, as_json: bool,
               verbose: int) -> None:
    """Retry dead letters as new tickets. Example: turing dead retry 1234 1235"""
    with _client(dsn) as t:
        ids = list(ticket_ids)
        if retry_all:
            ids = [r["ticket_id"] for r in t.view("v_dead_letters")]
        if not ids:
            raise InvalidArgument("no ticket to retry", "name ticket ids or pass --all")
        new = {i: t.retry_dead(i) for i in ids}
    _print(new, as_json, lambda d: "\n".join(f"dead {k} -> new ticket {v}" for k, v in d.items()))


@main.command("retry")
@click.argument("ticket_id", type=int)
@common_options
@handle_errors
def retry(ticket_id: int, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Retry one dead ticket (same as `turing dead retry`). Example: turing retry 1234"""
    with _client(dsn) as t:
        new = t.retry_dead(ticket_id)
    _print({"ticket_id": new}, as_json, lambda d: f"new ticket {d['ticket_id']}")


@main.command("events")
@click.option("--follow", "-f", is_flag=True, help="Keep reading until Ctrl-C.")
@click.option("--limit", type=int, default=100, show_default=True)
@common_options
@handle_errors
def events(follow: bool, limit: int, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Read events (ticket finished/failed/dead, runner started/stopped, alerts) from the pgmq
    queue turing_events. Each event is archived once printed (one consumer; other consumers
    should read the queue with pgmq themselves).

    \b
    Example:
      turing events -f --json
    """
    with _client(dsn) as t:
        try:
            while True:
                for r in t.read_events(limit):
                    m = r["message"]
                    if as_json:
                        click.echo(json.dumps(m, default=str))
                    else:
                        detail = {k: v for k, v in m.items() if k not in ("event", "at")}
                        click.echo(f"{m.get('at', '')}  {m.get('event')}  {json.dumps(detail)}")
                if not follow:
                    return
                time.sleep(1.0)
        except KeyboardInterrupt:
            return


@main.command("human")
@click.option("--worker", default=None, help="Who answers (default: human:$USER).")
@click.option("--model", default="human", show_default=True,
              help="The resource of the human actors to serve.")
@common_options
@handle_errors
def human(worker: str | None, model: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Answer waiting human tickets at the terminal, one at a time.

    For each ticket it shows the subject and input and asks for the answer: a JSON object,
    or `s` to skip (the ticket goes back to the queue), or `q` to quit.

    \b
    Example:
      turing human --worker alice
    """
    import getpass
    import socket

    from turing_pg.executors import Context
    from turing_pg.executors.human import HumanExecutor

    worker = worker or f"human:{getpass.getuser()}@{socket.gethostname()}"
    with _client(dsn) as t:
        t.register_runner(worker, [model], hostname=socket.gethostname())
        person = HumanExecutor(Context(None, t))
        try:
            while not person.quit:
                batch = t.claim_batch(model, worker, 1)
                if not batch:
                    click.echo("no human ticket waiting")
                    return
                ticket = batch[0]
                result = person.run(Attempt(ticket, time.monotonic(), threading.Event()))
                if result.kind == "released":
                    t.release_worker(worker, [ticket.ticket_id], stopping=False)
                    continue
                saved = t.complete_ticket(ticket.ticket_id, ticket.lease_token, result.output)
                click.echo("saved" if saved else "not saved: the ticket was taken back "
                           "(lease expired or cancelled)")
        finally:
            t.release_worker(worker)


@actor.command("show")
@click.argument("name")
@common_options
@handle_errors
def actor_show(name: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Print an actor's full definition. Example: turing actor show scorer"""
    with _client(dsn) as t:
        rows = [r for r in t.actor_definitions() if r["name"] == name]
    if not rows:
        from turing_pg.db import UnknownActor

        raise UnknownActor(f'unknown actor "{name}"', "see `turing actor list`")
    _print(rows[0]["definition"], as_json,
           lambda d: "\n".join(f"{k}: {json.dumps(v, default=str)}" for k, v in d.items()))


@actor.command("set")
@click.argument("name")
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
@common_options
@handle_errors
def actor_set(name: str, assignments: tuple[str, ...], dsn: str | None, as_json: bool,
              verbose: int) -> None:
    """Change fields of an actor; VALUE is JSON when it parses, else text.

    \b
    Example:
      turing actor set scorer timeout='10 minutes' max_attempts=5
      turing actor set scorer 'outbox=["scored"]'
    """
    changes: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"expected FIELD=VALUE, got {item!r}")
        try:
            changes[key] = json.loads(value)
        except json.JSONDecodeError:
            changes[key] = value
    with _client(dsn) as t:
        t.set_actor(name, changes)
    _print({"actor": name, "changed": changes}, as_json, lambda d: f"updated {name}")
