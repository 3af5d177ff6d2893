"""Repeatability (RAQ): how much the runs of the same inputs agree, field by field.

The database runs the sample (turing.start_raq makes the tickets, runners run them) and stores
the figures (turing.finish_raq); this module only compares answers, since a text similarity is
easier to say in Python than in SQL. What "equal" means for text and numbers is
turing_pg.agreement's (the rule `turing matrix` uses too); here it is graded per field.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from turing_pg.agreement import agree, normalised


@dataclass(frozen=True)
class FieldAgreement:
    field: str
    compared_as: str  # exact, text or number
    agreement: float

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "compared_as": self.compared_as,
                "agreement": self.agreement}


def compared_as(field_schema: Mapping[str, Any] | None, values: Iterable[Any]) -> str:
    """How a field's answers are compared: by its schema (enum, boolean and integer exact,
    string text, number with a tolerance), else by the values it got."""
    schema = field_schema or {}
    kind = schema.get("type")
    if "enum" in schema or "const" in schema or kind in ("boolean", "integer"):
        return "exact"
    if kind == "string":
        return "text"
    if kind == "number":
        return "number"
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, str) for v in present):
        return "text"
    if present and all(isinstance(v, float) and not isinstance(v, bool) for v in present):
        return "number"
    return "exact"


def _text_similarity(a: Any, b: Any) -> float:
    if not isinstance(a, str) or not isinstance(b, str):
        return 1.0 if a == b else 0.0
    return difflib.SequenceMatcher(None, normalised(a), normalised(b)).ratio()


def _canonical(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def item_agreement(values: Sequence[Any], how: str) -> float:
    """The agreement of one input's answers for one field: exact and number, the share of runs
    that agree with the most common answer; text, the mean similarity of every pair."""
    if len(values) <= 1:
        return 1.0
    if how == "text":
        pairs = [(a, b) for i, a in enumerate(values) for b in values[i + 1:]]
        return sum(_text_similarity(a, b) for a, b in pairs) / len(pairs)
    if how == "number":
        # why: agreement.agree's tolerance (1 % of the larger, at least of 1) for numbers
        return max(sum(1 for v in values if agree(v, w)) for w in values) / len(values)
    counts = Counter(_canonical(v) for v in values)
    return counts.most_common(1)[0][1] / len(values)


def agreement(answers: Mapping[int, Sequence[Any]],
              output_schema: Mapping[str, Any] | None) -> list[FieldAgreement]:
    """Per output field, the mean over inputs of item_agreement. `answers` maps each input to
    the outputs its runs completed with (failed runs left out: the failure rate counts them).
    An output that is not an object is compared whole, as the field "(output)"."""
    properties = (output_schema or {}).get("properties") or {}
    fields: set[str] = set()
    for outputs in answers.values():
        for out in outputs:
            fields.update(out.keys() if isinstance(out, dict) else ["(output)"])
    result = []
    for name in sorted(fields):
        per_item = {i: [(o.get(name) if isinstance(o, dict) else o) for o in outs]
                    for i, outs in answers.items() if outs}
        how = compared_as(properties.get(name),
                          (v for vals in per_item.values() for v in vals))
        scores = [item_agreement(vals, how) for vals in per_item.values()]
        if scores:
            result.append(FieldAgreement(name, how, sum(scores) / len(scores)))
    return result
