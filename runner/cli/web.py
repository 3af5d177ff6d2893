"""`turing web`: serve the dashboard (turing_pg.web) to a browser."""

from __future__ import annotations

import socket

import click

from turing_pg.cli.options import exit_codes, handle_errors, target_dsn
from turing_pg.db import InvalidArgument
from turing_pg.exits import Exit


def _check_address(host: str, port: int) -> None:
    """Say in one sentence why the dashboard cannot listen there, before uvicorn would log it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidArgument(f"--host {host}: not an address of this machine ({exc})",
                              "pass an IP address or name such as 127.0.0.1 or 0.0.0.0") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InvalidArgument(f"cannot listen on {host}:{port}: {exc.strerror}",
                                  "pass another --port (or stop what uses it)") from None


@click.command("web")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True,
              help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; the default answers this machine only.")
@click.option(
    "--dsn", envvar="TURING_DSN", default=None, metavar="DSN",
    help="The server and database to show (env TURING_DSN; its user and password are not "
         "used: each browser logs in as its own PostgreSQL login). Default: the embedded "
         "server.")
@click.option("-v", "--verbose", count=True, help="Log each request (-vv for debug).")
@exit_codes(Exit.OK, Exit.USAGE, Exit.DB_UNREACHABLE)
@handle_errors
def web(port: int, host: str, dsn: str | None, verbose: int) -> None:
    """The pipeline live in a browser: the graph with each actor's counts, runners, alerts,
    charts, dead letters, tickets and chains; retry, cancel, pause and resume.

    Log in with a PostgreSQL login: a member of turing_viewer reads, turing_admin also acts;
    PostgreSQL checks each request, and a superuser's login is refused.

    \b
    Example:
      turing web                       # http://127.0.0.1:8765
      turing web --port 9000 --dsn postgresql://db.internal/pipeline
    """
    import uvicorn

    from turing_pg.web.app import create_app

    target = target_dsn(dsn)
    _check_address(host, port)
    app = create_app(target)
    click.echo(f"turing web on http://{host}:{port} (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="info" if verbose else "warning",
                access_log=bool(verbose))
