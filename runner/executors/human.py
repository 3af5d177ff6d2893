"""The `human` executor (kind human): a person answers one ticket at the terminal.

No runner runs it (a runner refuses human tickets); `turing human` claims the tickets of the
human resource one at a time and calls this executor. It shows the ticket: the actor's
instructions (its prompt_template rendered with the input by the same strict renderer the llm
executor uses) and the input, text as text. Then it asks for the answer: field by field when
the output_schema is an object with properties (numbered choices for an enum, y/n for a
boolean, each field checked against its own schema and asked again until it fits), else one
JSON object. The whole answer is checked against the output_schema before anything is saved.
"""

from __future__ import annotations

import json
from typing import Any

import click
import jsonschema

from turing_pg.execution import Attempt, Result
from turing_pg.executors.context import Context
from turing_pg.prompt import PromptError, render

SKIP, QUIT = "s", "q"
_YES = {"y", "yes", "true", "1"}
_NO = {"n", "no", "false", "0"}


class _Stop(Exception):
    """The person stopped answering (end of input, Ctrl-C)."""


def _text(value: Any) -> str:
    # why: text as text: a string is shown as it is ("stürzt", line breaks and all), anything
    # else as JSON without ASCII escapes.
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)


def _type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if len(kinds) == 1 else None
    return kind


def _problem(schema: dict[str, Any], value: Any) -> str | None:
    """What is wrong with `value` under `schema` in one sentence, or None when it fits."""
    error = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(value))
    if error is None:
        return None
    path = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" (at {path})" if path else "")


def _ask(label: str) -> str:
    try:
        return click.prompt(label, default="", show_default=False)
    except click.Abort as exc:
        raise _Stop from exc


class HumanExecutor:
    kind = "human"
    reports_itself = False
    loads_models = False
    refusal = "human tickets are answered by people with `turing human`, not by a runner"

    def __init__(self, ctx: Context) -> None:
        self.quit = False

    def switch_model(self, previous: str | None, model: str) -> float | None:
        return None

    def probe(self) -> str | None:
        return None  # why: no remote backend of its own

    def stop_all(self) -> int:
        return 0

    def run(self, attempt: Attempt) -> Result:
        t = attempt.ticket
        self.show(attempt)
        try:
            choice = _ask("answer it? [Enter] = answer, s = skip, q = quit").strip().lower()
            if choice in (SKIP, QUIT):
                self.quit = choice == QUIT
                return Result.released("skipped at the terminal" if choice == SKIP
                                       else "the person stopped answering")
            return Result.ok(self.answer(t.actor.output_schema))
        except _Stop:
            self.quit = True
            return Result.released("the person stopped answering")

    @staticmethod
    def show(attempt: Attempt) -> None:
        t, a = attempt.ticket, attempt.ticket.actor
        click.echo(f"\nticket {t.ticket_id} · actor {a.name} · subject {t.subject_id} · "
                   f"attempt {t.attempt}\n")
        if a.prompt_template:
            try:
                click.echo(render(a.prompt_template, {"subject_id": t.subject_id, **t.input}))
            except PromptError as exc:
                click.echo(f"(the instructions cannot be shown: {exc})")
            click.echo()
        click.echo("input:")
        for key, value in t.input.items():
            lines = _text(value).splitlines() or [""]
            click.echo(f"  {key}: {lines[0]}")
            for line in lines[1:]:
                click.echo(f"    {line}")
        click.echo()

    def answer(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        """A valid answer: asked field by field for an object schema with properties, else as
        one JSON object; asked again until the whole answer fits the schema."""
        fields = (schema or {}).get("properties")
        while True:
            if isinstance(fields, dict) and fields:
                output = self.fields(schema or {}, fields)
            else:
                output = self.json_object(schema)
            problem = _problem(schema, output) if schema else None
            if problem is None:
                return output
            click.echo(f"the answer does not fit the schema: {problem}; once more")

    def fields(self, schema: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        required = [r for r in schema.get("required") or [] if r in fields]
        # why: the schema is stored as jsonb, which keeps no key order; the required fields
        # come in the order `required` lists them, the optional ones after them.
        order = required + [name for name in fields if name not in required]
        output: dict[str, Any] = {}
        for name in order:
            field = fields[name] if isinstance(fields[name], dict) else {}
            value = self.field(name, field, name in required)
            if value is not _OMIT:
                output[name] = value
        return output

    def field(self, name: str, schema: dict[str, Any], required: bool) -> Any:
        """One field's value, asked until it fits its own schema (or _OMIT for an optional
        field left empty)."""
        kind, choices = _type(schema), schema.get("enum")
        notes = ["required" if required else "optional, Enter to leave out"]
        if isinstance(choices, list) and choices:
            hint = f"1-{len(choices)}"
        elif kind == "boolean":
            hint = "y/n"
        elif kind in ("integer", "number"):
            hint = "a number"
        elif kind == "string":
            hint = "text"
        else:
            hint = "JSON"
        if "default" in schema:
            notes.append(f"Enter for {_text(schema['default'])}")
        click.echo(f"{name} ({', '.join(notes)})"
                   + (f": {schema['description']}" if schema.get("description") else ""))
        if isinstance(choices, list) and choices:
            for i, choice in enumerate(choices, 1):
                click.echo(f"  {i:>3}) {_text(choice)}")
        while True:
            raw = _ask(f"{name} [{hint}]")
            if raw.strip() == "":
                if "default" in schema:
                    return schema["default"]
                if not required:
                    return _OMIT
                click.echo(f"{name} is required")
                continue
            try:
                value = _parse(raw, kind, choices)
            except ValueError as exc:
                click.echo(f"{exc}; once more")
                continue
            problem = _problem(schema, value)
            if problem is None:
                return value
            click.echo(f"{name}: {problem}; once more")

    @staticmethod
    def json_object(schema: dict[str, Any] | None) -> dict[str, Any]:
        if schema:
            click.echo("answer schema:\n" + json.dumps(schema, indent=2, ensure_ascii=False))
        while True:
            raw = _ask("answer (a JSON object)")
            try:
                output = json.loads(raw)
            except json.JSONDecodeError as exc:
                click.echo(f"not JSON: {exc}; once more")
                continue
            if isinstance(output, dict):
                return output
            click.echo("the answer must be a JSON object; once more")


_OMIT = object()


def _parse(raw: str, kind: str | None, choices: list[Any] | None) -> Any:
    """The value a person typed, read as the field's type; ValueError says what to type."""
    text = raw.strip()
    if choices:
        if text.isdigit() and 1 <= int(text) <= len(choices):
            return choices[int(text) - 1]
        for choice in choices:
            if _text(choice) == raw or _text(choice) == text:
                return choice
        raise ValueError(f"choose a number from 1 to {len(choices)}")
    if kind == "boolean":
        if text.lower() in _YES:
            return True
        if text.lower() in _NO:
            return False
        raise ValueError("answer y or n")
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError("a whole number, e.g. 3") from None
    if kind == "number":
        try:
            return float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ValueError("a number, e.g. 0.5") from None
    if kind == "string":
        return raw
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError('JSON, e.g. ["a", "b"] or {"k": 1}') from None
