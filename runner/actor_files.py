"""Actor definition files: YAML with one actor, or a list under `actors:`.

The fields are those of turing.actor_fields; the database validates them (one spec), so this
module only reads the file. `prompt_template_file` and `output_schema_file` name files next to
the YAML file, so prompts and schemas stay readable on their own (the demo pipeline under
actors/taxonomy does this)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from turing_pg.db import InvalidArgument, InvalidDefinitionFile

INCLUDES = {"prompt_template_file": "prompt_template", "output_schema_file": "output_schema"}


def load_definitions(path: Path) -> list[dict[str, Any]]:
    """Parse an actor file into definitions for Turing.register_actor."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidArgument(f"{path}: cannot read the file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidDefinitionFile(
            f"{path}: not valid YAML{where}: {problem}",
            "check the indentation and quoting there; a value with ': ' in it needs quotes",
        ) from exc
    items = data.get("actors", [data]) if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise InvalidDefinitionFile(
            f"{path}: expected one actor (a mapping with name and kind) or a list under "
            "`actors:`", "see the example in the README (Writing an actor)")
    out = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise InvalidDefinitionFile(
                f"{path}: actor {n} is not a mapping of fields",
                "write `name: ...`, `kind: ...` and the other fields, one per line")
        item = dict(item)
        for include, field in INCLUDES.items():
            if include not in item:
                continue
            target = path.parent / str(item.pop(include))
            try:
                text = target.read_text(encoding="utf-8")
                item[field] = json.loads(text) if field == "output_schema" else text
            except OSError as exc:
                raise InvalidDefinitionFile(
                    f"{path}: {include} {target}: cannot read the file: {exc.strerror}") from exc
            except json.JSONDecodeError as exc:
                raise InvalidDefinitionFile(
                    f"{path}: {include} {target} is not JSON: {exc.msg} at line {exc.lineno}, "
                    f"column {exc.colno}") from exc
        out.append(item)
    return out
