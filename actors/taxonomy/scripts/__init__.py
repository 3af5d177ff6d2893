"""Script actors of the taxonomy demo, and the stdin/stdout protocol they share.

A script actor gets one JSON object on stdin::

    {"ticket_id": 1, "actor": "clean_skills", "subject_id": "...", "input": {...},
     "attempt": 1, "chain_id": 1}

and prints exactly one JSON value on stdout: the output the runner passes to the actor's
``on_complete`` as ``p_output``. Exit 0 is success; any other exit fails the attempt (the tail
of stderr becomes its error). Scripts never connect to the database: they compute, the
``on_complete`` SQL writes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


def run(compute: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """Read the ticket from stdin, print compute(ticket input) as JSON; exit code for main."""
    try:
        ticket = json.load(sys.stdin)
        output = compute(ticket["input"])
    except (ValueError, KeyError, TypeError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    json.dump(output, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
