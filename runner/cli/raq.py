"""`turing raq` and `turing qa`: the evidence the stage gates read (repeatability of the same
inputs; a person's verdicts on a sample of answers)."""

from __future__ import annotations

import json
import time
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
from turing_pg.db import GateRefused, Turing
from turing_pg.exits import Exit
from turing_pg.raq import agreement

VERDICTS = {"r": "right", "right": "right", "w": "wrong", "wrong": "wrong",
            "u": "unsure", "unsure": "unsure"}


def _output_schema(t: Turing, actor: str) -> dict[str, Any] | None:
    for d in t.actor_definitions():
        if d["name"] == actor:
            return d["definition"].get("output_schema")
    return None


def _wait(t: Turing, run_id: int, timeout_s: float) -> list[dict[str, Any]]:
    """The run's attempts once none is open (runners pick them up), or GateRefused."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = t.raq_attempts(run_id)
        if not any(r["open"] for r in rows):
            return rows
        if time.monotonic() >= deadline:
            left = sum(1 for r in rows if r["open"])
            raise GateRefused(
                f"raq run {run_id}: {left} of {len(rows)} tickets still open after "
                f"{timeout_s:g} s",
                "Start a runner of the model (turing-runner --model M; any --stage runs raq "
                "tickets), then wait again with a longer --timeout.")
        time.sleep(0.2)


@click.command("raq")
@exit_codes(Exit.OK, (Exit.USAGE, "a bad --n or --runs"),
            (Exit.UNKNOWN, "no such actor, or a model no actor uses and no runner serves"),
            (Exit.REFUSED, "--n larger than the actor's inputs, or runs left unfinished by "
                           "--timeout"),
            others="the others as in `turing --help`")
@click.argument("actor")
@click.option("--n", "n", type=click.IntRange(1, 10000), default=20, show_default=True,
              help="How many recorded inputs (the actor's sample, taken once and reused).")
@click.option("--runs", type=click.IntRange(2, 20), default=3, show_default=True,
              help="How many times each input runs.")
@click.option("--model", default=None, metavar="M",
              help="Run the sample on this model instead of the actor's (a runner of M must "
                   "be up).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=600.0,
              show_default=True, help="Seconds to wait for the runners.")
@common_options
@handle_errors
def raq(actor: str, n: int, runs: int, model: str | None, timeout_s: float, dsn: str | None,
        as_json: bool, verbose: int) -> None:
    """Measure how repeatable ACTOR's current version is: the same N inputs, each run RUNS
    times through the normal ticket machinery (leased, fenced, spread over the running
    runners, at any --stage, without on_complete).

    Prints the agreement per output field (exact for enums, booleans and integers, a
    normalised similarity for text, 1 % for other numbers), latency p50/p95 and the failure
    rate, stores them (turing.raq_runs, turing.raq_fields) and says whether the run passes the
    actor's raq_threshold: what `turing actor promote` needs to leave stabilize. A finished run
    exits 0, passed or not (--json: "passed").

    \b
    Example:
      turing raq classify --n 20 --runs 3
      turing raq classify --n 20 --runs 3 --model llama3.1:8b
    """
    started = time.monotonic()
    with client(dsn) as t:
        run_id = t.start_raq(actor, n, runs, model)
        rows = _wait(t, run_id, timeout_s)
        answers: dict[int, list[Any]] = {}
        for r in rows:
            answers.setdefault(r["item"], [])
            if r["status"] == "completed":
                answers[r["item"]].append(r["output"])
        fields = agreement(answers, _output_schema(t, actor))
        result = t.finish_raq(run_id, [f.as_json() for f in fields])
    seconds = time.monotonic() - started
    data = {**result, "actor": actor, "n": n, "runs": runs, "seconds": round(seconds, 2),
            "fields": [f.as_json() for f in fields]}
    if as_json:
        print_data(data, True)
        return
    print_data([f.as_json() for f in fields], False, format_table)
    p50 = "-" if result["p50_ms"] is None else f"{result['p50_ms']:.0f} ms"
    p95 = "-" if result["p95_ms"] is None else f"{result['p95_ms']:.0f} ms"
    click.echo(f"raq run {run_id} of {actor}: {n} inputs x {runs} runs in {seconds:.1f} s; "
               f"agreement {result['agreement']:.3f}, failure rate "
               f"{result['failure_rate']:.3f}, latency p50 {p50}, p95 {p95}: "
               + ("PASSED" if result["passed"] else "FAILED") + " against its raq_threshold")


def _ask_verdict() -> str | None:
    """right, wrong or unsure from the terminal; anything else is asked again; None at the end
    of the input."""
    while True:
        try:
            answer = click.prompt("right, wrong or unsure? [r/w/u]", default="",
                                  show_default=False)
        except click.Abort:
            return None
        verdict = VERDICTS.get(answer.strip().lower())
        if verdict is not None:
            return verdict
        click.echo(f"{answer.strip()!r} is not an answer: write r (right), w (wrong) or "
                   "u (unsure).")


def _show(i: int, total: int, row: dict[str, Any]) -> None:
    click.echo(f"\n--- {i} of {total}: ticket {row['ticket_id']}, subject {row['subject_id']}, "
               f"version {row['version']}")
    if row["system_prompt"]:
        click.echo("system prompt:\n" + row["system_prompt"])
    if row["prompt_template"]:
        click.echo("instructions (prompt template):\n" + row["prompt_template"])
    click.echo("input:\n" + json.dumps(row["input"], indent=2, ensure_ascii=False))
    click.echo("output:\n" + json.dumps(row["output"], indent=2, ensure_ascii=False))


@click.command("qa")
@exit_codes(Exit.OK, (Exit.USAGE, "a bad --sample"), (Exit.UNKNOWN, "no such actor"),
            others="the others as in `turing --help`")
@click.argument("actor")
@click.option("--sample", "n", type=click.IntRange(1, 10000), default=20, show_default=True,
              help="How many completed tickets of the current version to review.")
@common_options
@handle_errors
def qa(actor: str, n: int, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Review a random sample of ACTOR's answers: completed tickets of its current version not
    reviewed yet, each shown with its input, its output and the prompt's instructions. Answer
    right, wrong or unsure (r/w/u; anything else is asked again) and a note (Enter: none).

    Each verdict is stored (turing.qa_reviews) as it is given; at the end (or at the end of
    the input) the pass rate right / (right + wrong) of the version and its Wilson 95 %
    interval are printed: what `turing actor promote` needs to leave qa.

    \b
    Example:
      turing qa classify --sample 20
    """
    with client(dsn) as t:
        rows = t.qa_sample(actor, n)
        if not rows:
            click.echo(f"actor {actor} has no unreviewed completed ticket of its current "
                       "version; run some work first (or turing raq).", err=True)
        for i, row in enumerate(rows, 1):
            _show(i, len(rows), row)
            verdict = _ask_verdict()
            if verdict is None:
                break
            try:
                note = click.prompt("note (Enter: none)", default="", show_default=False)
            except click.Abort:
                note = ""
            t.record_review(row["ticket_id"], verdict, note or None)
        summary = t.qa_summary(actor)
    if as_json:
        print_data(summary, True)
        return
    rate = "-" if summary["pass_rate"] is None else f"{summary['pass_rate']:.3f}"
    low = "-" if summary["wilson_low"] is None else f"{summary['wilson_low']:.3f}"
    high = "-" if summary["wilson_high"] is None else f"{summary['wilson_high']:.3f}"
    click.echo(f"\n{actor} version {summary['version']}: {summary['right_n']} right, "
               f"{summary['wrong_n']} wrong, {summary['unsure_n']} unsure; pass rate {rate} "
               f"(Wilson 95 % {low} .. {high}); the qa gate "
               + ("passes" if summary["passed"] else
                  f"needs {summary['qa_sample']} decided reviews, a pass rate >= "
                  f"{summary['qa_threshold']:g} and a lower bound >= "
                  f"{summary['qa_lower_bound']:g}"))
