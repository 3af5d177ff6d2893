"""`turing actor add | list | show | set | enable | disable | history | diff | stage | promote |
demote | remove`: register, inspect, move through the stages and remove actors."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import click

from turing_pg.actor_files import load_definitions
from turing_pg.cli.options import (
    client,
    common_options,
    exit_codes,
    format_table,
    handle_errors,
    print_data,
)
from turing_pg.cli.params import parse_value
from turing_pg.db import InvalidArgument, UnknownActor
from turing_pg.exits import Exit


@click.group()
def actor() -> None:
    """Register and inspect actors."""


@actor.command("add")
@click.option("-f", "--file", "path", type=click.Path(exists=True, path_type=Path), required=True,
              help="YAML file with one actor, or a list under `actors:`.")
@common_options
@handle_errors
def actor_add(path: Path, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Create or replace actors from a YAML file (validates every work_query).

    \b
    Example:
      turing actor add -f actors/scorer.yaml
    """
    definitions = load_definitions(path)
    with client(dsn) as t:
        ids = {d["name"]: t.register_actor(d) for d in definitions}
    print_data(ids, as_json, lambda d: "\n".join(f"registered {k} (id {v})" for k, v in d.items()))


@actor.command("list")
@common_options
@handle_errors
def actor_list(dsn: str | None, as_json: bool, verbose: int) -> None:
    """List actors with their model and open work.

    \b
    Example:
      turing actor list --json
    """
    with client(dsn) as t:
        rows = [s.__dict__ for s in t.startup_state()]
    print_data(rows, as_json, format_table)


@actor.command("show")
@click.argument("name")
@common_options
@handle_errors
def actor_show(name: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Print an actor's full definition. Example: turing actor show scorer"""
    with client(dsn) as t:
        rows = [r for r in t.actor_definitions() if r["name"] == name]
    if not rows:
        raise UnknownActor(f'unknown actor "{name}"', "see `turing actor list`")
    print_data(rows[0]["definition"], as_json,
               lambda d: "\n".join(f"{k}: {json.dumps(v, default=str)}" for k, v in d.items()))


@actor.command("set")
@click.argument("name")
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
@common_options
@handle_errors
def actor_set(name: str, assignments: tuple[str, ...], dsn: str | None, as_json: bool,
              verbose: int) -> None:
    """Change fields of an actor; VALUE is JSON when it parses, else text.

    \b
    Example:
      turing actor set scorer timeout='10 minutes' max_attempts=5
      turing actor set scorer 'outbox=["scored"]'
    """
    changes: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"expected FIELD=VALUE, got {item[:80]!r}",
                                  "write e.g. max_attempts=5 or timeout='10 minutes'")
        changes[key] = parse_value(value, key)
    with client(dsn) as t:
        t.set_actor(name, changes)
    print_data({"actor": name, "changed": changes}, as_json, lambda d: f"updated {name}")


@actor.command("enable")
@click.argument("name")
@common_options
@handle_errors
def actor_enable(name: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Enable an actor. Example: turing actor enable scorer"""
    with client(dsn) as t:
        t.set_actor_enabled(name, True)
    print_data({"actor": name, "enabled": True}, as_json, lambda d: f"enabled {name}")


@actor.command("disable")
@click.argument("name")
@common_options
@handle_errors
def actor_disable(name: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """Disable an actor (its tickets wait). Example: turing actor disable scorer"""
    with client(dsn) as t:
        t.set_actor_enabled(name, False)
    print_data({"actor": name, "enabled": False}, as_json, lambda d: f"disabled {name}")


@actor.command("history")
@click.argument("name")
@common_options
@handle_errors
def actor_history(name: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """The versions of an actor, newest first, and what each changed.

    A version is what the actor does to its input: its kind, model, prompt, system prompt,
    output schema, options, think, script or SQL function (and that function's body). Each
    ticket records the version that ran it (the actor_version column of turing.tickets).

    \b
    Example:
      turing actor history classify
    """
    with client(dsn) as t:
        rows = t.actor_history(name)
    if as_json:
        print_data(rows, True, format_table)
        return
    table = [{"version": r["version"], "current": "*" if r["is_current"] else "",
              "created_at": r["created_at"], "created_by": r["created_by"],
              "hash": r["hash"][:12],
              "changed": ", ".join(r["changed"]) if r["version"] > 1 else "(first)"}
             for r in rows]
    print_data(table, False, format_table)


@actor.command("stage")
@click.argument("name")
@common_options
@handle_errors
def actor_stage(name: str, dsn: str | None, as_json: bool, verbose: int) -> None:
    """The stage of each version of an actor (develop, stabilize, prove, qa, production), which
    one is current and which one a production runner runs, with its last promotion.

    \b
    Example:
      turing actor stage classify
    """
    with client(dsn) as t:
        rows = t.actor_stages(name)
    if as_json:
        print_data(rows, True, format_table)
        return
    table = [{"version": r["version"], "stage": r["stage"],
              "current": "*" if r["is_current"] else "",
              "production": "*" if r["in_production"] else "",
              "changed_at": r["changed_at"], "changed_by": r["changed_by"],
              "note": r["note"] or ""} for r in rows]
    print_data(table, False, format_table)


@actor.command("promote")
@exit_codes((Exit.USAGE, "an unknown stage"), (Exit.UNKNOWN, "no such actor"),
            (Exit.REFUSED, "a gate without its evidence: the message says what is missing"),
            others="the others as in `turing --help`")
@click.argument("name")
@click.option("--to", "to_stage", default=None, metavar="STAGE",
              help="The stage to move to (default: the next one): develop, stabilize, prove, "
                   "qa or production.")
@click.option("--note", default=None, help="Why, kept with the promotion.")
@common_options
@handle_errors
def actor_promote(name: str, to_stage: str | None, note: str | None, dsn: str | None,
                  as_json: bool, verbose: int) -> None:
    """Move the current version of an actor up the stages, if the gates it passes have their
    evidence for this version: leaving stabilize needs a raq run at or above raq_threshold
    (turing raq), leaving qa a passing QA sample (turing qa). Records who, when and the
    evidence; refuses with what is missing. Production runners run the new version once it
    reaches production; until then they keep running the last promoted one.

    \b
    Example:
      turing actor promote classify               # to the next stage
      turing actor promote classify --to production
    """
    with client(dsn) as t:
        row = t.promote(name, to_stage, note)
    if as_json:
        print_data(row, True)
        return
    click.echo(f"actor {row['actor']} version {row['version']}: {row['from_stage']} -> "
               f"{row['to_stage']}")


@actor.command("demote")
@exit_codes((Exit.USAGE, "an unknown stage"), (Exit.UNKNOWN, "no such actor"),
            (Exit.REFUSED, "a stage that is not lower"),
            others="the others as in `turing --help`")
@click.argument("name")
@click.option("--to", "to_stage", default="develop", show_default=True, metavar="STAGE",
              help="The stage to move down to.")
@click.option("--note", default=None, help="Why, kept with the change.")
@common_options
@handle_errors
def actor_demote(name: str, to_stage: str, note: str | None, dsn: str | None, as_json: bool,
                 verbose: int) -> None:
    """Move the current version of an actor down the stages (no gate); a demoted production
    version stops running in production.

    \b
    Example:
      turing actor demote classify --to stabilize --note "drifts on long inputs"
    """
    with client(dsn) as t:
        row = t.demote(name, to_stage, note)
    if as_json:
        print_data(row, True)
        return
    click.echo(f"actor {row['actor']} version {row['version']}: {row['from_stage']} -> "
               f"{row['to_stage']}")


def _diff_lines(field: str, old: Any, new: Any) -> list[str]:
    """One field's change: a unified diff for text, old -> new for the rest."""
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        return list(difflib.unified_diff(old.splitlines(), new.splitlines(),
                                         f"{field} (before)", f"{field} (after)", lineterm=""))
    if isinstance(old, dict) and isinstance(new, dict):
        return list(difflib.unified_diff(
            json.dumps(old, indent=2, sort_keys=True).splitlines(),
            json.dumps(new, indent=2, sort_keys=True).splitlines(),
            f"{field} (before)", f"{field} (after)", lineterm=""))
    return [f"{field}: {json.dumps(old)} -> {json.dumps(new)}"]


@actor.command("diff")
@click.argument("name")
@click.argument("from_version", metavar="V1", type=click.IntRange(min=1))
@click.argument("to_version", metavar="V2", type=click.IntRange(min=1))
@common_options
@handle_errors
def actor_diff(name: str, from_version: int, to_version: int, dsn: str | None, as_json: bool,
               verbose: int) -> None:
    """What changed between two versions of an actor: text as a unified diff.

    \b
    Example:
      turing actor diff classify 1 2
    """
    with client(dsn) as t:
        rows = t.actor_diff(name, from_version, to_version)
    if as_json:
        print_data(rows, True, format_table)
        return
    if not rows:
        click.echo(f"{name}: versions {from_version} and {to_version} are the same")
        return
    for r in rows:
        click.echo("\n".join(_diff_lines(r["field"], r["from_value"], r["to_value"])))


@actor.command("remove")
@exit_codes((Exit.USAGE, "not confirmed"), (Exit.UNKNOWN, "no such actor"),
            (Exit.REFUSED, "it has open tickets and --cancel-open was not given"))
@click.argument("name")
@click.option("--cancel-open", is_flag=True,
              help="Cancel its open (pending and running) tickets first.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
@handle_errors
def actor_remove(name: str, cancel_open: bool, yes: bool, dsn: str | None, as_json: bool,
                 verbose: int) -> None:
    """Remove an actor. Its finished tickets stay readable (`turing tickets --actor NAME`);
    claims, discovery, status, check and graph forget it, and the name may be registered
    again as a new actor. Refused while it has open work, unless --cancel-open.

    \b
    Example:
      turing actor remove old_scorer --yes
      turing actor remove old_scorer --cancel-open --yes
    """
    if not yes:
        what = "cancel its open tickets and remove" if cancel_open else "remove"
        try:
            confirmed = click.confirm(f"{what} actor {name}? its history stays readable",
                                      default=False, err=True)
        except click.Abort:
            click.echo(err=True)  # why: ends the question's line; the refusal follows
            confirmed = False
        if not confirmed:
            raise InvalidArgument(f"actor {name} was not removed", "confirm with y, or pass --yes")
    with client(dsn) as t:
        done = t.remove_actor(name, cancel_open)
    print_data(done, as_json, _removed_text)


def _removed_text(d: dict[str, Any]) -> str:
    lines = [f"removed {d['actor']} (id {d['actor_id']}): {d['cancelled']} open ticket(s) "
             f"cancelled, {d['history']} finished ticket(s) kept"]
    lines += [f"note: {u['actor']} writes status {u['status']}, which no enabled actor reads now"
              for u in d["unwired"]]
    return "\n".join(lines)
