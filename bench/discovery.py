"""Benchmark 3: discover + claim over a big domain table ("the data is the queue").

public.postings holds 1 M rows (100 k with --quick), 100 k (10 k) of them in status 'fetched',
spread over the table; a partial index holds exactly those. The actor's work_query selects
them; its on_complete moves a posting to 'classified', as a real pipeline step does, so the
work_query's answer shrinks as work completes. Each timed cycle is what a runner does: its
discovery thread asks discover_due(model) and tops up each due actor (top_up), then the loop
calls claim_batch(model, worker, 50), which never discovers itself."""

from __future__ import annotations

import time
from dataclasses import dataclass

import harness
import psycopg
from harness import claim_and_complete, execute

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
    harness.upgrade(dsn)
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
        # why: once per database; a second registration of a running name needs its secret
        conn.execute("select turing.register_runner(p_worker => %(w)s, p_models => %(m)s) "
                     "where not exists (select from turing.runners where worker = %(w)s)",
                     {"w": WORKER, "m": [MODEL]})


@dataclass
class DiscoverTimes:
    claim: list[float]
    with_discover: list[float]
    without_discover: list[float]
    discover_ms: list[float]
    complete: list[float]


def claim_cycles(dsn: str, cycles: int, warmup: int = 10) -> DiscoverTimes:
    """Timed cycles: discover_due + top_up of the due actors (timed alone), then a timed
    claim_batch(model, worker, 50), then an untimed complete_batch."""
    out = DiscoverTimes([], [], [], [], [])
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(warmup + cycles):
            t0 = time.perf_counter()
            due = [r[0] for r in conn.execute(
                "select actor from turing.discover_due(p_model => %(m)s, p_want => %(n)s)",
                {"m": MODEL, "n": BATCH}).fetchall()]
            for actor in due:
                conn.execute("select turing.top_up(p_actor => %(a)s)", {"a": actor})
            discover_s = time.perf_counter() - t0
            _, claim_s, complete_s = claim_and_complete(conn, MODEL, WORKER, BATCH)
            if i < warmup:
                continue
            out.claim.append(claim_s)
            out.complete.append(complete_s)
            if due:
                out.with_discover.append(discover_s + claim_s)
                out.discover_ms.append(discover_s * 1000)
            else:
                out.without_discover.append(claim_s)
    return out
