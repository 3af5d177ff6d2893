"""`turing submit | rerun | cancel | retry | dead | dead retry`: put work in, take it out, bring
it back."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TextIO

import click

from turing_pg.cli.options import (
    client,
    common_options,
    exit_codes,
    format_table,
    handle_errors,
    print_data,
)
from turing_pg.cli.params import LIMIT_OR_ALL, PRIORITY, TICKET_ID, parse_json
from turing_pg.db import InvalidArgument, UnknownTicket
from turing_pg.exits import Exit


@click.command("submit")
@click.argument("actor_name", metavar="ACTOR")
@click.argument("subject_ids", metavar="[SUBJECT]...", nargs=-1)
@click.option("--from-file", "from_file", type=click.File("r", encoding="utf-8"), default=None,
              help="Read subjects from this file, one per line (- for stdin); blank lines are "
                   "skipped.")
@click.option("--input", "input_json", default="{}",
              help="Ticket input as a JSON object (the same for every subject).")
@click.option("--priority", type=PRIORITY, default=None, help="Higher is claimed first.")
@common_options
@handle_errors
def submit(actor_name: str, subject_ids: tuple[str, ...], from_file: TextIO | None,
           input_json: str, priority: int | None, dsn: str | None, as_json: bool,
           verbose: int) -> None:
    """Ask ACTOR to work on SUBJECT now (a new chain), or on many subjects at once.

    One subject is refused if ACTOR already has an open ticket for it. Several (arguments or
    --from-file) go in one set-based call, turing.submit_many: subjects that already have an
    open ticket, or repeat an earlier one, are skipped and counted; a subject id the database
    refuses (over 1024 bytes) refuses them all, and nothing is submitted.

    \b
    Example:
      turing submit scorer 42 --input '{"title": "Nurse"}'
      turing submit scorer 42 43 44
      psql -Atc 'select id from jobs' | turing submit scorer --from-file -
    """
    data = parse_json(input_json, "--input")
    subjects = list(subject_ids)
    if from_file is not None:
        try:
            subjects += [line.rstrip("\r\n") for line in from_file if line.strip()]
        except UnicodeDecodeError as exc:
            raise InvalidArgument(
                f"--from-file {from_file.name} is not UTF-8 text (byte {exc.start})",
                "give a text file with one subject id per line") from None
    if not subjects:
        raise InvalidArgument("no subject to submit",
                              "name one or more subjects, or pass --from-file FILE (- for stdin)")
    if len(subjects) == 1 and from_file is None:
        with client(dsn) as t:
            ticket = t.submit(actor_name, subjects[0], data, priority)
        print_data({"ticket_id": ticket}, as_json, lambda d: f"ticket {d['ticket_id']} pending")
        return
    with client(dsn) as t:
        results = t.submit_many(actor_name, subjects, [data] * len(subjects), priority)
    skipped = Counter(r.skipped for r in results if r.skipped)
    summary = {
        "created": sum(1 for r in results if r.skipped is None),
        "open_ticket": skipped["open_ticket"], "repeated": skipped["repeated"],
    }
    print_data(
        {**summary, "tickets": [dataclasses.asdict(r) for r in results]}, as_json,
        lambda d: f"{d['created']} tickets pending; skipped {d['open_ticket']} with an open "
                  f"ticket, {d['repeated']} repeated",
    )


@click.command("rerun")
@click.argument("actor_name", metavar="ACTOR")
@click.option("--subject", "subject_id", default=None, metavar="SUBJECT",
              help="The finished subject to run again.")
@click.option("--all", "rerun_all", is_flag=True,
              help="Every finished subject the actor's work_query still returns.")
@common_options
@handle_errors
@exit_codes((Exit.OK, "tickets created (or none to create with --all)"),
            (Exit.UNKNOWN, "the work_query does not return SUBJECT"),
            (Exit.REFUSED, "SUBJECT has an open ticket already"))
def rerun(actor_name: str, subject_id: str | None, rerun_all: bool, dsn: str | None,
          as_json: bool, verbose: int) -> None:
    """Run ACTOR again on subjects it already finished. Discovery never re-runs a finished
    subject by itself (an on_complete that forgets to move its subject must not loop the GPU),
    so after resetting a domain row to the actor's inbox status, ask for it here. The input is
    what the work_query returns now.

    \b
    Example:
      turing rerun scorer --subject 42
      turing rerun scorer --all
    """
    if rerun_all == (subject_id is not None):
        raise InvalidArgument("say which subjects to run again",
                              "pass --subject SUBJECT for one, or --all for every finished one")
    with client(dsn) as t:
        rows = t.rerun(actor_name, subject_id)
    print_data(rows, as_json, lambda r: "\n".join(
        f"subject {x['subject_id']}: ticket {x['ticket_id']} pending" for x in r)
        or "nothing to run again: the work_query returns no finished subject")


@click.command("cancel")
@click.argument("ticket_id", type=TICKET_ID)
@click.option("--reason", default=None)
@common_options
@handle_errors
@exit_codes((Exit.OK, "cancelled"), (Exit.UNKNOWN, "or the ticket is not open: nothing changed"))
def cancel(ticket_id: int, reason: str | None, dsn: str | None, as_json: bool,
           verbose: int) -> None:
    """Cancel an open ticket (no retry). Example: turing cancel 1234 --reason 'bad input'"""
    with client(dsn) as t:
        ok = t.cancel_ticket(ticket_id, reason)
    if ok or as_json:
        print_data({"ticket_id": ticket_id, "cancelled": ok}, as_json, lambda d: "cancelled")
    if not ok:
        raise UnknownTicket(f"ticket {ticket_id} is not open: nothing changed",
                            "cancel a pending or running ticket, as `turing tickets --status "
                            "pending` lists them")


@click.group("dead", invoke_without_command=True)
@click.option("--limit", type=LIMIT_OR_ALL, default=50, show_default=True,
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
    with client(dsn) as t:
        rows = t.dead_letters(limit or None)
    print_data(rows, as_json, lambda r: format_table(r, ["ticket_id", "actor", "subject_id",
                                                         "attempt", "failure_kind",
                                                         "finished_at", "error"]))


@dead.command("retry")
@click.argument("ticket_ids", type=TICKET_ID, nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead letter.")
@common_options
@handle_errors
def dead_retry(ticket_ids: tuple[int, ...], retry_all: bool, dsn: str | None, as_json: bool,
               verbose: int) -> None:
    """Retry dead letters as new tickets. Example: turing dead retry 1234 1235"""
    with client(dsn) as t:
        ids = list(ticket_ids)
        if retry_all:
            ids = [r["ticket_id"] for r in t.view("v_dead_letters")]
        if not ids:
            raise InvalidArgument("no ticket to retry", "name ticket ids or pass --all")
        new = {i: t.retry_dead(i) for i in ids}
    print_data(new, as_json,
               lambda d: "\n".join(f"dead {k} -> new ticket {v}" for k, v in d.items()))


@click.command("retry")
@click.argument("ticket_id", type=TICKET_ID)
@common_options
@handle_errors
def retry(ticket_id: int, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Retry one dead ticket (same as `turing dead retry`). Example: turing retry 1234"""
    with client(dsn) as t:
        new = t.retry_dead(ticket_id)
    print_data({"ticket_id": new}, as_json, lambda d: f"new ticket {d['ticket_id']}")
