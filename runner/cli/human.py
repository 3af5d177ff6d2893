"""`turing human`: a person answers waiting human tickets at the terminal."""

from __future__ import annotations

import threading
import time

import click

from turing_pg.cli.options import client, common_options, handle_errors
from turing_pg.db import ClaimedTicket, Turing
from turing_pg.execution import Attempt
from turing_pg.executors import Context
from turing_pg.executors.human import HumanExecutor


def _next_ticket(t: Turing, model: str, worker: str, skipped: set[int], skip_for: float
                 ) -> ClaimedTicket | None:
    """The next ticket this person has not skipped in this session, or None."""
    # why: a skipped ticket waits out skip_for behind the ready work, so the claim hands out
    # another; one that comes back later in the same session is passed over again. Each pass
    # pushes it back once more, so this ends after at most one claim per skipped ticket.
    for _ in range(len(skipped) + 1):
        batch = t.claim_batch(model, worker, 1)
        if not batch:
            return None
        ticket = batch[0]
        if ticket.ticket_id not in skipped:
            return ticket
        t.skip_ticket(worker, ticket.ticket_id, ticket.lease_token, skip_for)
    return None


@click.command("human")
@click.option("--worker", default=None, help="Who answers (default: human:$USER@host).")
@click.option("--model", default="human", show_default=True,
              help="The resource of the human actors to serve.")
@click.option("--skip-for", type=click.FloatRange(min=0), default=600.0, show_default=True,
              metavar="SECONDS", help="How long a skipped ticket waits before anyone is "
              "offered it again (this session never is).")
@common_options
@handle_errors
def human(worker: str | None, model: str, skip_for: float, dsn: str | None, as_json: bool,
          verbose: int) -> None:
    """Answer waiting human tickets at the terminal, one at a time.

    For each ticket it shows the actor's instructions (its prompt rendered with the input) and
    the input, text as text. Press Enter to answer, `s` to skip, `q` to quit. An object schema
    is asked field by field (numbered choices for an enum, y/n for a boolean); any other
    schema takes one JSON object. Every answer is checked against the actor's output_schema
    and asked again until it fits; only then is it saved. A skipped ticket goes back to the
    queue behind the other work (for --skip-for) and is not offered again in this session.

    \b
    Example:
      turing human --worker alice
    """
    import getpass
    import socket

    worker = worker or f"human:{getpass.getuser()}@{socket.gethostname()}"
    skipped: set[int] = set()
    with client(dsn) as t:
        t.register_runner(worker, [model], hostname=socket.gethostname())
        # why: the human executor shows the ticket and checks the answer; this command only
        # claims, hands over and reports, like a runner with one slot and a person in it.
        person = HumanExecutor(Context(None, t))
        try:
            while not person.quit:
                ticket = _next_ticket(t, model, worker, skipped, skip_for)
                if ticket is None:
                    click.echo(f"no other human ticket waiting ({len(skipped)} skipped)"
                               if skipped else "no human ticket waiting")
                    return
                result = person.run(Attempt(ticket, time.monotonic(), threading.Event()))
                if result.kind == "released":
                    if not person.quit:
                        skipped.add(ticket.ticket_id)
                        t.skip_ticket(worker, ticket.ticket_id, ticket.lease_token, skip_for)
                        click.echo("skipped")
                    continue
                saved = t.complete_ticket(ticket.ticket_id, ticket.lease_token, result.output)
                click.echo("saved" if saved else "not saved: the ticket was taken back "
                           "(lease expired or cancelled)")
        finally:
            # why: what is still claimed (the ticket shown when the person quit) goes back
            # to the queue at once, as it was.
            t.release_worker(worker)
