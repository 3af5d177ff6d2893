"""When two outputs of an actor agree: the one comparison rule of the tools that compare runs
(`turing matrix` across models; a repeatability check across runs of one version).

Two outputs agree when they have the same shape and every leaf agrees:
* booleans, null, integers and strings the output_schema names as an `enum` (or `const`) are
  equal exactly;
* other numbers agree within `tolerance`, relative to the larger of 1 and their magnitudes;
* other strings agree when their normalised forms (case folded, whitespace collapsed,
  punctuation at the ends dropped) are at least `threshold` similar (difflib's ratio: 1.0 is
  equal);
* objects need the same keys, arrays the same length, each element agreeing in turn.
"""

from __future__ import annotations

import difflib
import itertools
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

THRESHOLD = 0.9
TOLERANCE = 0.01

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Rule:
    """How close text and numbers must be (see the module's docstring)."""

    threshold: float = THRESHOLD
    tolerance: float = TOLERANCE


def normalised(text: str) -> str:
    return _SPACES.sub(" ", text.casefold()).strip().strip(string.punctuation + " ")


def _exact(schema: Any) -> bool:
    return isinstance(schema, Mapping) and ("enum" in schema or "const" in schema)


def _child(schema: Any, key: str | int) -> Any:
    """The schema of one property (str key) or array item (int key), if the schema says."""
    if not isinstance(schema, Mapping):
        return None
    if isinstance(key, str):
        props = schema.get("properties")
        return props.get(key) if isinstance(props, Mapping) else None
    items = schema.get("items")
    return items if isinstance(items, Mapping) else None


def agree(a: Any, b: Any, schema: Any = None, rule: Rule = Rule()) -> bool:
    """Whether outputs `a` and `b` agree under `rule`, reading `schema` (the actor's
    output_schema) for the fields that must be equal exactly."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b or (type(a) is type(b) and a == b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(agree(a[k], b[k], _child(schema, k), rule)
                                            for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(agree(x, y, _child(schema, i), rule)
                                        for i, (x, y) in enumerate(zip(a, b, strict=True)))
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= rule.tolerance * max(1.0, abs(a), abs(b))
    if isinstance(a, str) and isinstance(b, str):
        if _exact(schema):
            return a == b
        x, y = normalised(a), normalised(b)
        return x == y or difflib.SequenceMatcher(None, x, y).ratio() >= rule.threshold
    return False


@dataclass(frozen=True)
class Pair:
    """The agreement of two runs over the same inputs: `agreed` of the `compared` inputs both
    answered validly (None when there were none)."""

    a: str
    b: str
    agreed: int
    compared: int

    @property
    def rate(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


def pairwise(outputs: Mapping[str, Sequence[tuple[bool, Any]]], schema: Any = None,
             rule: Rule = Rule()) -> list[Pair]:
    """Every pair of runs (each a list of (valid, output), one per input, in the same input
    order): how many inputs they agree on, among those both answered validly."""
    pairs = []
    for a, b in itertools.combinations(outputs, 2):
        both = [(x[1], y[1]) for x, y in zip(outputs[a], outputs[b], strict=True)
                if x[0] and y[0]]
        pairs.append(Pair(a, b, sum(agree(x, y, schema, rule) for x, y in both), len(both)))
    return pairs
