"""The hot path looks tickets up by key: what one claim, completion, heartbeat or failure reads
does not grow with the open work of the fleet (DESIGN.md: claiming must not slow down as work
piles up).

Each test builds the state that misled the planner before: statistics gathered while every open
ticket was pending, then thousands of tickets pending or running. It then counts, with
pg_stat_xact_user_tables (this transaction's own reads), the ticket_open rows one call touched.
A plan that scans the open table or the partial index of running tickets reads thousands; looking
the batch up by key reads a few per ticket."""

from __future__ import annotations

from uuid import UUID

import psycopg
import pytest

from turing_pg.db import Turing

OPEN_TICKETS = 3000
BATCH = 10
# why: a lookup by key reads each ticket of the batch a few times (pick, update, triggers);
# a scan of the open table or of every running ticket reads OPEN_TICKETS.
MOST_ROWS_READ = 10 * BATCH
# the secret register_runner issued to each runner of the fixture (heartbeat needs it)
SECRETS: dict[str, str] = {}


def _rows_read(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
        "from pg_stat_xact_user_tables where relid = 'turing.ticket_open'::regclass"
    ).fetchone()
    return int(row[0]) if row else 0


def _measure(conn: psycopg.Connection, query: str, params: dict) -> tuple[list, int]:
    """Run one call in its own transaction; return its rows and the ticket_open rows it read."""
    with conn.transaction():
        before = _rows_read(conn)
        rows = conn.execute(query, params).fetchall()
        return rows, _rows_read(conn) - before


@pytest.fixture
def crowded(turing: Turing, conn: psycopg.Connection) -> str:
    """OPEN_TICKETS pending tickets of one actor, analysed while all are pending."""
    turing.register_actor(dict(
        name="crowd", kind="script", script="cat", model="cpu",
        work_query=f"select g::text as subject_id from generate_series(1, {OPEN_TICKETS}) as g",
        buffer_size=OPEN_TICKETS,
    ))
    found = conn.execute("select turing.discover('crowd')").fetchone()
    assert found is not None and found[0] == OPEN_TICKETS
    conn.execute("analyze turing.ticket_open")
    conn.execute("select turing.register_runner('fleet', array['cpu'])")
    SECRETS["me"] = conn.execute("select turing.register_runner('me', array['cpu'])").fetchone()[0]
    return "cpu"


def _claim(conn: psycopg.Connection, worker: str, limit: int) -> tuple[list, int]:
    return _measure(
        conn,
        "select ticket_id, lease_token from turing.claim_batch(%(m)s, %(w)s, %(n)s, '{}', %(n)s)",
        {"m": "cpu", "w": worker, "n": limit},
    )


def _my_batch_among_running(conn: psycopg.Connection) -> list[tuple[int, UUID]]:
    """The rest of the fleet runs all but BATCH tickets; 'me' runs the last BATCH."""
    fleet, _ = _claim(conn, "fleet", OPEN_TICKETS - BATCH)
    mine, _ = _claim(conn, "me", BATCH)
    assert len(fleet) == OPEN_TICKETS - BATCH and len(mine) == BATCH
    return [(r[0], r[1]) for r in mine]


@pytest.mark.parametrize("limit", [BATCH, 50])
def test_claim_reads_its_batch_not_the_pending_buffer(crowded, conn, limit):
    rows, read = _claim(conn, "me", limit)
    assert len(rows) == limit
    # why: at 50 the planner once joined the picked rows by hashing a scan of all open work.
    assert read <= 10 * limit, f"claim_batch read {read} open tickets to claim {limit}"


def test_completion_reads_its_batch_not_every_running_ticket(crowded, conn):
    mine = _my_batch_among_running(conn)
    rows, read = _measure(
        conn,
        "select accepted from turing.complete_batch(%(i)s, %(t)s, %(o)s::jsonb[])",
        {"i": [m[0] for m in mine], "t": [m[1] for m in mine], "o": ["{}"] * BATCH},
    )
    assert [r[0] for r in rows] == [True] * BATCH
    assert read <= MOST_ROWS_READ, f"complete_batch read {read} open tickets for {BATCH}"


def test_heartbeat_reads_its_batch_not_every_running_ticket(crowded, conn):
    mine = _my_batch_among_running(conn)
    rows, read = _measure(
        conn,
        "select held from turing.heartbeat(%(w)s, %(s)s, %(i)s, %(t)s)",
        {"w": "me", "s": SECRETS["me"], "i": [m[0] for m in mine], "t": [m[1] for m in mine]},
    )
    assert [r[0] for r in rows] == [True] * BATCH
    assert read <= MOST_ROWS_READ, f"heartbeat read {read} open tickets for {BATCH}"


def test_failure_reads_its_batch_not_every_running_ticket(crowded, conn):
    mine = _my_batch_among_running(conn)
    rows, read = _measure(
        conn,
        "select accepted from turing.fail_batch(%(i)s, %(t)s, %(e)s, %(k)s, %(r)s)",
        {"i": [m[0] for m in mine], "t": [m[1] for m in mine], "e": ["boom"] * BATCH,
         "k": ["failed"] * BATCH, "r": [True] * BATCH},
    )
    assert [r[0] for r in rows] == [True] * BATCH
    # why: each failure also inserts its retry into ticket_open (one unique-index check each).
    assert read <= MOST_ROWS_READ, f"fail_batch read {read} open tickets for {BATCH}"


@pytest.mark.parametrize("mode", ["auto", "force_custom_plan"])
def test_generic_plans_stay_inside_the_hot_statements(turing, conn, mode):
    """claim_batch and complete_batch plan their main statement once per session
    (plan_cache_mode = force_generic_plan) but only for that statement: the caller's transaction
    and the actor's on_complete keep the caller's setting."""
    conn.execute("create table public.seen (ticket_id bigint primary key, mode text not null)")
    conn.execute(
        """
        create function public.note_mode(p_ticket_id bigint, p_subject_id text, p_input jsonb,
                                         p_output jsonb)
        returns void language sql as $$
            insert into public.seen values (p_ticket_id, current_setting('plan_cache_mode'))
        $$
        """
    )
    turing.register_actor(dict(
        name="noter", kind="script", script="cat", model="cpu", work_query=None,
        on_complete="public.note_mode",
    ))
    turing.register_actor(dict(
        name="plain", kind="script", script="cat", model="gpu", work_query=None,
    ))
    for actor in ("noter", "plain"):
        turing.submit(actor, "1")
    with conn.transaction():
        conn.execute("select set_config('plan_cache_mode', %s, true)", (mode,))
        for model in ("cpu", "gpu"):
            [(ticket_id, token)] = conn.execute(
                "select ticket_id, lease_token from turing.claim_batch(%s, 'w', 5, '{}', 5)",
                (model,),
            ).fetchall()
            assert conn.execute("show plan_cache_mode").fetchone()[0] == mode
            [(accepted,)] = conn.execute(
                "select accepted from turing.complete_batch(%s, %s, array['{}'::jsonb])",
                ([ticket_id], [token]),
            ).fetchall()
            assert accepted
            assert conn.execute("show plan_cache_mode").fetchone()[0] == mode
    assert conn.execute("select mode from public.seen").fetchall() == [(mode,)]
