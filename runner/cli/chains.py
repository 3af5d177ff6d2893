"""`turing chain ID`: one chain's story, every attempt in order with what it made."""

from __future__ import annotations

from typing import Any

import click

from turing_pg.cli.options import (
    client,
    common_options,
    exit_codes,
    format_table,
    handle_errors,
    print_data,
)
from turing_pg.cli.params import LIMIT, TICKET_ID
from turing_pg.exits import Exit


def _clock(stamp: str | None) -> str:
    """The time of day of an ISO timestamp, to the millisecond (the date is in the header)."""
    return stamp[11:23] if stamp else ""


def _story_text(story: dict[str, Any]) -> str:
    p = story["progress"]
    header = (
        f"chain {story['chain_id']}: {p['attempts']} attempts, done {p['done']}, "
        f"open {p['open']}, dead {p['dead']}, retried {p['retried']}, "
        f"cancelled {p['cancelled']}; depth {p['depth']}; started {p['started_at']}"
        + (f", finished {p['finished_at']}" if p["finished_at"] else ", still open")
    )
    rows = [
        {
            "ticket": a["ticket_id"],
            "depth": a["depth"],
            "actor": a["actor"],
            "subject": a["subject_id"],
            "attempt": a["attempt"],
            "status": a["status"],
            "created": _clock(a["created_at"]),
            "started": _clock(a["started_at"]),
            "finished": _clock(a["finished_at"]),
            "ms": a["duration_ms"],
            "parent": a["parent_ticket_id"],
            "made": ",".join(str(c) for c in a["children"]),
            "error": a["error"],  # the table cuts it to fit, with an ellipsis
        }
        for a in story["attempts"]
    ]
    more = "\n(more attempts than shown: use --limit)" if story["truncated"] else ""
    return f"{header}\n{format_table(rows)}{more}"


@click.command("chain")
@exit_codes(Exit.OK, (Exit.UNKNOWN, "no ticket or chain has that id"))
@click.argument("id_", metavar="ID", type=TICKET_ID)
@click.option("--limit", type=LIMIT, default=1000, show_default=True,
              help="Show at most this many attempts (the progress counts all of them).")
@common_options
@handle_errors
def chain(id_: int, limit: int, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Every attempt of a chain in order, with its status, timing, error, parent and the tickets
    it made (spawned or handed on), and the chain's progress: done, open, dead.

    ID is a chain id or the id of any ticket in the chain (a chain is named by its root ticket,
    so both name the same chain). A chain follows status hand-offs: work that an actor
    discovers because another actor's on_complete put it in its inbox continues the chain.

    \b
    Example:
      turing chain 1234
      turing chain 1234 --json | jq '.progress'
    """
    with client(dsn) as t:
        story = t.chain_story(id_, limit)
    print_data(story, as_json, _story_text)
