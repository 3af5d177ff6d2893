"""`turing`: the operator's command line, a thin shell over the core (db, schema, pgserver).

One module per command group; what they share (--dsn/--json/-v, the error handler, the client,
the output helpers) is in `turing_pg.cli.options`, which the command modules import instead of
this package. The exit codes are the table in `turing_pg.exits`. `turing-runner` is
`turing_pg.cli.runner`.
"""

from __future__ import annotations

import click

from turing_pg import __version__
from turing_pg.cli import (
    actors,
    chains,
    db,
    demo,
    human,
    maintenance,
    monitor,
    raq,
    story,
    trials,
    web,
    work,
)
from turing_pg.cli.options import exit_codes
from turing_pg.exits import Exit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="turing")
@exit_codes(
    Exit.OK,
    (Exit.ERROR, "or `check` found an error, or `demo` did not drain"),
    Exit.USAGE,
    (Exit.INVALID_DEFINITION, "work_query, actor, output"),
    (Exit.UNKNOWN, "or `cancel` found the ticket not open"),
    (Exit.REFUSED, "duplicate open ticket, chain too deep, loop, illegal transition"),
    Exit.WORK_QUERY_FAILED,
    Exit.DB_UNREACHABLE,
    (Exit.SCHEMA, "migration failed or changed"),
    (Exit.PERMISSION, "the login's role may not do that; the message names the role needed"),
    others=None,
)
def main() -> None:
    """Turing: chain AI models, scripts and humans over data in PostgreSQL.

    \b
    Example:
      turing db up                 # create the schema on the embedded server
      turing actor add -f actor.yaml
      turing-runner --model cpu    # in another terminal
      turing status
    """


for _command in (
    db.db,
    actors.actor,
    work.submit, work.rerun, work.cancel, work.retry, work.dead,
    maintenance.reap, maintenance.tick, maintenance.metrics,
    monitor.status, monitor.top, monitor.graph, monitor.check, monitor.tickets, monitor.events,
    chains.chain,
    human.human,
    raq.raq, raq.qa,
    demo.demo,
    trials.harness, trials.matrix, trials.chat,
    web.web,
):
    main.add_command(_command)
monitor.tickets.add_command(story.show)
