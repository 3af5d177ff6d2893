"""SVG drawn on the server for `turing web`: the pipeline graph and the line charts.

The numbers come from SQL (v_dashboard, v_pipeline_edges, model_throughput); this module only
lays them out. Every text is escaped here, so the result may be put into a page as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Any

from markupsafe import Markup

from turing_pg.graph import Edge

NODE_W, NODE_H = 220, 112
COL_W, ROW_H = 290, 136
PAD = 24
SMALL_W, SMALL_H = 110, 34


def duration(value: timedelta | None) -> str:
    """An interval as an operator reads it: 0s, 42s, 3m 05s, 2h 10m; '–' for none."""
    if value is None:
        return "–"
    s = int(value.total_seconds())
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def _num(value: Any) -> str:
    return "–" if value is None else str(value)


@dataclass
class _Node:
    key: str
    kind: str  # actor | source | final | unwired
    label: str
    row: Mapping[str, Any] = field(default_factory=dict)
    layer: int = 0
    x: float = 0
    y: float = 0

    @property
    def size(self) -> tuple[int, int]:
        return (NODE_W, NODE_H) if self.kind == "actor" else (SMALL_W, SMALL_H)


def _layers(nodes: dict[str, _Node], links: list[tuple[str, str, str]]) -> None:
    """Longest path from the nodes nothing feeds; a cycle is cut after len(nodes) rounds, so a
    pipeline that loops back (a reviewer returning work) still draws."""
    for _ in range(len(nodes)):
        moved = False
        for a, b, _status in links:
            if nodes[b].layer < nodes[a].layer + 1 and nodes[a].layer + 1 < len(nodes):
                nodes[b].layer = nodes[a].layer + 1
                moved = True
        if not moved:
            break


def pipeline(actors: Sequence[Mapping[str, Any]], edges: Iterable[Edge]) -> Markup:
    """The pipeline as SVG: a box per actor (rows of v_dashboard) with its open, running, done
    and dead tickets, rate, p95 and ETA; arrows labelled with the statuses that join them."""
    nodes: dict[str, _Node] = {
        f"a:{r['actor']}": _Node(f"a:{r['actor']}", "actor", r["actor"], r) for r in actors
    }
    links: list[tuple[str, str, str]] = []
    for e in edges:
        if e.edge_kind == "flow":
            a, b = f"a:{e.from_actor}", f"a:{e.to_actor}"
        elif e.edge_kind == "source":
            a, b = f"s:{e.status}", f"a:{e.to_actor}"
            nodes.setdefault(a, _Node(a, "source", e.status))
        else:
            a, b = f"a:{e.from_actor}", f"{e.edge_kind}:{e.from_actor}:{e.status}"
            nodes.setdefault(b, _Node(b, e.edge_kind, e.status))
        if a in nodes and b in nodes:
            links.append((a, b, e.status))
    _layers(nodes, links)
    rows: dict[int, int] = {}
    # why: the statuses fed from outside go on top, so their arrows run down into the pipeline
    for n in sorted(nodes.values(), key=lambda n: n.kind != "source"):
        index = rows.get(n.layer, 0)
        rows[n.layer] = index + 1
        w, h = n.size
        n.x = PAD + n.layer * COL_W + (NODE_W - w) / 2
        n.y = PAD + index * ROW_H + (NODE_H - h) / 2
    width = PAD * 2 + (max(rows) + 1 if rows else 1) * COL_W - (COL_W - NODE_W)
    height = PAD * 2 + (max(rows.values()) if rows else 1) * ROW_H - (ROW_H - NODE_H)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pipeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="the pipeline">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#667"/></marker></defs>',
    ]
    for a, b, status in links:
        out.append(_link(nodes[a], nodes[b], status))
    for n in nodes.values():
        out.append(_actor(n) if n.kind == "actor" else _small(n))
    out.append("</svg>")
    return Markup("".join(out))


def _link(a: _Node, b: _Node, status: str) -> str:
    aw, ah = a.size
    bw, bh = b.size
    x1, y1 = a.x + aw, a.y + ah / 2
    x2, y2 = b.x, b.y + bh / 2
    if b.layer <= a.layer:  # a loop back: leave below both boxes
        low = max(a.y + ah, b.y + bh) + 18
        d = f"M{a.x + aw / 2},{a.y + ah} C{a.x + aw / 2},{low} {b.x + bw / 2},{low} " \
            f"{b.x + bw / 2},{b.y + bh}"
        lx, ly = (a.x + b.x + aw) / 2, low - 2
    else:
        mid = (x1 + x2) / 2
        d = f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"
        lx, ly = mid, (y1 + y2) / 2 - 4
    return (f'<path d="{d}" fill="none" stroke="#667" stroke-width="1.4" '
            f'marker-end="url(#arrow)"/>'
            f'<text x="{lx}" y="{ly}" class="edge-label" text-anchor="middle">'
            f"{escape(status)}</text>")


def _small(n: _Node) -> str:
    colour = {"source": ("#eef", "#669"), "final": ("#dfd", "#080"),
              "unwired": ("#fdd", "#c00")}[n.kind]
    w, h = n.size
    shape = (f'<rect x="{n.x}" y="{n.y}" width="{w}" height="{h}" rx="{h / 2}" '
             f'fill="{colour[0]}" stroke="{colour[1]}"/>')
    return (f'<g class="status {n.kind}">{shape}<text x="{n.x + w / 2}" y="{n.y + h / 2 + 4}" '
            f'text-anchor="middle" fill="{colour[1]}">{escape(n.label)}</text></g>')


def _actor(n: _Node) -> str:
    r = n.row
    state = ("paused" if not r.get("enabled") else "dead" if r.get("dead") else
             "running" if r.get("running") else "idle")
    stroke = {"paused": "#999", "dead": "#c00", "running": "#1565c0", "idle": "#445"}[state]
    dash = ' stroke-dasharray="5 3"' if state == "paused" else ""
    x, y = n.x, n.y
    name = escape(str(r["actor"]))

    def cell(cls: str, label: str, value: Any) -> str:
        return (f'<tspan class="label">{label} </tspan><tspan class="{cls}" '
                f'data-actor="{name}">{escape(_num(value))}</tspan>')

    p95 = r.get("p95_ms")
    lines = [
        f'<text x="{x + 10}" y="{y + 20}" class="name">{name}'
        f'<tspan class="label"> {escape(str(r["kind"]))} · {escape(str(r["model"]))}'
        f'{" · paused" if state == "paused" else ""}</tspan></text>',
        f'<text x="{x + 10}" y="{y + 42}">{cell("open", "open", r.get("pending"))}  '
        f'{cell("running", "running", r.get("running"))}</text>',
        f'<text x="{x + 10}" y="{y + 62}">{cell("done", "done 1h", r.get("done_last_hour"))}  '
        f'{cell("dead", "dead", r.get("dead"))}</text>',
        f'<text x="{x + 10}" y="{y + 82}">{cell("rate", "rate/min", r.get("rate_per_min"))}  '
        f'{cell("p95", "p95", "–" if p95 is None else f"{p95:g} ms")}</text>',
        f'<text x="{x + 10}" y="{y + 102}">{cell("eta", "ETA", duration(r.get("eta")))}</text>',
    ]
    return (f'<g class="actor {state}" data-actor="{name}"><a href="/tickets?actor={name}">'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="#fff" '
            f'stroke="{stroke}" stroke-width="2"{dash}/>{"".join(lines)}</a></g>')


PALETTE = ("#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037")
CHART_W, CHART_H = 560, 200
MARGIN_L, MARGIN_B, MARGIN_T = 56, 26, 14


def line_chart(title: str, unit: str, hours: Sequence[datetime],
               series: Mapping[str, Mapping[datetime, float | None]]) -> Markup:
    """One line per model over the given hours; a gap where a model has no value."""
    top = max((v for s in series.values() for v in s.values() if v is not None), default=0)
    top = top or 1
    plot_w, plot_h = CHART_W - MARGIN_L - 26, CHART_H - MARGIN_B - MARGIN_T
    step = plot_w / max(len(hours) - 1, 1)

    def px(i: int) -> float:
        return MARGIN_L + i * step

    def py(v: float) -> float:
        return MARGIN_T + plot_h - v / top * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{CHART_W}" '
           f'height="{CHART_H + 18 * max(len(series), 1)}" role="img" '
           f'aria-label="{escape(title)}">',
           f'<text x="{MARGIN_L}" y="11" class="chart-title">{escape(title)} ({escape(unit)})'
           f"</text>",
           f'<line x1="{MARGIN_L}" y1="{MARGIN_T + plot_h}" x2="{MARGIN_L + plot_w}" '
           f'y2="{MARGIN_T + plot_h}" stroke="#999"/>',
           f'<text x="{MARGIN_L - 6}" y="{MARGIN_T + 8}" text-anchor="end" class="axis">'
           f"{top:.4g}</text>",
           f'<text x="{MARGIN_L - 6}" y="{MARGIN_T + plot_h}" text-anchor="end" '
           f'class="axis">0</text>']
    for i, h in enumerate(hours):
        out.append(f'<text x="{px(i)}" y="{CHART_H - 8}" text-anchor="middle" class="axis">'
                   f'{h.strftime("%H:00")}</text>')
    if not series:
        out.append(f'<text x="{MARGIN_L + 10}" y="{MARGIN_T + plot_h / 2}" class="axis">'
                   f"nothing in these hours</text>")
    for k, (model, values) in enumerate(sorted(series.items())):
        colour = PALETTE[k % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, h in enumerate(hours):
            v = values.get(h)
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{px(i):.1f},{py(v):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
            elif run:
                out.append(f'<polyline points="{" ".join(run)}" fill="none" '
                           f'stroke="{colour}" stroke-width="2"/>')
        ly = CHART_H + 14 + 18 * k
        out.append(f'<rect x="{MARGIN_L}" y="{ly - 9}" width="10" height="10" '
                   f'fill="{colour}"/><text x="{MARGIN_L + 16}" y="{ly}" class="legend">'
                   f"{escape(model)}</text>")
    out.append("</svg>")
    return Markup("".join(out))
