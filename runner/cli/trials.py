"""`turing harness | matrix | chat`: run an actor outside the queue, through the runner's executors
(turing_pg.trial), to see what it does on one subject, or how models compare on the same
inputs, or to iterate its prompt. Nothing is written unless `harness --save` asks for a
ticket or `chat` saves a prompt as a new version."""

from __future__ import annotations

import dataclasses
import json
import random
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from turing_pg.agreement import THRESHOLD, TOLERANCE, Pair, Rule, pairwise
from turing_pg.cli.model_server import NAMES, model_server_options
from turing_pg.cli.options import (
    client,
    common_options,
    exit_codes,
    format_table,
    handle_errors,
    print_data,
    target_dsn,
)
from turing_pg.cli.params import parse_json
from turing_pg.cli.story import _block, _json
from turing_pg.credentials import hide, hide_values
from turing_pg.db import InvalidArgument, Turing
from turing_pg.exits import Exit
from turing_pg.trial import Input, Trial, Trials, trial_config

# the most inputs `matrix --seed` draws its sample from (the first ones the actor offers)
SAMPLE_POOL = 10_000
GIVEN_SUBJECT = "harness"  # the subject of an --input with no --subject


def _trials(t: Turing, dsn: str, model: str, concurrency: int, server: dict[str, Any]
            ) -> Trials:
    hide(server.get("ollama_host"), server.get("openai_base_url"))
    hide_values(server.get("openai_api_key"))
    return Trials(t, trial_config(dsn, model, concurrency=concurrency, **server))


def _server(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs.pop(k) for k in NAMES}


# -- harness ---------------------------------------------------------------------------------
def _ms(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.1f}"


def trial_text(tr: Trial) -> str:
    r, c = tr.result, tr.result.call
    lines = [f"actor {tr.actor} v{tr.version}, model {tr.model}, subject {tr.item.subject_id} "
             f"(input from {tr.item.source})", *_block("input", _json(tr.item.input))]
    if c is not None:
        if c.system is not None:
            lines += _block("system prompt", c.system)
        lines += _block("prompt (rendered)", c.prompt)
        lines += _block("answer (raw)", c.answer)
    verdict = "valid" if tr.valid else "refused" if tr.output is not None else "none"
    lines += _block(f"output ({verdict})", None if tr.output is None else _json(tr.output))
    lines.append(f"result: {r.kind}" + (f": {r.error}" if r.error else ""))
    if c is not None:
        lines.append(f"tokens: prompt {c.prompt_eval_count}, output {c.eval_count}")
        lines.append(f"timings (ms): load {_ms(c.load_duration)}, prompt eval "
                     f"{_ms(c.prompt_eval_duration)}, eval {_ms(c.eval_duration)}, total "
                     f"{_ms(c.total_duration)}")
    lines.append(f"wall time: {tr.seconds:.3f} s")
    lines.append(f"saved: ticket {tr.ticket_id}, {tr.status or 'status unknown'} "
                 f"(`turing tickets show {tr.ticket_id}`)" if tr.ticket_id is not None
                 else "saved: no (nothing was written; --save makes it a ticket)")
    return "\n".join(lines)


@click.command("harness")
@exit_codes(Exit.OK, Exit.USAGE, (Exit.UNKNOWN, "unknown actor, subject or model"),
            (Exit.REFUSED, "with --save: the subject already has an open ticket, or a "
                           "runner claimed the new one first"))
@click.argument("actor_name", metavar="ACTOR")
@click.option("--subject", default=None, metavar="S",
              help="The subject: its input is the row the actor's work_query returns for it, "
                   "or its latest ticket's when it left the inbox.")
@click.option("--input", "input_json", default=None, metavar="JSON",
              help="The input as a JSON object instead (the subject is then S, or "
                   f"`{GIVEN_SUBJECT}`).")
@click.option("--model", default=None, metavar="M",
              help="Run on this model instead of the actor's (not with --save).")
@click.option("--save", is_flag=True,
              help="Make it a ticket: submit it, claim it as a worker, run it and report it "
                   "like a runner (its call record is kept and its on_complete runs).")
@model_server_options
@common_options
@handle_errors
def harness(actor_name: str, subject: str | None, input_json: str | None, model: str | None,
            save: bool, dsn: str | None, as_json: bool, verbose: int, **kwargs: Any) -> None:
    """Run ACTOR once on one subject through the runner's executor: the rendered prompt, the
    raw answer, the parsed output, its validation against the output_schema, timings and
    tokens. Nothing is written (no ticket, no on_complete) unless --save.

    llm and script actors run here; a sql actor only with --save (its function ends its own
    ticket). Exit 0 whatever the verdict: the output says it (`--json | jq .valid`).

    \b
    Example:
      turing harness scorer --subject 42
      turing harness scorer --subject 42 --model llama3.1:8b --json
      turing harness scorer --input '{"title": "Nurse"}'
      turing harness scorer --subject 42 --save
    """
    server = _server(kwargs)
    if subject is None and input_json is None:
        raise click.UsageError("name the input: --subject S (from the actor's work_query or "
                               "tickets) or --input JSON")
    if save and model is not None:
        raise click.UsageError("--save makes a ticket of the actor, which runs on its own "
                               "model: drop --model, or change the model with `turing actor "
                               "set`")
    if save and subject is None:
        raise click.UsageError("--save makes a ticket, which needs --subject S")
    given = None if input_json is None else parse_json(input_json, "--input")
    if given is not None and not isinstance(given, dict):
        raise InvalidArgument("--input must be a JSON object", 'write e.g. {"title": "Nurse"}')
    target = target_dsn(dsn)
    with client(target) as t:
        kinds = ("llm", "script", "sql") if save else ("llm", "script")
        trials = _trials(t, target, model or actor_name, 1, server)
        runtime, version, timeout_s = trials.actor(actor_name, kinds)
        if model is not None:
            if runtime.kind != "llm":
                raise InvalidArgument(
                    f"--model applies to llm actors; {actor_name} is a {runtime.kind} actor",
                    "drop --model")
            trials.check_model(model)
            runtime = dataclasses.replace(runtime, model=model)
        if given is not None:
            item = Input(subject or GIVEN_SUBJECT, given, "given")
        else:
            [item] = trials.inputs(actor_name, [subject or ""],
                                   or_else=", or give the input yourself with --input JSON")
        trial = trials.save(actor_name, item) if save else trials.run(
            runtime, version, timeout_s, item)
    print_data(trial.as_json(), as_json, lambda _d: trial_text(trial))


# -- matrix ----------------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def model_stats(model: str, trials: list[Trial]) -> dict[str, Any]:
    seconds = [tr.seconds for tr in trials]
    prompt = [p for p, _ in (tr.tokens for tr in trials) if p is not None]
    out = [o for _, o in (tr.tokens for tr in trials) if o is not None]
    failed = sum(not tr.valid for tr in trials)
    return {
        "model": model, "n": len(trials), "failed": failed,
        "failure_rate": round(failed / len(trials), 4) if trials else None,
        "p50_s": _percentile(seconds, 0.5), "p95_s": _percentile(seconds, 0.95),
        "mean_s": round(statistics.fmean(seconds), 4) if seconds else None,
        "prompt_tokens": sum(prompt), "output_tokens": sum(out),
    }


def heatmap(path: Path, models: list[str], pairs: list[Pair], title: str) -> None:
    """The agreement matrix as a PNG (matplotlib, Agg: no display needed)."""
    try:
        import matplotlib
    except ImportError:
        raise InvalidArgument("--png needs matplotlib, which is not installed",
                              "pip install 'turing-pg[matrix]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = {m: i for i, m in enumerate(models)}
    grid = [[1.0 if i == j else float("nan") for j in range(len(models))]
            for i in range(len(models))]
    for p in pairs:
        if p.rate is not None:
            grid[index[p.a]][index[p.b]] = grid[index[p.b]][index[p.a]] = p.rate
    size = 2.0 + 1.1 * len(models)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            ax.text(j, i, "-" if value != value else f"{value:.0%}", ha="center", va="center",
                    color="white" if value != value or value < 0.6 else "black")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="agreement")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def matrix_text(data: dict[str, Any]) -> str:
    models = [s["model"] for s in data["models"]]
    rates = {(p["a"], p["b"]): p["agreement"] for p in data["pairs"]}
    grid = []
    for a in models:
        row: dict[str, Any] = {"model": a}
        for b in models:
            rate = 1.0 if a == b else rates.get((a, b), rates.get((b, a)))
            row[b] = "-" if rate is None else f"{rate:.0%}"
        grid.append(row)
    lines = [f"actor {data['actor']} v{data['version']}: {data['n']} inputs "
             f"({data['inputs']}), agreement where both answered validly", format_table(grid),
             "", format_table(data["models"])]
    if data.get("png"):
        lines.append(f"heatmap: {data['png']}")
    return "\n".join(lines)


@click.command("matrix")
@exit_codes(Exit.OK, (Exit.USAGE, "also a non-llm actor, or --n above the inputs there are"),
            (Exit.UNKNOWN, "unknown actor or model"))
@click.argument("actor_name", metavar="ACTOR")
@click.option("--models", "models_csv", required=True, metavar="A,B,…",
              help="The models to compare, comma-separated (at least one).")
@click.option("--n", "n", type=click.IntRange(1, SAMPLE_POOL), default=20, show_default=True,
              help="How many inputs each model runs.")
@click.option("--seed", type=int, default=None,
              help="Draw the inputs at random with this seed (repeatable) instead of taking "
                   "the first N.")
@click.option("--png", "png", type=click.Path(dir_okay=False, writable=True), default=None,
              metavar="FILE", help="Write the agreement heatmap here (a .png).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Calls in flight at once within a model.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=THRESHOLD,
              show_default=True, help="Text agrees at this normalised similarity or more.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=TOLERANCE,
              show_default=True, help="Numbers agree within this relative difference.")
@model_server_options
@common_options
@handle_errors
def matrix(actor_name: str, models_csv: str, n: int, seed: int | None, png: str | None,
           concurrency: int, threshold: float, tolerance: float, dsn: str | None,
           as_json: bool, verbose: int, **kwargs: Any) -> None:
    """Run ACTOR on the same N inputs with each model: pairwise agreement of their outputs,
    latency, failure rate and tokens; a table here, and a heatmap PNG with --png.

    The inputs are the first N the actor offers (the rows its work_query returns now, then
    its latest tickets' inputs for subjects no longer in the inbox), or N drawn from the first
    10,000 with --seed. Models run one after the other (each loaded once), N calls each with
    --concurrency in flight. Outputs agree by the rule of turing_pg.agreement: exact for
    booleans, integers and enums, within --tolerance for other numbers, at --threshold
    similarity for text. Nothing is written to the database.

    \b
    Example:
      turing matrix scorer --models qwen2.5:7b,llama3.1:8b --n 20
      turing matrix scorer --models a,b,c --n 50 --seed 7 --png matrix.png
    """
    server = _server(kwargs)
    models = list(dict.fromkeys(m.strip() for m in models_csv.split(",") if m.strip()))
    if not models:
        raise click.UsageError("name the models: --models A,B (comma-separated)")
    if png is not None and not png.lower().endswith(".png"):
        raise click.BadParameter(f"{png} must end in .png", param_hint="--png")
    target = target_dsn(dsn)
    with client(target) as t:
        trials = _trials(t, target, models[0], concurrency, server)
        runtime, version, timeout_s = trials.actor(actor_name, ("llm",))
        for m in models:
            trials.check_model(m)
        pool = trials.inputs(actor_name, None, n if seed is None else SAMPLE_POOL)
        if len(pool) < n:
            raise InvalidArgument(
                f"actor {actor_name} offers {len(pool)} inputs (its work_query's rows and its "
                f"tickets' subjects), fewer than --n {n}",
                f"ask for --n {len(pool)} or fewer" if pool else
                "put subjects in its inbox, or submit some first")
        items = pool[:n] if seed is None else random.Random(seed).sample(pool, n)
        runs: dict[str, list[Trial]] = {}
        with ThreadPoolExecutor(concurrency, thread_name_prefix="matrix") as ex:
            for m in models:
                on = dataclasses.replace(runtime, model=m)
                runs[m] = list(ex.map(lambda it, on=on: trials.run(on, version, timeout_s, it),
                                      items))
    pairs = pairwise({m: [(tr.valid, tr.output) for tr in runs[m]] for m in models},
                     runtime.output_schema, Rule(threshold, tolerance))
    data = {
        "actor": actor_name, "version": version, "n": n,
        "inputs": "first N" if seed is None else f"random, seed {seed}",
        "seed": seed, "subjects": [it.subject_id for it in items],
        "models": [model_stats(m, runs[m]) for m in models],
        "pairs": [{"a": p.a, "b": p.b, "agreed": p.agreed, "compared": p.compared,
                   "agreement": None if p.rate is None else round(p.rate, 4)} for p in pairs],
        "png": png,
    }
    if png is not None:
        heatmap(Path(png), models, pairs, f"{actor_name} v{version}: agreement on {n} inputs")
    if as_json:
        data["outputs"] = {m: [tr.as_json() for tr in runs[m]] for m in models}
    print_data(data, as_json, matrix_text)


# -- chat ------------------------------------------------------------------------------------
CHAT_SUBJECTS = 3  # subjects chat runs on when none is named
MENU = "[e]dit the prompt, [r]erun, [s]ave it as a new version, [q]uit"


def _cell(tr: Trial | None) -> str:
    if tr is None:
        return ""
    if tr.valid:
        return json.dumps(tr.output, ensure_ascii=False)
    return f"{tr.result.kind}: {tr.result.error}"


def round_text(n: int, prompt: str, now: list[Trial], before: list[Trial] | None) -> str:
    rows = []
    for i, tr in enumerate(now):
        prev = before[i] if before is not None else None
        row = {"subject_id": tr.item.subject_id}
        if before is not None:
            row["previous"] = _cell(prev)
        row["output"] = _cell(tr)
        if before is not None:
            row["changed"] = prev is not None and (prev.valid, prev.output) != (tr.valid,
                                                                                 tr.output)
        rows.append(row)
    head = f"run {n}: actor {now[0].actor} v{now[0].version}, model {now[0].model}"
    return "\n".join([head, *_block("prompt", prompt), format_table(rows)])


@click.command("chat")
@exit_codes(Exit.OK, (Exit.USAGE, "also a non-llm actor"),
            (Exit.UNKNOWN, "unknown actor, subject or model"))
@click.argument("actor_name", metavar="ACTOR")
@click.option("--subject", "subjects", multiple=True, metavar="S",
              help="A subject to run on (repeat for several; default: the first "
                   f"{CHAT_SUBJECTS} the actor offers).")
@click.option("--model", default=None, metavar="M", help="Run on this model instead.")
@model_server_options
@common_options
@handle_errors
def chat(actor_name: str, subjects: tuple[str, ...], model: str | None, dsn: str | None,
         as_json: bool, verbose: int, **kwargs: Any) -> None:
    """Iterate ACTOR's prompt at the terminal: run it on the chosen subjects, edit the prompt in
    $EDITOR, run again and see each output beside the previous run's; save the prompt as a new
    version of the actor (`turing actor set`) when it is right.

    The menu reads one letter a line: e (edit, then run), r (run again), s (save), q (quit;
    also at the end of the input). Runs write nothing; only s changes the actor.

    \b
    Example:
      turing chat scorer --subject 42 --subject 43
      EDITOR=vim turing chat scorer --model llama3.1:8b
    """
    server = _server(kwargs)
    target = target_dsn(dsn)
    with client(target) as t:
        trials = _trials(t, target, model or actor_name, 1, server)
        runtime, version, timeout_s = trials.actor(actor_name, ("llm",))
        if model is not None:
            trials.check_model(model)
            runtime = dataclasses.replace(runtime, model=model)
        items = trials.inputs(actor_name, list(subjects) or None,
                              len(subjects) or CHAT_SUBJECTS)
        if not items:
            raise InvalidArgument(f"actor {actor_name} offers no input to run on",
                                  "name one with --subject S")
        saved_prompt = prompt = runtime.prompt_template or ""
        before: list[Trial] | None = None
        n = 0

        def show_run() -> list[Trial]:
            nonlocal n
            n += 1
            on = dataclasses.replace(runtime, prompt_template=prompt)
            now = [trials.run(on, version, timeout_s, it) for it in items]
            if as_json:
                click.echo(json.dumps({"run": n, "prompt": prompt,
                                       "trials": [tr.as_json() for tr in now]}, default=str))
            else:
                click.echo(round_text(n, prompt, now, before))
            return now

        before = show_run()
        while True:
            try:
                choice = click.prompt(MENU, type=click.Choice(["e", "r", "s", "q"]),
                                      default="q", show_choices=False, err=True)
            except click.Abort:
                choice = "q"
            if choice == "q":
                if prompt != saved_prompt:
                    click.echo("the edited prompt was not saved", err=True)
                return
            if choice == "s":
                if prompt == saved_prompt:
                    click.echo("nothing to save: the prompt is the actor's", err=True)
                    continue
                t.set_actor(actor_name, {"prompt_template": prompt})
                _, version, _ = t.actor_runtime(actor_name)
                saved_prompt = prompt
                click.echo(f"saved: actor {actor_name} is now version {version}", err=True)
                continue
            if choice == "e":
                edited = click.edit(prompt, extension=".txt", require_save=True)
                if edited is None or edited.rstrip("\n") == prompt:
                    click.echo("the prompt is unchanged", err=True)
                    continue
                prompt = edited.rstrip("\n")
            before = show_run()
