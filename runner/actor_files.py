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


def _loader() -> type:
    """YAML's safe loader without its timestamp rule: an actor field is never a date, and a
    value such as `description: 2024-05-01` must stay the text it is (JSON has no dates)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def _not_json(path: Path, name: str, item: dict[str, Any]) -> None:
    """Refuse a field whose YAML value JSON cannot hold (!!binary, !!set, an explicit
    !!timestamp), naming it, instead of failing while the definition is sent."""
    for field, value in item.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidDefinitionFile(
                f"{path}: actor {name}: field {field} is not a JSON value ({exc})",
                "write it as text, a number, true/false, a list or a mapping; quote it if in "
                "doubt") from None


def load_definitions(path: Path) -> list[dict[str, Any]]:
    """Parse an actor file into definitions for Turing.register_actor."""
    import yaml

    try:
        # why: yaml.load with a subclass of SafeLoader: as safe as safe_load
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_loader())
    except OSError as exc:
        raise InvalidArgument(f"{path}: cannot read the file: {exc.strerror}",
                              "give the path of a YAML file, e.g. -f actors/scorer.yaml") from exc
    except UnicodeDecodeError as exc:
        raise InvalidDefinitionFile(
            f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)",
            "save the actor file as UTF-8 YAML") from None
    except RecursionError:
        raise InvalidDefinitionFile(
            f"{path}: nests lists or mappings too deeply to read",
            "an actor definition needs a few levels of nesting at most; flatten it") from None
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
                    f"{path}: {include} {target}: cannot read the file: {exc.strerror}",
                    f"name a file relative to the actor file's directory ({path.parent})"
                ) from exc
            except json.JSONDecodeError as exc:
                raise InvalidDefinitionFile(
                    f"{path}: {include} {target} is not JSON: {exc.msg} at line {exc.lineno}, "
                    f"column {exc.colno}", 'write a JSON Schema object, e.g. {"type": "object"}'
                ) from exc
        _not_json(path, str(item.get("name", n)), item)
        out.append(item)
    return out
