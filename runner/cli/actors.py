"""`turing actor add | list | show | set | enable | disable`: register and inspect actors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from turing_pg.actor_files import load_definitions
from turing_pg.cli.options import client, common_options, format_table, handle_errors, print_data
from turing_pg.cli.params import parse_value
from turing_pg.db import InvalidArgument, UnknownActor


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
