"""Benchmark 3: discover + claim over a big domain table ("the data is the queue").

public.postings holds 1 M rows (100 k with --quick), 100 k (10 k) of them in status 'fetched',
spread over the table; a partial index holds exactly those. The actor's work_query selects
them; its on_complete moves a posting to 'classified', as a real pipeline step does, so the
work_query's answer shrinks as work completes. Each timed call is one
claim_batch(model, worker, 50), which tops the buffer up through discover first."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from harness import claim_and_complete, execute

from turing_pg import schema

ACTOR = "classify_postings"
MODEL = "qwen2.5:7b"
WORKER = "bench-discover"
BATCH = 50

DOMAIN_DDL = (
    "create table public.postings ("
    " id bigint primary key,"
    " status text not null,"
    " title text not null,"
    " body text not null,"
    " updated_at timestamptz not null default now())",
    # why: what an operator of such a pipeline creates for each inbox status: the work_query
    # then reads only the rows waiting for the actor.
    "create index postings_fetched on public.postings (id) where status = 'fetched'",
    """
    create function public.bench_mark_classified(
        p_ticket_id bigint, p_subject_id text, p_input jsonb, p_output jsonb
    ) returns void language sql as $$
        update public.postings set status = 'classified', updated_at = now()
        where id = p_subject_id::bigint
    $$
    """,
)
WORK_QUERY = "select id as subject_id, title from public.postings where status = 'fetched'"


def setup_domain(dsn: str, rows: int, pending: int) -> float:
    """The domain table with `pending` rows of `rows` in status 'fetched'. Returns seconds."""
    started = time.perf_counter()
    schema.upgrade(dsn)
    execute(dsn, *DOMAIN_DDL)
    every = max(rows // pending, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into public.postings (id, status, title, body) "
            "select g, case when g %% %(every)s = 0 then 'fetched' "
            "    when g %% 3 = 0 then 'committed' else 'classified' end, "
            "  'posting ' || g, repeat('lorem ipsum ', 20) "
            "from generate_series(1, %(rows)s) as g",
            {"rows": rows, "every": every},
        )
    execute(dsn, "vacuum analyze public.postings", "checkpoint")
    return time.perf_counter() - started


def register(dsn: str, buffer_size: int, name: str = ACTOR) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "select turing.register_actor(p_name => %(n)s, p_kind => 'script', p_model => %(m)s, "
            "p_script => 'true', p_work_query => %(q)s, "
            "p_on_complete => 'public.bench_mark_classified', p_buffer_size => %(b)s, "
            "p_batch_size => %(k)s, p_inbox => array['fetched'], p_outbox => array['classified'])",
            {"n": name, "m": MODEL, "q": WORK_QUERY, "b": buffer_size, "k": BATCH},
        )
        conn.execute("select turing.register_runner(p_worker => %(w)s, p_models => %(m)s)",
                     {"w": WORKER, "m": [MODEL]})


@dataclass
class DiscoverTimes:
    claim: list[float]
    with_discover: list[float]
    without_discover: list[float]
    discover_ms: list[float]
    complete: list[float]


def claim_cycles(dsn: str, cycles: int, warmup: int = 10) -> DiscoverTimes:
    """Timed claim_batch(model, worker, 50) calls, each followed by an untimed complete_batch.
    A call ran discover when actor_discovery.last_run_at moved; its duration is recorded too."""
    out = DiscoverTimes([], [], [], [], [])
    with psycopg.connect(dsn, autocommit=True) as conn:
        last = None
        for i in range(warmup + cycles):
            _, claim_s, complete_s = claim_and_complete(conn, MODEL, WORKER, BATCH)
            # why: read after the cycle, so this query is timed in neither call.
            run = conn.execute(
                "select d.last_run_at, d.last_duration_ms from turing.actor_discovery as d "
                "join turing.actors as a using (actor_id) where a.model = %(m)s "
                "order by d.last_run_at desc nulls last limit 1", {"m": MODEL}).fetchone()
            discovered = run is not None and run[0] != last
            last = run[0] if run else None
            if i < warmup:
                continue
            out.claim.append(claim_s)
            out.complete.append(complete_s)
            if discovered:
                out.with_discover.append(claim_s)
                out.discover_ms.append(float(run[1]))  # type: ignore[index]
            else:
                out.without_discover.append(claim_s)
    return out
