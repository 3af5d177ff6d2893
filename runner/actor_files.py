"""Actor definition files: YAML with one actor, or a list under `actors:`.

`prompt_template_file` and `output_schema_file` name files next to the YAML file, so prompts and
schemas stay readable on their own (the demo pipeline under actors/taxonomy does this)."""

from __future__ import annotations

import json
from pathlib import Path

from turing_pg.db import ActorDefinition, InvalidArgument


def load_definitions(path: Path) -> list[ActorDefinition]:
    """Parse an actor file into definitions for Turing.register_actor."""
    import yaml

    data = yaml.safe_load(path.read_text())
    items = data.get("actors", [data]) if isinstance(data, dict) else data
    out = []
    fields = set(ActorDefinition.__dataclass_fields__)
    for item in items:
        unknown = set(item) - fields - {"prompt_template_file", "output_schema_file"}
        if unknown:
            raise InvalidArgument(f"{path}: unknown actor field(s) {sorted(unknown)}",
                                  f"allowed: {sorted(fields)}")
        item = dict(item)
        if "prompt_template_file" in item:
            item["prompt_template"] = (path.parent / item.pop("prompt_template_file")).read_text()
        if "output_schema_file" in item:
            item["output_schema"] = json.loads(
                (path.parent / item.pop("output_schema_file")).read_text())
        out.append(ActorDefinition(**item))
    return out
