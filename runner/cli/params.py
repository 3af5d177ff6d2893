"""The click types and argument parsers `turing` commands share, so each kind of value (a ticket
id, a row limit, a priority, a JSON argument) is refused the same way everywhere, with click's
one sentence and exit 2, before anything reaches the database.

The ranges are those of the SQL columns the values land in (bigint ids, integer priorities and
limits): a value outside them would otherwise reach PostgreSQL as a numeric, where no function
signature matches and the operator sees a function-does-not-exist error instead of the rule.
"""

from __future__ import annotations

import json
from typing import Any

import click

from turing_pg.db import InvalidArgument

BIGINT_MAX = 2**63 - 1
INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1



class AtLeast(click.IntRange):
    """A count of at least `least`. One above what the SQL argument holds is taken as its
    largest value (a limit of 10^12 rows means "all of them"), so the help says only
    `x>=least`."""

    def __init__(self, least: int) -> None:
        super().__init__(least, INTEGER_MAX)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        number = click.INT.convert(value, param, ctx)
        return super().convert(min(number, INTEGER_MAX), param, ctx)

    def _describe_range(self) -> str:
        return f"x>={self.min}"


# ticket and chain ids are bigint identities, which start at 1
TICKET_ID = click.IntRange(1, BIGINT_MAX)
# at least one row (0 asks for nothing)
LIMIT = AtLeast(1)
# the same, where 0 means "no limit" (`turing dead --limit 0`), or a count that may be 0
LIMIT_OR_ALL = AtLeast(0)
PRIORITY = click.IntRange(INTEGER_MIN, INTEGER_MAX)
# seconds of a wait or an interval: more than nothing
SECONDS = click.FloatRange(0, min_open=True)

# why: a ticket input is decoded by the runner (Python's recursion limit, ~1000 levels, less
# the stack in use) and by every consumer of the events; no real input needs more than a few
# levels, so the CLI refuses deeper JSON with a sentence instead of a RecursionError.
MAX_JSON_DEPTH = 100


def _depth(value: Any) -> int:
    """How deeply `value` nests arrays and objects (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((v, depth) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(what: str) -> InvalidArgument:
    return InvalidArgument(f"{what} nests arrays or objects more than {MAX_JSON_DEPTH} levels "
                           "deep", f"flatten it to at most {MAX_JSON_DEPTH} levels of nesting")


def _loads(text: str, what: str) -> Any:
    """JSON of `text`; ValueError when it is not JSON (NaN and Infinity included, which
    PostgreSQL's JSON refuses), InvalidArgument when it nests deeper than MAX_JSON_DEPTH."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise _too_deep(what) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise _too_deep(what)
    return value


def parse_json(text: str, what: str) -> Any:
    """`text` decoded as JSON, or InvalidArgument saying why not and what to write instead."""
    try:
        return _loads(text, what)
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not JSON: {exc}",
                              'write a JSON object, e.g. \'{"title": "Nurse"}\'') from None


def parse_value(text: str, what: str) -> Any:
    """A FIELD=VALUE value: JSON when it parses as JSON, else the text itself (so `timeout=5
    minutes` needs no quotes); JSON nested too deeply is refused as in parse_json."""
    try:
        return _loads(text, what)
    except ValueError:
        return text
