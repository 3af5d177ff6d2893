"""The `human` executor (kind human): a person answers one ticket at the terminal.

No runner runs it (a runner refuses human tickets); `turing human` claims the tickets of the
human resource one at a time and calls this executor, which shows the ticket (the actor's
instructions rendered with the input, the input itself, the answer schema), asks for a JSON
answer, and checks it against the actor's output_schema before anything is saved."""

from __future__ import annotations

import json
from typing import Any

import click
import jsonschema

from turing_pg.execution import Attempt, Result
from turing_pg.executors.context import Context
from turing_pg.prompt import PromptError, render


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
        t, a = attempt.ticket, attempt.ticket.actor
        click.echo(f"\nticket {t.ticket_id} · actor {a.name} · subject {t.subject_id} · "
                   f"attempt {t.attempt}")
        if a.prompt_template:
            try:
                click.echo(render(a.prompt_template, {"subject_id": t.subject_id, **t.input}))
            except PromptError as exc:
                click.echo(f"(the instructions cannot be shown: {exc})")
        # why: text as text: ensure_ascii=False keeps "stürzt" readable.
        click.echo(json.dumps(t.input, indent=2, ensure_ascii=False, default=str))
        if a.output_schema:
            click.echo("answer schema: " + json.dumps(a.output_schema, indent=2,
                                                      ensure_ascii=False))
        while True:
            answer = click.prompt("answer (JSON object, s = skip, q = quit)")
            if answer in ("s", "q"):
                self.quit = answer == "q"
                return Result.released("skipped at the terminal" if answer == "s"
                                       else "the person stopped answering")
            problem, output = self.check(answer, a.output_schema)
            if problem is None:
                return Result.ok(output)
            click.echo(f"{problem}; try again")

    @staticmethod
    def check(answer: str, schema: dict[str, Any] | None) -> tuple[str | None, Any]:
        """(None, output) for a valid answer, else (what is wrong, None)."""
        try:
            output = json.loads(answer)
        except json.JSONDecodeError as exc:
            return f"not JSON: {exc}", None
        if not isinstance(output, dict):
            return "the answer must be a JSON object", None
        if schema:
            error = jsonschema.exceptions.best_match(
                jsonschema.validators.validator_for(schema)(schema).iter_errors(output))
            if error is not None:
                path = "/" + "/".join(str(p) for p in error.absolute_path)
                return f"the answer does not fit the schema at {path}: {error.message}", None
        return None, output
