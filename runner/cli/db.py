"""`turing db up | status | dsn | stop`: the schema and the embedded server."""

from __future__ import annotations

import click

from turing_pg.cli.options import common_options, handle_errors, print_data, target_dsn
from turing_pg.credentials import mask_dsn


@click.group()
def db() -> None:
    """Create, upgrade and inspect the database (`turing db up`)."""


@db.command("up")
@common_options
@handle_errors
def db_up(dsn: str | None, as_json: bool, verbose: int) -> None:
    """Create or upgrade the schema (safe to run twice, or twice at once). The DSN in the
    --json output has its password masked (`turing db dsn` prints it whole).

    \b
    Example:
      turing db up
      turing db up --dsn postgresql://me@db.example/pipelines
    """
    from turing_pg import schema

    target = target_dsn(dsn)
    done = schema.upgrade(target)
    print_data({"dsn": mask_dsn(target), "done": done}, as_json,
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

    st = schema.status(target_dsn(dsn))
    data = {
        "server_version": st.server_version,
        "pgmq_installed": st.pgmq_installed,
        "applied": [f"{v:04d}_{n}" for v, n in st.applied],
        "pending": [f"{v:04d}_{n}" for v, n in st.pending],
    }
    print_data(data, as_json, lambda d: "\n".join([
        f"PostgreSQL {d['server_version']}; "
        f"pgmq {'installed' if d['pgmq_installed'] else 'missing'}",
        "applied: " + (", ".join(d["applied"]) or "none"),
        "pending: " + (", ".join(d["pending"]) or "none (up to date)"),
    ]))


@db.command("dsn")
@handle_errors
def db_dsn() -> None:
    """Print the DSN of the embedded server (starting it if needed), e.g. for psql.

    The one command that prints a DSN whole, password included: that is what it is asked for;
    every other output masks passwords.

    \b
    Example:
      psql "$(turing db dsn)"
    """
    click.echo(target_dsn(None))


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
