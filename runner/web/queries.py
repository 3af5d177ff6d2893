"""What each page of `turing web` shows, read through the SQL API (views and functions of the
`turing` schema) with the client of the session's own login, so PostgreSQL checks every read
and every action against that login's roles.

Nothing here counts or filters history: the SQL does (v_dashboard's trigger-kept counts, the
hourly rollup behind model_throughput, chain_story, ticket_page).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from turing_pg.db import Turing
from turing_pg.graph import Edge
from turing_pg.web import svg

CHART_HOURS = 6


def pipeline(t: Turing) -> dict[str, Any]:
    actors = t.view("v_dashboard")
    edges = [Edge(**e) for e in t.view("v_pipeline_edges")]
    models = sorted({(a["model"], a["enabled"]) for a in actors})
    return {"actors": actors, "graph": svg.pipeline(actors, edges),
            "models": sorted({m for m, _ in models}),
            "paused_models": sorted({m for m, enabled in models if not enabled})}


def runners(t: Turing) -> dict[str, Any]:
    return {"runners": t.runner_board()}


def alerts(t: Turing) -> dict[str, Any]:
    return {"alerts": t.view("v_alerts")}


def charts(t: Turing, hours: int = CHART_HOURS) -> dict[str, Any]:
    """Throughput, latency and tokens per model over the last hours (model_throughput)."""
    rows = t.model_throughput(hours)
    now = datetime.now().astimezone().replace(minute=0, second=0, microsecond=0)
    axis = [now - timedelta(hours=h) for h in range(hours - 1, -1, -1)]
    by: dict[str, dict[str, dict[datetime, float | None]]] = defaultdict(
        lambda: defaultdict(dict))
    for r in rows:
        hour = r["hour"].astimezone(now.tzinfo)
        by["completed"][r["model"]][hour] = r["completed"]
        by["failed"][r["model"]][hour] = r["failed"]
        by["mean_ms"][r["model"]][hour] = r["mean_ms"]
        by["p95_ms"][r["model"]][hour] = r["p95_ms"]
        if r["tokens"] is not None:
            by["tokens"][r["model"]][hour] = r["tokens"]
    return {
        "charts": [
            svg.line_chart("completed per hour", "attempts", axis, by["completed"]),
            svg.line_chart("failed per hour", "attempts", axis, by["failed"]),
            svg.line_chart("mean run time", "ms", axis, by["mean_ms"]),
            svg.line_chart("p95 run time, slowest actor", "ms", axis, by["p95_ms"]),
        ],
        # why: only LLM calls have tokens; a pipeline of scripts has no tokens chart.
        "tokens": svg.line_chart("tokens per hour", "tokens", axis, by["tokens"])
        if by["tokens"] else None,
        "rows": rows,
        "hours": hours,
    }


def dead_letters(t: Turing) -> dict[str, Any]:
    rows = t.dead_letters(200)
    actors = sorted({r["actor"] for r in rows})
    return {"dead": rows, "actors": actors}


def tickets(t: Turing, actor: str | None, status: str | None) -> dict[str, Any]:
    return {"tickets": t.find_tickets(actor=actor, status=status, limit=100),
            "actor": actor, "status": status}


def ticket(t: Turing, ticket_id: int) -> dict[str, Any]:
    return {"page": t.ticket_page(ticket_id)}


def chain(t: Turing, id_: int) -> dict[str, Any]:
    return {"story": t.chain_story(id_, 500)}


PAGES = {
    "pipeline": pipeline, "runners": runners, "alerts": alerts, "charts": charts,
    "dead": dead_letters,
}

# -- actions: each one named SQL function, refused by PostgreSQL when the login may not


def retry(t: Turing, ticket_id: int) -> str:
    return f"dead letter {ticket_id} retried as ticket {t.retry_dead(ticket_id)}"


def retry_all(t: Turing, actor: str) -> str:
    return f"{t.retry_all_dead(actor)} dead letters of {actor} retried"


def cancel(t: Turing, ticket_id: int) -> str:
    if t.cancel_ticket(ticket_id, "cancelled in turing web"):
        return f"ticket {ticket_id} cancelled"
    return f"ticket {ticket_id} was not open any more"


def set_actor(t: Turing, actor: str, enabled: bool) -> str:
    t.set_actor_enabled(actor, enabled)
    return f"actor {actor} {'resumed' if enabled else 'paused'}"


def set_model(t: Turing, model: str, enabled: bool) -> str:
    n = t.set_model_enabled(model, enabled)
    return f"{n} actors of model {model} {'resumed' if enabled else 'paused'}"
