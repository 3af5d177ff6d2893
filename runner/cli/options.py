"""What every `turing` command shares: the --dsn/--json/-v options, the error handler that maps
domain errors to a sentence and an exit code, the client factory and the output helpers.

Command modules import these from here, never from `turing_pg.cli` (whose `__init__` imports
the command modules), so the package has no import cycle.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import psycopg

from turing_pg.cli import output
from turing_pg.credentials import hide, redact
from turing_pg.db import Turing, TuringError, check_dsn, map_error
from turing_pg.exits import Exit, describe

F = TypeVar("F", bound=Callable[..., Any])


def common_options(f: F) -> F:
    """--dsn, --json and -v on every command that talks to the database."""
    f = click.option(
        "--dsn", envvar="TURING_DSN", default=None, metavar="DSN",
        help="PostgreSQL to use (env TURING_DSN). Default: the embedded server, started on demand.",
    )(f)
    f = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)
    f = click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")(f)
    return f


OTHER_EXIT_CODES = "the others as in `turing --help`"


def exit_codes(*codes: Exit | tuple[Exit, str],
               others: str | None = OTHER_EXIT_CODES) -> Callable[[F], F]:
    """Append the `Exit codes: …` paragraph, rendered from the Exit table, to a command's
    docstring, which click makes its --help: put it below `@click.command`."""

    def decorate(f: F) -> F:
        f.__doc__ = f"{inspect.cleandoc(f.__doc__ or '')}\n\n{describe(*codes, others=others)}"
        return f

    return decorate


# what the safety net of handle_errors adds to its sentence; no user mistake may end there
UNEXPECTED_HINT = "this is a bug in Turing, not your input: run with -v for the traceback"


def _error(message: str, hint: str | None = None) -> None:
    click.secho(f"error: {redact(message)}", fg="red" if output.colour_wanted(sys.stderr) else None,
                err=True)
    if hint:
        click.echo(f"hint: {redact(hint)}", err=True)


def handle_errors(f: F) -> F:
    """Map domain errors to a sentence and a fixed exit code; no message carries a password
    the command was given (--dsn / TURING_DSN, --ollama-host)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from turing_pg.pgserver import EmbeddedServerError
        from turing_pg.schema import SchemaError

        hide(kwargs.get("dsn"), os.environ.get("TURING_DSN"), kwargs.get("ollama_host"))
        verbose = kwargs.get("verbose", 0)
        logging.basicConfig(level=logging.WARNING - 10 * min(verbose or 0, 2))
        try:
            return f(*args, **kwargs)
        except TuringError as exc:
            _error(exc.message, exc.hint)
            sys.exit(exc.exit_code)
        except SchemaError as exc:
            _error(str(exc))
            sys.exit(Exit.SCHEMA)
        except EmbeddedServerError as exc:
            _error(f"embedded PostgreSQL: {exc}",
                   "pass --dsn to use another server, or see the log named above")
            sys.exit(Exit.DB_UNREACHABLE)
        except psycopg.Error as exc:
            # why: the core maps the errors of its own calls; a command that connects by
            # itself (db up, db status) gets the same mapping here.
            mapped = map_error(exc)
            if isinstance(mapped, TuringError):
                _error(mapped.message, mapped.hint)
                sys.exit(mapped.exit_code)
            # why: an error the core does not map is still one sentence, not a traceback
            # (-vv keeps the traceback for a bug report); its SQLSTATE says what it was.
            if (verbose or 0) >= 2:
                logging.getLogger("turing").exception("unmapped database error")
            _error(f"the database refused: {exc.diag.message_primary or exc} "
                   f"(SQLSTATE {exc.sqlstate or 'none'})")
            sys.exit(Exit.ERROR)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own: a usage error, --help, Ctrl-C at a prompt
        except Exception as exc:
            # why: the safety net. A user's mistake has its own sentence above (the catalogue
            # test fails when one lands here); anything else is a bug: one line, the traceback
            # with -v for the report.
            if verbose:
                logging.getLogger("turing").exception("unexpected error")
            _error(f"unexpected {type(exc).__name__}: {str(exc)[:200]}",
                   UNEXPECTED_HINT)
            sys.exit(Exit.ERROR)

    return wrapper  # type: ignore[return-value]


def target_dsn(dsn: str | None) -> str:
    """The DSN given, else $TURING_DSN, else the embedded server's (started on demand); a
    DSN that is not a connection string is refused (InvalidArgument)."""
    from turing_pg.pgserver import resolve_dsn

    return check_dsn(resolve_dsn(dsn))


def client(dsn: str | None) -> Turing:
    return Turing(target_dsn(dsn), max_size=2)


def print_data(data: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    """JSON with --json (durations in seconds, timestamps ISO 8601, numbers as numbers), else
    `text(data)` (or the data itself)."""
    if as_json:
        out = output.to_json(data)
    elif text is not None:
        out = text(data)
    else:
        out = str(data)
    click.echo(redact(out))


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Rows as a table that fits the terminal (all keys of the first row unless columns are
    given): see turing_pg.cli.output for how each cell reads."""
    return output.format_table(rows, columns)
