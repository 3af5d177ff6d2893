"""The one table of exit codes, shared by `turing`, `turing-runner` and the domain errors.

It lives beside the core, not in the CLI, so `turing_pg.db` can give each `TuringError` its code
without the core importing the CLI. The `--help` texts that list exit codes are rendered from it
(`describe`), and a test reads them back against it.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """An exit code and the phrase that documents it (the README's and `--help`'s wording)."""

    doc: str

    def __new__(cls, code: int, doc: str) -> Exit:
        member = int.__new__(cls, code)
        member._value_ = code
        member.doc = doc
        return member

    OK = 0, "ok"
    ERROR = 1, "unexpected error"
    USAGE = 2, "bad usage or argument"
    INVALID_DEFINITION = 3, "invalid definition"
    UNKNOWN = 4, "unknown actor/model/ticket"
    REFUSED = 5, "refused by an invariant"
    WORK_QUERY_FAILED = 6, "work_query failed at run time"
    DB_UNREACHABLE = 7, "database unreachable"
    SCHEMA = 8, "schema error"
    PERMISSION = 9, "permission denied"


def describe(*codes: Exit | tuple[Exit, str], others: str | None = None) -> str:
    """The sentence `Exit codes: 0 ok; 3 invalid definition (work_query, actor, output); …` for
    the given codes, in order; a code may come with a detail for the command at hand, and
    `others` ends the list (e.g. "the others as in `turing --help`")."""
    parts = []
    for item in codes:
        code, detail = item if isinstance(item, tuple) else (item, "")
        parts.append(f"{code.value} {code.doc}" + (f" ({detail})" if detail else ""))
    if others:
        parts.append(others)
    return "Exit codes: " + "; ".join(parts) + "."
