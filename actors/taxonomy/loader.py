"""Load the taxonomy demo into a database: its schema, its seed skills and its actors.

`turing demo` calls :func:`load_pipeline`, starts the runners, waits for the pipeline to drain and
prints :func:`taxonomy_tree`.

Rerunnable. Each load cancels the open tickets of the demo actors, drops and rebuilds the schema
``taxonomy_demo`` and re-registers the actors. Subject ids are uuids (``gen_random_uuid()``), so
they are new on every load: discover never re-runs a subject an actor completed, and with
serial ids the second run's raw skill 1 would look like the first run's, already done. The
ticket history of earlier runs stays in ``turing`` (it is the audit log) and simply names subjects
that no longer exist.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from turing_pg.actor_files import load_definitions
from turing_pg.db import Turing

HERE = Path(__file__).resolve().parent
SCHEMA_FILES = ("schema.sql", "functions.sql", "pipeline_role.sql")
SEED_FILE = HERE / "seed_skills.csv"


def pipeline_path() -> Path:
    """The actor file of the demo (a list under ``actors:``, in pipeline order)."""
    return HERE / "pipeline.yaml"


def seed_rows(limit: int | None = None) -> list[tuple[int, str, str]]:
    """(seq, posting_ref, raw_text) of the seed file, the first `limit` rows when given."""
    with SEED_FILE.open(newline="", encoding="utf-8") as fh:
        rows = [(i, r["posting"], r["skill"]) for i, r in enumerate(csv.DictReader(fh), start=1)]
    return rows if limit is None else rows[: max(0, limit)]


def cancel_open_tickets(turing: Turing, actors: list[str]) -> int:
    """Cancel the pending and running tickets of these actors (left over from an earlier run)."""
    known = {s.actor for s in turing.startup_state() if s.pending or s.running}
    cancelled = 0
    for actor in actors:
        if actor not in known:
            continue
        for status in ("pending", "running"):
            while True:
                rows = turing.find_tickets(actor=actor, status=status, limit=500)
                done = sum(
                    turing.cancel_ticket(r["ticket_id"], "taxonomy demo reloaded") for r in rows
                )
                cancelled += done
                # a ticket that finished meanwhile is not open any more: stop when none moved
                if not rows or not done:
                    break
    return cancelled


def load_pipeline(turing: Turing, conn: psycopg.Connection, limit: int | None = None) -> list[str]:
    """(Re)create the demo schema, load the seed skills, register the actors.

    Returns the actor names in pipeline order. `limit` keeps the first n seed skills.
    """
    definitions = load_definitions(pipeline_path())
    names = [d["name"] for d in definitions]
    # why: before the schema goes, so that no runner completes an old ticket against the new one
    cancel_open_tickets(turing, names)
    with conn.transaction():
        conn.execute("drop schema if exists taxonomy_demo cascade")
        for name in SCHEMA_FILES:
            conn.execute((HERE / name).read_text(encoding="utf-8"))
        with conn.cursor().copy(
            "copy taxonomy_demo.raw_skill (seq, posting_ref, raw_text) from stdin"
        ) as copy:
            for row in seed_rows(limit):
                copy.write_row(row)
    for definition in definitions:
        turing.register_actor(definition)
    return names


_TREE_QUERY = """
select
    l.category,
    l.subcategory,
    e.label,
    p.needs_review,
    count(m.raw_skill_id) as mentions,
    array_agg(distinct m.name order by m.name) as names
from taxonomy_demo.placement as p
inner join taxonomy_demo.entity as e on p.entity_id = e.entity_id
inner join taxonomy_demo.taxonomy_leaf as l on p.leaf = l.leaf
inner join taxonomy_demo.entity_member as m on e.entity_id = m.entity_id
group by l.category, l.subcategory, e.entity_id, e.label, p.needs_review
order by l.category, l.subcategory, count(m.raw_skill_id) desc, e.label
"""

_SUMMARY_QUERY = """
select
    (select count(*) from taxonomy_demo.raw_skill) as raw,
    (select count(*) from taxonomy_demo.raw_skill where status = 'rejected') as rejected,
    (select count(*) from taxonomy_demo.skill_name) as names,
    (select count(*) from taxonomy_demo.skill_name where status = 'merged') as merged,
    (select count(*) from taxonomy_demo.entity) as entities,
    (select count(*) from taxonomy_demo.arbitration) as arbitrated,
    (select array_agg(label order by label) from taxonomy_demo.entity
     where status not in ('placed', 'reviewed')) as unplaced
"""


def taxonomy_tree(conn: psycopg.Connection) -> str:
    """The placed skills as a text tree: category > subcategory > skill (mentions, aliases)."""
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(_TREE_QUERY).fetchall()
    summary = cur.execute(_SUMMARY_QUERY).fetchone() or {}

    by_category: dict[str, dict[str, list[dict[str, object]]]] = defaultdict(
        lambda: defaultdict(list))
    for row in rows:
        by_category[row["category"]][row["subcategory"]].append(row)

    lines = [
        f"{summary.get('raw', 0)} raw skills ({summary.get('rejected', 0)} rejected) -> "
        f"{summary.get('names', 0)} names ({summary.get('merged', 0)} merged) -> "
        f"{summary.get('entities', 0)} skills, {summary.get('arbitrated', 0)} arbitrated",
        "(? = low confidence, waiting for the optional human review)",
    ]
    for category, subcategories in by_category.items():
        skills = [s for group in subcategories.values() for s in group]
        lines.append(f"{category}  ({len(skills)} skills, "
                     f"{sum(int(s['mentions']) for s in skills)} mentions)")
        for subcategory, group in subcategories.items():
            lines.append(f"  {subcategory}  ({len(group)} skills, "
                         f"{sum(int(s['mentions']) for s in group)} mentions)")
            for skill in group:
                aliases = [n for n in skill["names"] if n != str(skill["label"]).lower()]
                also = f"  [{', '.join(aliases)}]" if aliases else ""
                flag = " ?" if skill["needs_review"] else ""
                lines.append(f"    {skill['label']} x{skill['mentions']}{flag}{also}")
    unplaced = summary.get("unplaced") or []
    if unplaced:
        lines.append(f"(not placed yet: {len(unplaced)}: {', '.join(unplaced)})")
    return "\n".join(lines)
