"""Migrations, least privilege, bad input, retention."""

from __future__ import annotations

import subprocess
import sys
import threading

import psycopg
import pytest

from turing_pg import schema
from turing_pg.db import (
    DiscoverFailed,
    InvalidActor,
    InvalidArgument,
    InvalidOutput,
    InvalidWorkQuery,
    UnknownActor,
    UnknownModel,
)

CATALOG = {
    "columns": """
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)
        from pg_attribute a join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where n.nspname in ('turing', 'pgmq') and a.attnum > 0 and not a.attisdropped
        order by 1, 2""",
    "constraints": """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        from pg_constraint where connamespace = 'turing'::regnamespace order by 1, 2""",
    "indexes": """
        select indexname, indexdef from pg_indexes where schemaname in ('turing', 'pgmq')
        order by 1""",
    "functions": """
        select p.oid::regprocedure::text, md5(pg_get_functiondef(p.oid)),
               obj_description(p.oid, 'pg_proc'), p.proacl::text
        from pg_proc p where p.pronamespace in ('turing'::regnamespace, 'pgmq'::regnamespace)
        order by 1""",
    "views": """
        select viewname, md5(definition) from pg_views where schemaname = 'turing' order by 1""",
    "triggers": """
        select tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
        from pg_trigger where not tgisinternal order by 1, 2""",
    "relations": """
        select c.relname, c.relkind, obj_description(c.oid, 'pg_class'), c.relacl::text
        from pg_class c where c.relnamespace in ('turing'::regnamespace, 'pgmq'::regnamespace)
        and c.relkind in ('r', 'v', 'S', 'p') order by 1""",
}


def catalog(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        return {k: conn.execute(q).fetchall() for k, q in CATALOG.items()}


def test_fresh_install_then_rerun_is_a_noop(empty_dsn):
    first = schema.upgrade(empty_dsn)
    assert any("0001_core" in line for line in first)
    assert any("pgmq" in line for line in first)
    before = catalog(empty_dsn)
    second = schema.upgrade(empty_dsn)
    assert second == ["re-applied functions, triggers, views and privileges"]
    assert catalog(empty_dsn) == before
    st = schema.status(empty_dsn)
    assert st.pending == [] and st.pgmq_installed
    assert [v for v, _ in st.applied] == [m.version for m in schema.migrations()]


def test_replaying_migrations_one_by_one_equals_a_fresh_install(pg_server, empty_dsn, dsn):
    """Upgrade in one run per migration (as successive releases would) and compare catalogues
    with a fresh install. Functions and views are re-applied only at the end: the files of this
    release need this release's tables (an older release shipped its own files)."""
    for m in schema.migrations():
        schema.upgrade(empty_dsn, up_to=m.version, reapply=False)
    schema.upgrade(empty_dsn)
    assert catalog(empty_dsn) == catalog(dsn)


def test_two_db_up_at_once_both_succeed(empty_dsn):
    results: list[object] = []

    def up() -> None:
        try:
            results.append(schema.upgrade(empty_dsn))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=up) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(isinstance(r, list) for r in results), results
    applied = [r for r in results if any("0001_core" in line for line in r)]
    assert len(applied) == 1, "exactly one installer applied the migrations"


def test_two_db_up_processes_at_once(empty_dsn):
    code = "import sys; from turing_pg import schema; schema.upgrade(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, empty_dsn]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert schema.status(empty_dsn).pending == []


def test_a_changed_migration_is_refused(empty_dsn, monkeypatch):
    schema.upgrade(empty_dsn)
    real = schema.migrations()
    changed = [schema.Migration(real[0].version, real[0].name, real[0].sql + "\n-- edited")]
    monkeypatch.setattr(schema, "migrations", lambda: changed + real[1:])
    with pytest.raises(schema.SchemaError, match="append-only"):
        schema.upgrade(empty_dsn)


# -- least privilege ----------------------------------------------------------------------------
def test_runner_role_cannot_read_domain_tables_or_change_actors(turing, conn, jobs):
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat",
        work_query="select id as subject_id from public.jobs where status = 'new'"))
    conn.execute("set role turing_runner")
    for statement in (
        "select * from public.jobs",
        "select * from turing.actors",
        "select * from turing.ticket_open",
        "update turing.actors set enabled = false",
        "select turing.register_actor(p_name => 'x', p_kind => 'script', p_script => 'cat')",
        "select turing.submit('scorer', '1')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    # ... but it can run the runner API, which reads the domain through the work_query
    batch = conn.execute("select ticket_id from turing.claim_batch('cpu', 'w', 2)").fetchall()
    assert len(batch) == 2
    conn.execute("reset role")
    assert conn.execute("select count(*) from turing.actors where enabled").fetchone()[0] == 1


def test_viewer_role_reads_views_only(conn):
    conn.execute("set role turing_viewer")
    conn.execute("select * from turing.v_counts").fetchall()
    conn.execute("select * from turing.v_stuck").fetchall()
    conn.execute("select * from turing.v_timeout_recommendations").fetchall()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from turing.ticket_history")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select turing.reap()")


def test_every_table_view_and_function_is_documented(conn):
    undocumented = conn.execute(
        """
        select c.relname from pg_class c
        where c.relnamespace = 'turing'::regnamespace and c.relkind in ('r', 'v')
          and obj_description(c.oid, 'pg_class') is null
        union all
        select p.oid::regprocedure::text from pg_proc p
        where p.pronamespace = 'turing'::regnamespace
          and obj_description(p.oid, 'pg_proc') is null
        """
    ).fetchall()
    assert undocumented == []


def test_api_functions_pin_their_search_path(conn):
    unpinned = conn.execute(
        """
        select p.proname from pg_proc p
        where p.pronamespace = 'turing'::regnamespace
          and not exists (select from unnest(p.proconfig) c where c like 'search_path=%%')
        """
    ).fetchall()
    assert unpinned == []


# -- bad input: a clear error, nothing else changes -----------------------------------------------
@pytest.mark.parametrize(
    ("work_query", "message"),
    [
        ("update public.jobs set status = 'x'", "must be a SELECT"),
        ("select id as subject_id from public.jobs; delete from public.jobs", "not one read-only"),
        ("select id from public.jobs", "no subject_id"),
        ("with d as (delete from public.jobs returning id) select id as subject_id from d",
         "not one read-only"),
        ("select id as subject_id from public.jobs for update", "must not lock"),
        ("select id as subject_id from public.no_such_table", "does not plan"),
        ("", "empty"),
    ],
)
def test_bad_work_query_is_refused_with_a_clear_message(turing, conn, jobs, work_query, message):
    with pytest.raises(InvalidWorkQuery, match=message) as err:
        turing.register_actor(dict(
            name="bad", kind="script", script="cat", work_query=work_query))
    assert err.value.hint
    assert conn.execute("select count(*) from turing.actors").fetchone()[0] == 0
    assert conn.execute("select count(*) from public.jobs").fetchone()[0] == 200


def test_work_query_failing_at_run_time_is_reported_and_other_actors_flow(turing, conn, jobs):
    turing.register_actor(dict(
        name="broken", kind="script", script="cat",
        work_query="select id as subject_id from public.jobs where 1 / (id - id) = 0"))
    turing.register_actor(dict(
        name="fine", kind="script", script="cat",
        work_query="select id as subject_id from public.jobs where id <= 3"))
    with pytest.raises(DiscoverFailed, match='actor "broken" failed: division by zero'):
        turing.discover("broken")
    # inside a claim, the broken actor is recorded and skipped; the fine one is served
    claimed = turing.claim_batch("cpu", "w", 10)
    assert sorted(t.actor.name for t in claimed) == ["fine"] * 3
    error = conn.execute(
        "select d.last_error from turing.actor_discovery d join turing.actors a using (actor_id) "
        "where a.name = 'broken'"
    ).fetchone()[0]
    assert "division by zero" in error
    assert conn.execute("select count(*) from public.jobs where status <> 'new'").fetchone()[0] == 0


def test_unknown_actor_and_model_are_clear_errors(turing, conn):
    with pytest.raises(UnknownActor, match='unknown actor "nope"'):
        turing.submit("nope", "1")
    with pytest.raises(UnknownModel, match='unknown model "llama9"') as err:
        turing.claim_batch("llama9", "w", 1)
    assert "Known models" in err.value.hint
    with pytest.raises(UnknownModel):
        turing.register_runner("w", ["llama9"])
    assert conn.execute("select count(*) from turing.tickets").fetchone()[0] == 0


def test_invalid_actor_definitions_are_refused(turing):
    with pytest.raises(InvalidActor, match=r"\(kind llm\) needs: model, output_schema, "
                                           "prompt_template"):
        turing.register_actor(dict(name="a", kind="llm"))
    with pytest.raises(InvalidActor, match="needs: output_schema, prompt_template"):
        turing.register_actor(dict(name="a", kind="llm", model="qwen2.5:7b"))
    with pytest.raises(InvalidActor, match="on_complete function"):
        turing.register_actor(dict(name="a", kind="script", script="cat",
                                   on_complete="public.nope"))
    with pytest.raises(InvalidActor, match="unknown kind") as err:
        turing.register_actor(dict(name="a", kind="robot"))
    assert "human, llm, script, sql" in err.value.hint


@pytest.mark.parametrize(("field", "value", "says"), [
    ("timeout", "2 minutez", "field timeout must be a duration"),
    ("inbox", "new", "field inbox must be a list of strings"),
    ("inbox", ["new", 3], "field inbox must be a list of strings"),
    ("batch_size", "ten", "field batch_size must be a whole number"),
    ("script", {"cmd": "cat"}, "field script must be a string"),
    ("max_attempts", 0, "max_attempts must be a whole number from 1 to 100"),
    ("options", ["x"], "options must be a JSON object"),
    ("colour", "blue", "unknown field"),
])
def test_each_field_is_checked_against_the_spec_and_named(turing, field, value, says):
    with pytest.raises(InvalidActor, match=says) as err:
        turing.register_actor({"name": "a", "kind": "script", "script": "cat", field: value})
    assert err.value.hint
    assert turing.actor_definitions() == []


def test_the_actor_table_is_the_spec(turing, conn):
    """Fields, defaults and kind defaults come from turing.actors and turing.actor_kinds; a
    re-registration replaces every field, and a new revision marks each real change."""
    fields = {f["field"]: f for f in turing.actor_fields()}
    assert {"name", "kind", "model", "timeout", "work_query", "final_outbox"} <= set(fields)
    assert not {"actor_id", "revision", "created_at", "updated_at"} & set(fields)
    assert all(f["description"] for f in fields.values()), "every field is documented"
    assert not fields["name"]["settable"] and fields["timeout"]["settable"]

    turing.register_actor(dict(name="h", kind="human"))
    [(h,)] = conn.execute("select definition from turing.actor_definitions('h')").fetchall()
    assert (h["model"], h["timeout"], h["lease"]) == ("human", "1 day", "1 day")
    assert set(h) == set(fields)

    turing.register_actor(dict(name="s", kind="script", script="cat", timeout="1 minute",
                               max_attempts=5))
    rev = lambda: conn.execute(  # noqa: E731
        "select revision from turing.actors where name = 's'").fetchone()[0]
    first = rev()
    turing.register_actor(dict(name="s", kind="script", script="cat", timeout="1 minute",
                               max_attempts=5))
    assert rev() == first, "an identical re-registration is not a new revision"
    turing.register_actor(dict(name="s", kind="script", script="cat"))
    [(s,)] = conn.execute("select definition from turing.actor_definitions('s')").fetchall()
    assert (s["timeout"], s["max_attempts"], s["model"]) == ("00:05:00", 3, "cpu"), \
        "omitted fields went back to their defaults"
    second = rev()
    assert second > first
    turing.set_actor("s", {"batch_size": 7})
    assert rev() > second
    with pytest.raises(InvalidArgument, match="cannot set kind"):
        turing.set_actor("s", {"kind": "sql"})
    # the definition round-trips: registering what actor_definitions shows changes nothing
    before = rev()
    turing.register_actor(s | {"batch_size": 7})
    assert rev() == before


def test_non_json_output_is_refused_and_changes_nothing(turing, conn, jobs):
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat",
        work_query="select id as subject_id from public.jobs", on_complete="public.jobs_scored"))
    [t] = turing.claim_batch("cpu", "w", 1)
    with pytest.raises(InvalidOutput):
        turing.complete_ticket(t.ticket_id, t.lease_token, "just a sentence")
    with psycopg.connect(turing.dsn, autocommit=True) as c, pytest.raises(psycopg.Error):
        c.execute("select turing.complete_ticket(%s, %s, 'not json')", (t.ticket_id, t.lease_token))
    assert conn.execute("select status from turing.tickets where ticket_id = %s",
                        (t.ticket_id,)).fetchone()[0] == "running"
    assert conn.execute("select count(*) from public.jobs where status <> 'new'").fetchone()[0] == 0


# -- retention, metrics, views --------------------------------------------------------------------
def test_prune_history_keeps_dead_letters_and_counts_stay_exact(turing, conn, jobs):
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", max_attempts=1,
        work_query="select id as subject_id from public.jobs where status = 'new'"))
    batch = turing.claim_batch("cpu", "w", 20)
    turing.complete_batch([(b.ticket_id, b.lease_token, {}) for b in batch[:15]])
    turing.fail_batch([(b.ticket_id, b.lease_token, "x", "failed", True) for b in batch[15:]])
    conn.execute(
        "update turing.retention set keep = interval '0 seconds' where status = 'completed'"
    )
    assert turing._value("select turing.prune_history(p_batch => 10)") == 10
    assert turing._value("select turing.prune_history(p_batch => 10)") == 5
    assert conn.execute(
        "select status, count(*) from turing.ticket_history group by 1"
    ).fetchall() == [("dead", 5)]
    kept = dict(conn.execute(
        "select status, n from turing.v_counts where status in ('completed', 'dead')").fetchall())
    assert kept == {"dead": 5}


def test_metrics_and_timeout_recommendations(turing, conn, jobs):
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", timeout="1 hour",
        work_query="select id as subject_id from public.jobs where status = 'new'"))
    batch = turing.claim_batch("cpu", "w", 50)
    turing.complete_batch([(b.ticket_id, b.lease_token, {}) for b in batch])
    result = turing.tick()
    assert result["metrics_rows"] >= 1
    row = conn.execute(
        "select finished, completed, failure_rate, p99_ms is not null from turing.metrics_daily"
    ).fetchone()
    assert row == (50, 50, 0.0, True)
    rec = conn.execute(
        "select verdict, recommended_timeout is not null from turing.v_timeout_recommendations"
    ).fetchone()
    assert rec == ("lower: timeout is over p99 x 10; stuck calls wait too long", True)


def test_stuck_view_shows_expired_leases(turing, conn):
    turing.register_actor(dict(name="step", kind="script", script="cat",
                                           lease="1 second"))
    turing.submit("step", "1")
    turing.register_runner("w", ["cpu"])
    turing.claim_batch("cpu", "w", 1)
    conn.execute("update turing.ticket_open set lease_expires_at = now() - interval '1 minute'")
    assert conn.execute("select reason from turing.v_stuck").fetchone()[0].startswith(
        "lease expired")


def test_slow_work_query_is_cut_by_the_statement_timeout_and_claims_go_on(dsn, turing, jobs):
    turing.register_actor(dict(
        name="slow", kind="script", script="cat",
        work_query="select id as subject_id from public.jobs where pg_sleep(0.05) is not null"))
    turing.register_actor(dict(
        name="quick", kind="script", script="cat",
        work_query="select id as subject_id from public.jobs where id <= 2"))
    with psycopg.connect(dsn, autocommit=True, options="-c statement_timeout=700") as c:
        claimed = c.execute("select actor from turing.claim_batch('cpu', 'w', 10)").fetchall()
        error = c.execute(
            "select d.last_error, d.paused_until > now() from turing.actor_discovery d "
            "join turing.actors a using (actor_id) where a.name = 'slow'"
        ).fetchone()
    assert sorted(r[0] for r in claimed) == ["quick", "quick"]
    assert error[0].startswith("work_query cancelled") and error[1] is True


def test_an_actor_with_tickets_cannot_be_deleted(turing, conn):
    """Every ticket names its actor for good: with no foreign keys on the ticket tables (they
    cost a lookup per ticket created and finished), a trigger refuses the delete instead."""
    turing.register_actor(dict(name="kept", kind="script", script="cat"))
    turing.register_actor(dict(name="fresh", kind="script", script="cat"))
    turing.submit("kept", "1")
    [t] = turing.claim_batch("cpu", "w", 1)
    assert turing.complete_ticket(t.ticket_id, t.lease_token, {})
    with pytest.raises(psycopg.Error, match="has finished tickets and cannot be deleted"):
        conn.execute("delete from turing.actors where name = 'kept'")
    turing.register_actor(dict(name="queued", kind="script", script="cat"))
    turing.submit_many("queued", ["a", "b"])
    with pytest.raises(psycopg.Error, match="has open tickets and cannot be deleted"):
        conn.execute("delete from turing.actors where name = 'queued'")
    turing.cancel_ticket(conn.execute("select min(ticket_id) from turing.ticket_open")
                         .fetchone()[0])
    conn.execute("delete from turing.actor_discovery where actor_id = "
                 "(select actor_id from turing.actors where name = 'fresh')")
    conn.execute("delete from turing.actors where name = 'fresh'")
    assert sorted(r[0] for r in conn.execute("select name from turing.actors")) == \
        ["kept", "queued"]
