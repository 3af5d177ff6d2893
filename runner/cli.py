"""`turing`: the operator's command line. A thin shell over the core (db, schema, pgserver).

Exit codes: 0 ok; 1 unexpected error; 2 bad usage or argument; 3 invalid definition (work_query,
actor, output); 4 unknown actor/model/ticket; 5 refused by an invariant (duplicate open ticket,
chain too deep, loop, illegal transition); 6 a work_query failed at run time; 7 database
unreachable; 8 schema error (migration failed or changed).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from turing_pg import __version__
from turing_pg.actor_files import load_definitions
from turing_pg.db import InvalidArgument, Turing, TuringError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_SCHEMA = 8


def common_options(f: F) -> F:
    """--dsn, --json and -v on every command that talks to the database."""
    f = click.option(
        "--dsn", envvar="TURING_DSN", default=None, metavar="DSN",
        help="PostgreSQL to use (env TURING_DSN). Default: the embedded server, started on demand.",
    )(f)
    f = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)
    f = click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")(f)
    return f


def handle_errors(f: F) -> F:
    """Map domain errors to a sentence and a fixed exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from turing_pg.pgserver import EmbeddedServerError
        from turing_pg.schema import SchemaError

        verbose = kwargs.get("verbose", 0)
        logging.basicConfig(level=logging.WARNING - 10 * min(verbose or 0, 2))
        try:
            return f(*args, **kwargs)
        except TuringError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            sys.exit(exc.exit_code)
        except SchemaError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(EXIT_SCHEMA)
        except EmbeddedServerError as exc:
            click.secho(f"error: embedded PostgreSQL: {exc}", fg="red", err=True)
            click.echo("hint: pass --dsn to use another server, or see the log named above",
                       err=True)
            sys.exit(7)

    return wrapper  # type: ignore[return-value]


def _dsn(dsn: str | None) -> str:
    from turing_pg.pgserver import resolve_dsn

    return resolve_dsn(dsn)


def _client(dsn: str | None) -> Turing:
    return Turing(_dsn(dsn), max_size=2)


def _print(data: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    elif text is not None:
        click.echo(text(data))
    else:
        click.echo(data)


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "(none)"
    columns = columns or list(rows[0].keys())
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="turing")
def main() -> None:
    """Turing: chain AI models, scripts and humans over data in PostgreSQL.

    \b
    Example:
      turing db up                 # create the schema on the embedded server
      turing actor add -f actor.yaml
      turing-runner --model cpu    # in another terminal
      turing status
    """


# -- db ------------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Create, upgrade and inspect the database (`turing db up`)."""


@db.command("up")
@common_options
@handle_errors
def db_up(dsn: str | None, as_json: bool, verbose: int) -> None:
    """Create or upgrade the schema (safe to run twice, or twice at once).

    \b
    Example:
      turing db up
      turing db up --dsn postgresql://me@db.example/pipelines
    """
    from turing_pg import schema

    target = _dsn(dsn)
    done = schema.upgrade(target)
    _print({"dsn": target, "done": done}, as_json,
           lambda d: "\n".join(d["done"]) or "schema is up to date")


@db.command("status")
@common_options
@handle_errors
def db_status(dsn: str | None, as_json: bool, verbose: int) -> None:
    """Show applied and pending migrations and the server version.

    \b
    Example:
      turing db status --json
    """
    from turing_pg import schema

    st = schema.status(_dsn(dsn))
    data = {
        "server_version": st.server_version,
        "pgmq_installed": st.pgmq_installed,
        "applied": [f"{v:04d}_{n}" for v, n in st.applied],
        "pending": [f"{v:04d}_{n}" for v, n in st.pending],
    }
    _print(data, as_json, lambda d: "\n".join([
        f"PostgreSQL {d['server_version']}; "
        f"pgmq {'installed' if d['pgmq_installed'] else 'missing'}",
        "applied: " + (", ".join(d["applied"]) or "none"),
        "pending: " + (", ".join(d["pending"]) or "none (up to date)"),
    ]))


@db.command("dsn")
@handle_errors
def db_dsn() -> None:
    """Print the DSN of the embedded server (starting it if needed), e.g. for psql.

    \b
    Example:
      psql "$(turing db dsn)"
    """
    click.echo(_dsn(None))


@db.command("stop")
@handle_errors
def db_stop() -> None:
    """Stop the embedded server (runners connected to it will reconnect when it is back).

    \b
    Example:
      turing db stop
    """
    from turing_pg.pgserver import EmbeddedServer

    stopped = EmbeddedServer().stop()
    click.echo("stopped" if stopped else "the embedded server was not running")


# -- actors --------------------------------------------------------------------------------------
@main.group()
def actor() -> None:
    """Register and inspect actors."""


@actor.command("add")
@click.option("-f", "--file", "path", type=click.Path(exists=True, path_type=Path), required=True,
              help="YAML file with one actor, or a list under `actors:`.")
@common_options
@handle_errors
def actor_add(path: Path, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Create or replace actors from a YAML file (validates every work_query).

    \b
    Example:
      turing actor add -f actors/scorer.yaml
    """
    definitions = load_definitions(path)
    with _client(dsn) as t:
        ids = {d["name"]: t.register_actor(d) for d in definitions}
    _print(ids, as_json, lambda d: "\n".join(f"registered {k} (id {v})" for k, v in d.items()))


@actor.command("list")
@common_options
@handle_errors
def actor_list(dsn: str | None, as_json: bool, verbose: int) -> None:
    """List actors with their model and open work.

    \b
    Example:
      turing actor list --json
    """
    with _client(dsn) as t:
        rows = [s.__dict__ for s in t.startup_state()]
    _print(rows, as_json, _table)


@actor.command("enable")
@click.argument("name")
@common_options
@handle_errors
def actor_enable(name: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Enable an actor. Example: turing actor enable scorer"""
    with _client(dsn) as t:
        t.set_actor_enabled(name, True)
    _print({"actor": name, "enabled": True}, as_json, lambda d: f"enabled {name}")


@actor.command("disable")
@click.argument("name")
@common_options
@handle_errors
def actor_disable(name: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Disable an actor (its tickets wait). Example: turing actor disable scorer"""
    with _client(dsn) as t:
        t.set_actor_enabled(name, False)
    _print({"actor": name, "enabled": False}, as_json, lambda d: f"disabled {name}")


# -- work ----------------------------------------------------------------------------------------
@main.command("submit")
@click.argument("actor_name", metavar="ACTOR")
@click.argument("subject_id", metavar="SUBJECT")
@click.option("--input", "input_json", default="{}", help="Ticket input as a JSON object.")
@click.option("--priority", type=int, default=None, help="Higher is claimed first.")
@common_options
@handle_errors
def submit(actor_name: str, subject_id: str, input_json: str, priority: int | None,
           dsn: str | None, as_json: bool, verbose: int) -> None:
    """Ask ACTOR to work on SUBJECT now (a new chain).

    \b
    Example:
      turing submit scorer 42 --input '{"title": "Nurse"}'
    """
    try:
        data = json.loads(input_json)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"--input is not JSON: {exc}", "pass a JSON object") from exc
    with _client(dsn) as t:
        ticket = t.submit(actor_name, subject_id, data, priority)
    _print({"ticket_id": ticket}, as_json, lambda d: f"ticket {d['ticket_id']} pending")


@main.command("cancel")
@click.argument("ticket_id", type=int)
@click.option("--reason", default=None)
@common_options
@handle_errors
def cancel(ticket_id: int, reason: str | None, dsn: str | None, as_json: bool,
           verbose: int) -> None:
    """Cancel an open ticket (no retry). Example: turing cancel 1234 --reason 'bad input'"""
    with _client(dsn) as t:
        ok = t.cancel_ticket(ticket_id, reason)
    _print({"ticket_id": ticket_id, "cancelled": ok}, as_json,
           lambda d: "cancelled" if ok else "not open (nothing changed)")
    if not ok:
        sys.exit(4)


@main.command("reap")
@common_options
@handle_errors
def reap(dsn: str | None, as_json: bool, verbose: int) -> None:
    """Take back expired leases now (runners and tick do it too). Example: turing reap"""
    with _client(dsn) as t:
        n = t.reap("cli")
    _print({"reaped": n}, as_json, lambda d: f"reaped {d['reaped']}")


@main.command("tick")
@common_options
@handle_errors
def tick(dsn: str | None, as_json: bool, verbose: int) -> None:
    """Reap, discover, compute metrics, prune history: run it from cron every minute.

    \b
    Example (crontab):
      * * * * * TURING_DSN=postgresql://... turing tick
    """
    with _client(dsn) as t:
        result = t.tick("cli")
    _print(result, as_json, lambda d: ", ".join(f"{k} {v}" for k, v in d.items()))


@main.command("metrics")
@click.option("--day", default=None, help="YYYY-MM-DD (default today).")
@common_options
@handle_errors
def metrics(day: str | None, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Compute and show latency/failure metrics and timeout recommendations.

    \b
    Example:
      turing metrics --day 2026-11-21
    """
    with _client(dsn) as t:
        t.compute_metrics(day)
        rows = t.view("v_timeout_recommendations")
    _print(rows, as_json, _table)


@main.command("demo")
@click.option("--limit", type=int, default=None,
              help="Load only the first N sample skills (default: all of them).")
@click.option("--ollama-host", envvar="TURING_OLLAMA_HOST", default=None,
              help="A real Ollama to use when it answers; otherwise a simulated one is started.")
@click.option("--time-scale", type=float, default=0.02, show_default=True,
              help="Speed of the simulated GPU (1.0 = real-time load and token latencies).")
@click.option("--timeout", "timeout_s", type=float, default=600, show_default=True,
              help="Give up waiting for the pipeline to drain after this many seconds.")
@common_options
@handle_errors
def demo(limit: int | None, ollama_host: str | None, time_scale: float, timeout_s: float,
         dsn: str | None, as_json: bool, verbose: int) -> None:
    """Run the taxonomy demo pipeline end to end (embedded server by default).

    \b
    Example:
      turing demo                 # everything simulated, about a minute
      turing demo --limit 40      # a quick look
    """
    from turing_pg.demo import run_demo

    target = _dsn(dsn)
    result = run_demo(target, limit=limit, ollama_host=ollama_host, time_scale=time_scale,
                      timeout_s=timeout_s, progress=lambda m: click.echo(m, err=as_json))
    data = {"seconds": round(result.seconds, 1), "drained": result.drained,
            "simulated": result.simulated, "counts": result.counts,
            "dashboard": result.dashboard, "taxonomy": result.tree, "dsn": target}
    _print(data, as_json, lambda d: "\n".join([
        "", "This run (finished attempts per actor):", _table(d["counts"]),
        "", "Dashboard (turing status):",
        _table(d["dashboard"], ["actor", "model", "kind", "enabled", "pending", "running",
                                "dead", "done_last_hour", "p95_ms"]),
        "", d["taxonomy"],
        *(["(simulated model answers: the placements are deterministic but arbitrary; "
           "use --ollama-host with a real Ollama for real ones)"] if d["simulated"] else []),
        f"{'drained' if d['drained'] else 'NOT drained'} in {d['seconds']} s; "
        "explore with: psql \"$(turing db dsn)\"",
    ]))
    if not result.drained:
        sys.exit(1)


def _register_more_commands() -> None:
    from turing_pg import cli_ops  # noqa: F401  (registers its commands on `main`)


_register_more_commands()

if __name__ == "__main__":  # pragma: no cover
    # why: under `python -m` this file is __main__; run the `main` that cli_ops registered on.
    from turing_pg.cli import main as _main

    _main()
