"""Benchmarks 2 and 4: claim latency against a small and a huge ticket_history, and the monitoring
views over that same history.

Two databases get the same six-actor pipeline; one gets 10 k finished tickets, the other 10 M
(1 M with --quick), loaded with one INSERT ... SELECT generate_series each: several actors and
models, a realistic mix of statuses, finished_at spread over 60 days in ticket order (as a real
append-only history is), every subject seen by every actor. The claim latency rounds alternate
between the two databases so that the shared machine's noise falls on both alike."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import harness
import psycopg
from harness import Latency, claim_and_complete, execute, scalar
from psycopg.types.json import Jsonb
from psycopg.types.string import TextLoader

# name, kind, model, inbox, outbox: the taxonomy pipeline of the story, in six steps.
PIPELINE: tuple[tuple[str, str, str, list[str], list[str]], ...] = (
    ("fetch_postings", "script", "cpu", ["new"], ["fetched"]),
    ("classify_taxonomy", "llm", "qwen2.5:7b", ["fetched"], ["classified"]),
    ("extract_skills", "llm", "qwen2.5:7b", ["classified"], ["skills_extracted"]),
    ("score_posting", "llm", "llama3.1:8b", ["skills_extracted"], ["scored"]),
    ("review_low_confidence", "human", "human", ["scored"], ["reviewed"]),
    ("commit_rows", "script", "cpu", ["reviewed"], ["committed"]),
)
# The actor whose claims are timed; it shares its model with classify_taxonomy, so the claim
# filters by model among two actors' work, as a runner of that model would.
CLAIM_ACTOR = "extract_skills"
CLAIM_MODEL = "qwen2.5:7b"
CLAIM_WORKER = "bench-latency"
CLAIM_BATCH = 10
HISTORY_DAYS = 60

# Status mix of the loaded history, in per mille: 0.2 % dead letters (kept until handled),
# 1 % cancelled, 4 % failed, 1 % timed out (both retried), the rest completed.
STATUS_MIX = "0.2 % dead, 1 % cancelled, 4 % failed, 1 % timed_out, 93.8 % completed"

HISTORY_INSERT = """
insert into turing.ticket_history (
    ticket_id, actor_id, model, subject_id, status, attempt, priority, input, output, error,
    failure_kind, source, chain_id, chain_depth, parent_ticket_id, created_at, run_after,
    started_at, finished_at, worker, batch_id
)
select
    g.id, a.actor_id, a.model, 'posting-' || (g.id / %(k)s), s.status,
    case when s.status in ('completed', 'cancelled') then 1 + (g.r %% 3 = 0)::int else 2 end,
    0,
    jsonb_build_object('title', 'posting ' || (g.id / %(k)s), 'lang', 'en'),
    case when s.status = 'completed' then jsonb_build_object(
        'label', 'T' || (g.r %% 97), 'confidence', (g.r %% 100) / 100.0) end,
    case when s.status <> 'completed' then
        'simulated ' || s.status || ': model answered malformed JSON (attempt ' || g.id || ')' end,
    case when s.status = 'dead' then 'failed' end,
    'discover', g.id, 0, null,
    t.finished - t.run - t.wait, '-infinity', t.finished - t.run, t.finished,
    'gpu-' || (g.id %% 4), g.id / 10
from (
    select id, abs(hashint8(id)::bigint) %% 1000000 as r
    from generate_series(%(first)s::bigint, %(last)s::bigint) as id
) as g
cross join lateral (
    select (%(actor_ids)s::integer[])[1 + g.id %% %(k)s] as actor_id,
        (%(models)s::text[])[1 + g.id %% %(k)s] as model
) as a
cross join lateral (
    select case
        when g.r %% 1000 < 2 then 'dead'
        when g.r %% 1000 < 12 then 'cancelled'
        when g.r %% 1000 < 52 then 'failed'
        when g.r %% 1000 < 62 then 'timed_out'
        else 'completed'
    end as status
) as s
cross join lateral (
    select
        %(start)s::timestamptz + (g.id - 1) * %(step)s * interval '1 microsecond'
            as finished,
        (50 + g.r %% 20000) * interval '1 millisecond' as run,
        (g.r %% 5000) * interval '1 millisecond' as wait
) as t
"""


def setup_pipeline(dsn: str) -> dict[str, int]:
    """Schema, the six actors and a runner; returns actor ids by name."""
    harness.upgrade(dsn)
    ids: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, kind, model, inbox, outbox in PIPELINE:
            row = conn.execute(
                "select turing.register_actor(p_name => %(n)s, p_kind => %(k)s, "
                "p_model => %(m)s, p_prompt_template => %(p)s, p_output_schema => %(o)s, "
                "p_script => %(s)s, p_inbox => %(i)s, p_outbox => %(x)s, "
                "p_final_outbox => %(f)s)",
                {
                    "n": name, "k": kind, "m": model,
                    "p": "Classify: {title}" if kind == "llm" else None,
                    "o": Jsonb({"type": "object"}) if kind == "llm" else None,
                    "s": "true" if kind == "script" else None,
                    "i": inbox, "x": outbox,
                    "f": ["committed"] if name == "commit_rows" else None,
                },
            ).fetchone()
            ids[name] = int(row[0]) if row else 0
        conn.execute(
            "select turing.register_runner(p_worker => %(w)s, p_models => %(m)s)",
            {"w": CLAIM_WORKER, "m": [CLAIM_MODEL]},
        )
    return ids


def load_history(dsn: str, rows: int, actor_ids: dict[str, int], chunk: int = 2_000_000
                 ) -> float:
    """Append `rows` finished tickets (chunks of one INSERT ... SELECT generate_series each, so
    the counts trigger's transition table stays bounded), then VACUUM ANALYZE. Returns seconds."""
    names = [p[0] for p in PIPELINE]
    models = [p[2] for p in PIPELINE]
    # finished_at runs from 60 days ago to a minute ago, one step per ticket id
    step_us = HISTORY_DAYS * 86400 * 1_000_000 // max(rows, 1)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = conn.execute(
            "select now() - %(d)s * interval '1 day'", {"d": HISTORY_DAYS}).fetchone()[0]  # type: ignore[index]
        for first in range(1, rows + 1, chunk):
            last = min(rows, first + chunk - 1)
            conn.execute(HISTORY_INSERT, {  # type: ignore[arg-type]
                "first": first, "last": last, "k": len(names), "start": start,
                "step": step_us, "actor_ids": [actor_ids[n] for n in names], "models": models,
            })
        conn.execute("select setval('turing.ticket_id_seq', %(n)s)", {"n": rows + 1})
        # why: the history is written directly, not through _finish, which records dead letters;
        # every (actor, subject) appears once here, so each dead row is an unhandled one.
        conn.execute(
            "insert into turing.dead_letters (ticket_id, actor_id, subject_id, model, attempt, "
            "failure_kind, error, finished_at, chain_id) select ticket_id, actor_id, "
            "subject_id, model, attempt, failure_kind, error, finished_at, chain_id "
            "from turing.ticket_history where status = 'dead'")
    # why: autovacuum would visit a freshly loaded table of this size during the measurement;
    # do its work now (visibility map, statistics) so every figure sees the settled table.
    execute(dsn, "vacuum analyze turing.ticket_history", "vacuum analyze turing.ticket_counts",
            "vacuum analyze turing.dead_letters", "checkpoint")
    return time.perf_counter() - started


def history_facts(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "select count(*), pg_size_pretty(pg_total_relation_size('turing.ticket_history')), "
            "pg_size_pretty(pg_relation_size('turing.ticket_history')) "
            "from turing.ticket_history").fetchone()
    assert row is not None
    return {"rows": int(row[0]), "total_size": row[1], "heap_size": row[2]}


# -- claim latency ---------------------------------------------------------------------------
def add_pending(dsn: str, n: int, tag: str) -> None:
    """n pending tickets of the claim actor, submitted in one statement."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "select count(turing.submit(p_actor => %(a)s, p_subject_id => %(t)s || '-' || g, "
            "p_input => jsonb_build_object('title', 'live posting ' || g))) "
            "from generate_series(1, %(n)s) as g",
            {"a": CLAIM_ACTOR, "t": tag, "n": n},
        )
    execute(dsn, "vacuum analyze turing.ticket_open")


@dataclass
class ClaimTimes:
    claim: list[float]
    complete: list[float]


def claim_cycles(dsn: str, cycles: int, warmup: int = 20) -> ClaimTimes:
    """`cycles` times: claim_batch(model, worker, 10) (timed) then complete_batch of what it
    returned (timed apart), on one connection, as one runner does."""
    out = ClaimTimes([], [])
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(warmup + cycles):
            _, claim_s, complete_s = claim_and_complete(conn, CLAIM_MODEL, CLAIM_WORKER,
                                                        CLAIM_BATCH)
            if i >= warmup:
                out.claim.append(claim_s)
                out.complete.append(complete_s)
    return out


# -- monitoring views ------------------------------------------------------------------------
VIEWS = (
    "v_dashboard", "v_runners", "v_stuck", "v_dead_letters", "v_timeout_recommendations",
    "v_failure_rates", "v_throughput_hourly", "v_alerts", "v_pipeline_edges", "v_counts",
)


TEXT_TYPES = ("timestamptz", "timestamp", "date", "interval", "numeric", "jsonb", "json", "uuid")


def compute_metrics_days(dsn: str, days: int = 8) -> list[float]:
    """What tick() leaves behind after running every day: metrics_daily for the last `days`
    days and the hourly throughput rollup. Returns the seconds each compute_metrics(day) took
    (today first), then the seconds roll_up_throughput() took."""
    took = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for back in range(days):
            t0 = time.perf_counter()
            conn.execute("select turing.compute_metrics(p_day => current_date - %(b)s)",
                         {"b": back})
            took.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        conn.execute("select turing.roll_up_throughput()")
        took.append(time.perf_counter() - t0)
    return took


def view_queries(dsn: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, query, params) for each view, plus turing.tickets for one chain and one subject
    picked from the middle of the history."""
    mid = int(scalar(dsn, "select max(ticket_id) / 2 from turing.ticket_history") or 1)
    subject = scalar(dsn, "select subject_id from turing.ticket_history where ticket_id = %s",
                     (mid,))
    out: list[tuple[str, str, dict[str, Any]]] = [
        (v, f"select * from turing.{v}", {}) for v in VIEWS
    ]
    out += [
        ("v_dead_letters, newest 50 (`turing dead`)",
         "select * from turing.v_dead_letters order by finished_at desc, ticket_id desc limit 50",
         {}),
        ("tickets where chain_id = X", "select * from turing.tickets where chain_id = %(c)s",
         {"c": mid}),
        ("tickets where subject_id = X",
         "select * from turing.tickets where subject_id = %(s)s", {"s": subject}),
        ("tickets where actor = A and subject_id = X",
         "select * from turing.tickets where actor = %(a)s and subject_id = %(s)s",
         {"a": CLAIM_ACTOR, "s": subject}),
    ]
    return out


def time_views(dsn: str, runs: int, budget_s: float = 20.0) -> dict[str, tuple[Latency, int]]:
    """p50/p99 of each view query over `runs` runs (after one warm-up), with its row count; a
    slow query stops after `budget_s` seconds (at least 3 runs).
    Rows are fetched as text: the figure is the server's work and the transfer, not Python's
    parsing (and '-infinity' run_after has no Python datetime)."""
    out: dict[str, tuple[Latency, int]] = {}
    queries = view_queries(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for type_name in TEXT_TYPES:
            conn.adapters.register_loader(type_name, TextLoader)
        for label, query, params in queries:
            nrows = len(conn.execute(query, params).fetchall())  # type: ignore[arg-type]
            times: list[float] = []
            deadline = time.perf_counter() + budget_s
            while len(times) < runs and (len(times) < 3 or time.perf_counter() < deadline):
                t0 = time.perf_counter()
                conn.execute(query, params).fetchall()  # type: ignore[arg-type]
                times.append(time.perf_counter() - t0)
            out[label] = (Latency.of(times), nrows)
    return out


def explain_nested(dsn: str, query: str, params: dict[str, Any], match: str) -> str:
    """The EXPLAIN ANALYZE of the statements run inside a function call whose text contains
    `match`, through auto_explain in this session only (the plans the function really used)."""
    notices: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        for setting in ("load 'auto_explain'", "set auto_explain.log_min_duration = 0",
                        "set auto_explain.log_nested_statements = on",
                        "set auto_explain.log_analyze = on", "set auto_explain.log_buffers = on",
                        "set auto_explain.log_triggers = on",
                        "set auto_explain.log_level = notice"):
            conn.execute(setting)  # type: ignore[arg-type]
        conn.execute(query, params).fetchall()  # type: ignore[arg-type]
    found = [n for n in notices if match.lower() in n.lower()]
    return "\n\n".join(found) if found else f"(no nested statement matched {match!r})"


def explain(dsn: str, query: str, params: dict[str, Any] | None = None) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "explain (analyze, buffers, costs off, timing on) " + query, params or {}  # type: ignore[operator]
        ).fetchall()
    return "\n".join(r[0] for r in rows)
