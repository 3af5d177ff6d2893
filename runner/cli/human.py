"""`turing human`: a person answers waiting human tickets at the terminal."""

from __future__ import annotations

import threading
import time

import click

from turing_pg.cli.options import client, common_options, handle_errors
from turing_pg.execution import Attempt
from turing_pg.executors import Context
from turing_pg.executors.human import HumanExecutor


@click.command("human")
@click.option("--worker", default=None, help="Who answers (default: human:$USER).")
@click.option("--model", default="human", show_default=True,
              help="The resource of the human actors to serve.")
@common_options
@handle_errors
def human(worker: str | None, model: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Answer waiting human tickets at the terminal, one at a time.

    For each ticket it shows the actor's instructions with the input, the input and the answer
    schema, and asks for the answer: a JSON object (checked against the schema, asked again
    when it does not fit), or `s` to skip (the ticket goes back to the queue), or `q` to quit.

    \b
    Example:
      turing human --worker alice
    """
    import getpass
    import socket

    worker = worker or f"human:{getpass.getuser()}@{socket.gethostname()}"
    with client(dsn) as t:
        t.register_runner(worker, [model], hostname=socket.gethostname())
        # why: the human executor shows the ticket and checks the answer; this command only
        # claims, hands over and reports, like a runner with one slot and a person in it.
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
