"""Render the pipeline (turing.v_pipeline_edges) as Mermaid or Graphviz DOT, and SVG/PNG.

The edges come from SQL; this module only draws them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Edge:
    from_actor: str | None
    to_actor: str | None
    status: str
    edge_kind: str  # flow | source | final | unwired


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    model: str
    enabled: bool


def _id(name: str) -> str:
    return "a_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _sid(status: str, kind: str) -> str:
    return f"{kind}_" + re.sub(r"[^A-Za-z0-9_]", "_", status)


def mermaid(nodes: Iterable[Node], edges: Iterable[Edge]) -> str:
    lines = ["flowchart LR"]
    for n in nodes:
        label = f"{n.name}<br/><small>{n.kind} · {n.model}</small>"
        shape = f'(["{label}"])' if n.kind == "human" else f'["{label}"]'
        lines.append(f"    {_id(n.name)}{shape}")
        if not n.enabled:
            lines.append(f"    class {_id(n.name)} disabled")
    for e in edges:
        if e.edge_kind == "flow":
            lines.append(f"    {_id(e.from_actor or '')} -->|{e.status}| {_id(e.to_actor or '')}")
        elif e.edge_kind == "source":
            sid = _sid(e.status, "src")
            lines.append(f'    {sid}(("{e.status}")) --> {_id(e.to_actor or "")}')
        else:
            sid = _sid(e.status, e.edge_kind)
            lines.append(f'    {_id(e.from_actor or "")} -->|{e.status}| {sid}[/"{e.status}"/]')
            lines.append(f"    class {sid} {e.edge_kind}")
    lines += [
        "    classDef unwired fill:#fdd,stroke:#c00,color:#900",
        "    classDef final fill:#dfd,stroke:#080",
        "    classDef disabled fill:#eee,stroke:#999,color:#999",
    ]
    return "\n".join(lines) + "\n"


def dot(nodes: Iterable[Node], edges: Iterable[Edge]) -> str:
    lines = ["digraph turing {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for n in nodes:
        style = ', style="dashed", fontcolor="gray"' if not n.enabled else ""
        shape = "ellipse" if n.kind == "human" else "box"
        lines.append(f'  {_id(n.name)} [label="{n.name}\\n{n.kind} · {n.model}", '
                     f"shape={shape}{style}];")
    for e in edges:
        if e.edge_kind == "flow":
            lines.append(f'  {_id(e.from_actor or "")} -> {_id(e.to_actor or "")} '
                         f'[label="{e.status}"];')
        elif e.edge_kind == "source":
            sid = _sid(e.status, "src")
            lines.append(f'  {sid} [label="{e.status}", shape=circle];')
            lines.append(f"  {sid} -> {_id(e.to_actor or '')};")
        else:
            sid = _sid(e.status, e.edge_kind)
            color = "red" if e.edge_kind == "unwired" else "darkgreen"
            lines.append(f'  {sid} [label="{e.status}", shape=note, color={color}, '
                         f"fontcolor={color}];")
            lines.append(f'  {_id(e.from_actor or "")} -> {sid} [label="{e.status}", '
                         f"color={color}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


class RendererMissing(RuntimeError):
    pass


def render(dot_source: str, output: Path) -> None:
    """Write SVG or PNG (by the file's suffix) with Graphviz's `dot`."""
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise ValueError(f"--output must end in .svg or .png, got {output.name}")
    exe = shutil.which("dot")
    if exe is None:
        raise RendererMissing(
            "drawing SVG/PNG needs Graphviz's `dot` (apt-get install graphviz); "
            "or print Mermaid without --output and paste it where Mermaid renders"
        )
    subprocess.run([exe, f"-T{fmt}", "-o", str(output)], input=dot_source.encode(), check=True)
