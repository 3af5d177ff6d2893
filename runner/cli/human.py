"""`turing human`: a person answers waiting human tickets at the terminal."""

from __future__ import annotations

import json

import click

from turing_pg.cli.options import client, common_options, handle_errors


@click.command("human")
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

    worker = worker or f"human:{getpass.getuser()}@{socket.gethostname()}"
    with client(dsn) as t:
        t.register_runner(worker, [model], hostname=socket.gethostname())
        try:
            while True:
                batch = t.claim_batch(model, worker, 1)
                if not batch:
                    click.echo("no human ticket waiting")
                    return
                ticket = batch[0]
                click.echo(f"\nticket {ticket.ticket_id} · actor {ticket.actor} · subject "
                           f"{ticket.subject_id} · attempt {ticket.attempt}")
                click.echo(json.dumps(ticket.input, indent=2, default=str))
                if ticket.output_schema:
                    click.echo("answer schema: " + json.dumps(ticket.output_schema))
                while True:
                    answer = click.prompt("answer (JSON object, s = skip, q = quit)")
                    if answer in ("s", "q"):
                        t.release_worker(worker, [ticket.ticket_id], stopping=False)
                        if answer == "q":
                            return
                        break
                    try:
                        output = json.loads(answer)
                    except json.JSONDecodeError as exc:
                        click.echo(f"not JSON: {exc}; try again")
                        continue
                    if not isinstance(output, dict):
                        click.echo("the answer must be a JSON object; try again")
                        continue
                    saved = t.complete_ticket(ticket.ticket_id, ticket.lease_token, output)
                    click.echo("saved" if saved else "not saved: the ticket was taken back "
                               "(lease expired or cancelled)")
                    break
        finally:
            t.release_worker(worker)
