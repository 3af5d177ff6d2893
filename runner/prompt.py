"""Strict prompt rendering: `{name}` placeholders filled from a ticket's input.

A missing or NULL variable is an error naming it, so a literal placeholder never reaches a model
(the original system fed models unrendered `{session_9_output}` placeholders and got
hallucinations back). `{a.b}` reaches into JSON objects, `{{` and `}}` are literal braces, and
any other brace (a JSON example in the prompt) is left alone."""

from __future__ import annotations

import json
import re
from typing import Any

# why: only identifiers (optionally dotted) in single braces are placeholders, so `{"a": 1}` in
# a prompt's JSON example is text, not a variable.
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")


class PromptError(ValueError):
    """The template cannot be rendered from this input."""


def variables(template: str) -> list[str]:
    """The placeholder names a template uses, in order of first use."""
    seen: dict[str, None] = {}
    for m in _TOKEN.finditer(template):
        if m.group(1):
            seen.setdefault(m.group(1), None)
    return list(seen)


def _lookup(values: dict[str, Any], path: str) -> Any:
    current: Any = values
    for i, part in enumerate(path.split(".")):
        where = ".".join(path.split(".")[:i]) or "the input"
        if isinstance(current, dict):
            if part not in current:
                raise PromptError(
                    f"prompt variable {{{path}}}: {where} has no key {part!r} "
                    f"(available: {', '.join(sorted(current)) or 'none'})"
                )
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise PromptError(f"prompt variable {{{path}}}: {where} is not an object")
        if current is None:
            raise PromptError(f"prompt variable {{{path}}} is NULL in the ticket input")
    return current


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    # why: objects, lists, numbers and booleans render as JSON, the form a model reads best.
    return json.dumps(value, ensure_ascii=False)


def render(template: str, values: dict[str, Any]) -> str:
    """Fill every placeholder or raise PromptError naming the first one that cannot be filled."""

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return _text(_lookup(values, m.group(1)))

    return _TOKEN.sub(sub, template)
