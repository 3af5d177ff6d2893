"""Chaos on the discovery side: a poison subject in a work_query, a slow work_query beside a fast
actor of the same model, a work_query past its time budget, finished subjects across retention.
Each asserts: the rest flows, nothing is lost or run twice, the right alert is raised and cleared,
and what `turing check` / `turing status` show."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import psycopg
from conftest import wait_for
from test_runner import completed, history, open_count

from turing_pg.db import Turing


def sql_actor(name: str, work_query: str, **kw: Any) -> dict[str, Any]:
    """A sql actor over public.items that marks its item done (the outbox)."""
    return {"name": name, "kind": "sql", "model": "cpu", "sql_function": "public.item_done",
            "work_query": work_query, "inbox": ["new"], "outbox": ["done"],
            "final_outbox": ["done"], "max_attempts": 1, **kw}


def items(conn: psycopg.Connection, ids: list[str]) -> None:
    conn.execute("create table if not exists public.items (id text, status text not null "
                 "default 'new', runs integer not null default 0)")
    conn.execute("insert into public.items (id) select unnest(%s::text[])", (ids,))
    conn.execute("""
        create or replace function public.item_done(p_subject_id text, p_input jsonb)
        returns jsonb language sql as $$
            update public.items set status = 'done', runs = runs + 1 where id = p_subject_id
            returning jsonb_build_object('id', id)
        $$""")


def problems(conn: psycopg.Connection, actor: str) -> dict[str, str]:
    return dict(conn.execute(
        "select problem, message from turing.v_discovery_problems where actor = %s",
        (actor,)).fetchall())


def sleeping(conn: psycopg.Connection) -> int:
    """Backends of this database inside a pg_sleep (the slow work_query)."""
    return conn.execute("select count(*) from pg_stat_activity where wait_event = 'PgSleep' "
                        "and datname = current_database()").fetchone()[0]


def cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "turing_pg.cli", *args, "--dsn", dsn],
                          capture_output=True, text=True, timeout=60)


def test_a_poison_subject_is_rejected_alone_and_reported(
        dsn: str, turing: Turing, conn: psycopg.Connection, start_runner: Any) -> None:
    items(conn, [f"i{n}" for n in range(20)])
    conn.execute("insert into public.items (id) values (null), (''), (repeat('x', 2000))")
    turing.register_actor(sql_actor(
        "mark", "select id as subject_id from public.items where status = 'new'"))
    start_runner("--model", "cpu")
    wait_for(lambda: completed(conn, "mark") == 20, what="the 20 good subjects")
    wait_for(lambda: "subjects_rejected" in problems(conn, "mark"), what="the rejection report")
    message = problems(conn, "mark")["subjects_rejected"]
    assert "3 row(s)" in message
    for reason in ("subject_id is NULL", "subject_id is empty", "longer than 1024 bytes"):
        assert reason in message
    check = cli(dsn, "check", "--json")
    assert any(f["check_name"] == "subjects_rejected" and f["actor"] == "mark"
               for f in json.loads(check.stdout)), check.stdout + check.stderr
    wait_for(lambda: any(a["alert"] == "subjects_rejected"
                         for a in json.loads(cli(dsn, "status", "--json").stdout)["alerts"]),
             what="the alert in turing status")
    # the data is fixed: the report and the alert clear by themselves
    conn.execute("delete from public.items where id is null or id = '' or length(id) > 1024")
    wait_for(lambda: "subjects_rejected" not in problems(conn, "mark"), timeout=30,
             what="the report to clear")
    wait_for(lambda: conn.execute(
        "select count(*) from turing.alert_state where alert = 'subjects_rejected' "
        "and cleared_at is not null").fetchone()[0] == 1, timeout=30, what="the alert to clear")
    assert conn.execute("select max(runs) from public.items").fetchone()[0] == 1


def test_a_slow_work_query_does_not_hold_up_a_fast_actor_of_the_same_model(
        turing: Turing, conn: psycopg.Connection, start_runner: Any) -> None:
    items(conn, [f"i{n}" for n in range(30)])
    conn.execute("create table public.slow_items (id text primary key)")
    turing.register_actor(sql_actor(
        "slow", "select id as subject_id from public.slow_items, pg_sleep(20)",
        outbox=["x"], final_outbox=["x"]))
    turing.register_actor(sql_actor(
        "fast", "select id as subject_id from public.items where status = 'new'"))
    start_runner("--model", "cpu", "--discover-timeout", "60")
    wait_for(lambda: sleeping(conn), what="the slow work_query to run")
    started = time.monotonic()
    wait_for(lambda: completed(conn, "fast") == 30, timeout=15, what="the fast actor's 30")
    assert time.monotonic() - started < 15
    assert sleeping(conn) == 1, "the fast actor drained while the slow work_query still ran"


def test_a_work_query_past_its_budget_is_cut_off_and_reported(
        dsn: str, turing: Turing, conn: psycopg.Connection, start_runner: Any) -> None:
    items(conn, ["a", "b"])
    turing.register_actor(sql_actor(
        "mark", "select id as subject_id from public.items, pg_sleep(5) where status = 'new'"))
    start_runner("--model", "cpu", "--discover-timeout", "1")
    wait_for(lambda: "discover_failed" in problems(conn, "mark"), timeout=30,
             what="the budget to cut the query off")
    assert "statement timeout" in problems(conn, "mark")["discover_failed"]
    assert cli(dsn, "check").returncode == 1, "a failing work_query is an error in check"
    turing.set_actor("mark", {"work_query": "select id as subject_id from public.items "
                                            "where status = 'new'"})
    wait_for(lambda: completed(conn, "mark") == 2, timeout=30, what="the fixed query to flow")
    wait_for(lambda: "discover_failed" not in problems(conn, "mark"), what="the report to clear")


def test_done_stays_done_across_retention_and_rerun_is_explicit(
        dsn: str, turing: Turing, conn: psycopg.Connection, start_runner: Any) -> None:
    items(conn, ["a", "b", "c"])
    turing.register_actor(sql_actor(
        "mark", "select id as subject_id from public.items where status = 'new'"))
    runner = start_runner("--model", "cpu", "--exit-when-idle", "2")
    wait_for(lambda: completed(conn, "mark") == 3, what="the first run")
    runner.wait(timeout=30)
    # retention prunes the whole history, then a person resets every status to re-run
    conn.execute("update turing.retention set keep = interval '0' where status = 'completed'")
    conn.execute("select turing.prune_history()")
    assert history(conn, "mark") == []
    conn.execute("update public.items set status = 'new'")
    assert turing.top_up("mark") == 0, "finished subjects are not run again by themselves"
    assert open_count(conn, "mark") == 0
    assert "3 subject(s) it already finished" in problems(conn, "mark")["outbox_not_written"]
    assert "turing rerun mark --all" in problems(conn, "mark")["outbox_not_written"]
    one = cli(dsn, "rerun", "mark", "--subject", "b")
    assert one.returncode == 0 and "subject b: ticket" in one.stdout, one.stderr
    again = cli(dsn, "rerun", "mark", "--subject", "b")
    assert again.returncode == 5 and "already has an open ticket" in again.stderr
    missing = cli(dsn, "rerun", "mark", "--subject", "zzz")
    assert missing.returncode == 4 and "not in the inbox" in missing.stderr
    assert cli(dsn, "rerun", "mark").returncode == 2, "neither --subject nor --all"
    rest = cli(dsn, "rerun", "mark", "--all", "--json")
    assert sorted(r["subject_id"] for r in json.loads(rest.stdout)) == ["a", "c"]
    start_runner("--model", "cpu", "--exit-when-idle", "2").wait(timeout=30)
    assert conn.execute("select array_agg(runs order by id) from public.items").fetchone()[0] \
        == [2, 2, 2]
