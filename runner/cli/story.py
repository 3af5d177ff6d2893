"""`turing tickets show ID`: one attempt's whole story, from turing.ticket_story: its input, the
prompt it sent, the raw answer, the output, timings, tokens, error and lease events."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import click

from turing_pg.cli.options import client, common_options, exit_codes, handle_errors, print_data
from turing_pg.cli.params import TICKET_ID
from turing_pg.exits import Exit

INDENT = "  "
# the server's timings in the order a call spends them (jsonb keeps keys in its own order)
TIMINGS = ("load", "prompt_eval", "eval", "total")
# the lease events' extra fields, in the order they are shown
EVENT_FIELDS = ("source", "worker", "batch_id", "batch_size", "timeout", "by", "status",
                "failure_kind", "ticket_id")


def _block(title: str, text: str | None) -> list[str]:
    """A titled, indented block; the whole text, nothing cut (it is what the model saw)."""
    if text is None:
        return [f"{title}: (none)"]
    return [f"{title}:", textwrap.indent(text, INDENT, lambda _line: True).rstrip("\n")]


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _call_lines(call: dict[str, Any] | None) -> list[str]:
    if call is None:
        return ["call: none recorded (not an LLM attempt, or nothing was sent to the model)"]
    tokens, ms = call["tokens"], call["timings_ms"]
    speed = f", {tokens['per_s']} tokens/s" if tokens["per_s"] is not None else ""
    lines = [f"call: model {call['model']}, options {json.dumps(call['options'])}"]
    if call["system_prompt"] is not None:
        lines += _block("system prompt", call["system_prompt"])
    lines += _block(f"prompt (sha256 {call['prompt_sha256'][:12]})", call["prompt"])
    lines += _block("answer (raw)", call["answer"])
    saved = "saved" if call["saved"] else "not saved"
    lines += _block(f"output ({saved})",
                    None if call["output"] is None else _json(call["output"]))
    lines.append(f"tokens: prompt {tokens['prompt']}, output {tokens['output']}{speed}")
    lines.append("timings (ms): " + ", ".join(
        f"{name.replace('_', ' ')} {ms[name]}" for name in TIMINGS))
    return lines


def _event_line(e: dict[str, Any]) -> str:
    extra = ", ".join(f"{k} {e[k]}" for k in EVENT_FIELDS if e.get(k) is not None)
    return f"{INDENT}{e['at']}  {e['event']}" + (f" ({extra})" if extra else "")


def story_text(s: dict[str, Any]) -> str:
    took = f" in {s['duration_ms']} ms" if s["duration_ms"] is not None else ""
    lines = [
        f"ticket {s['ticket_id']}: actor {s['actor']} (model {s['model']}), subject "
        f"{s['subject_id']}, attempt {s['attempt']}, {s['status']}{took}; chain "
        f"{s['chain_id']} depth {s['chain_depth']}"
        + (f", parent {s['parent_ticket_id']}" if s["parent_ticket_id"] else "")
        + (f", retried as {s['retry_ticket_id']}" if s["retry_ticket_id"] else ""),
        *_block("input", _json(s["input"])),
    ]
    lines += _call_lines(s["call"])
    if s["call"] is None:
        lines += _block("output", None if s["output"] is None else _json(s["output"]))
    lines.append(f"error: {s['error']}" if s["error"] else "error: (none)")
    if s["previous_error"]:
        lines.append(f"previous attempt's error: {s['previous_error']}")
    lines.append("lease:")
    lines += [_event_line(e) for e in s["lease"]]
    return "\n".join(lines)


@click.command("show")
@exit_codes(Exit.OK, (Exit.UNKNOWN, "no ticket has that id"))
@click.argument("ticket_id", metavar="ID", type=TICKET_ID)
@common_options
@handle_errors
def show(ticket_id: int, dsn: str | None, as_json: bool, verbose: int) -> None:
    """One attempt's whole story: its input, the rendered prompt it sent, the raw answer, the
    output (saved, or what a refused answer parsed to), the tokens and timings the model server
    measured, its error, and its lease events (created, claimed, started, heartbeat, reaped,
    finished, retried).

    Every LLM attempt keeps its call record for as long as the ticket's history (retention).

    \b
    Example:
      turing tickets show 1234
      turing tickets show 1234 --json | jq '.call.tokens'
    """
    with client(dsn) as t:
        story = t.ticket_story(ticket_id)
    print_data(story, as_json, story_text)
