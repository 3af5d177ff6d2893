"""Create and upgrade the `turing` schema: `turing db up` and `turing db status`.

Two kinds of SQL files (see STYLE.md):

* ``db/migrations/NNNN_name.sql`` change tables, indexes and roles. Forward-only, each applied
  once in its own transaction and recorded in ``turing.schema_migrations`` with a checksum.
* ``db/functions``, ``db/triggers``, ``db/views`` and ``db/privileges.sql`` are re-applied from
  their files on every ``db up``: functions with ``create or replace``, views dropped and
  re-created (so a changed column list never blocks an upgrade), then the grants.

Two ``db up`` at once are safe: the whole upgrade runs under one session advisory lock, so the
second waits and then finds nothing to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg
from psycopg import sql

from turing_pg.db import PermissionDenied, mapped_errors

# why: a constant key for the session advisory lock that serialises schema upgrades.
UPGRADE_LOCK_KEY = 7242
MIGRATION_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SchemaError(RuntimeError):
    """A migration or a re-applied SQL file failed; the message names the file."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class SchemaStatus:
    applied: list[tuple[int, str]]
    pending: list[tuple[int, str]]
    pgmq_installed: bool
    server_version: str


def sql_root() -> Traversable:
    return resources.files("turing_pg.dbfiles")


def _sorted_sql(folder: str) -> list[Traversable]:
    root = sql_root() / folder
    return sorted((f for f in root.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)


def migrations() -> list[Migration]:
    found = []
    for f in _sorted_sql("migrations"):
        m = MIGRATION_RE.match(f.name)
        if not m:
            raise SchemaError(f"db/migrations/{f.name}: name must look like 0001_snake_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), f.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise SchemaError("db/migrations: two migrations share a version number")
    return found


def reapplied_files() -> list[tuple[str, str]]:
    """(label, sql) of every re-applied file, in apply order."""
    out = []
    for folder in ("functions", "triggers", "views"):
        out += [(f"db/{folder}/{f.name}", f.read_text()) for f in _sorted_sql(folder)]
    out.append(("db/privileges.sql", (sql_root() / "privileges.sql").read_text()))
    return out


def _pgmq_installed(conn: psycopg.Connection) -> bool:
    # why: the catalogue, not to_regclass('pgmq.meta'): that needs usage on the schema pgmq,
    # which turing_viewer (`turing db status`) does not have.
    row = conn.execute(
        "select exists (select from pg_catalog.pg_class as c "
        "inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid "
        "where n.nspname = 'pgmq' and c.relname = 'meta')").fetchone()
    return bool(row and row[0])


def _install_pgmq(conn: psycopg.Connection) -> str | None:
    if _pgmq_installed(conn):
        return None
    from pgmq.install import get_embedded_install_sql, get_embedded_sql_version

    with conn.transaction():
        conn.execute(get_embedded_install_sql())
    return get_embedded_sql_version()


def upgrade(dsn: str, *, up_to: int | None = None, reapply: bool = True) -> list[str]:
    """Bring the schema up to date; returns a list of what was done (empty = nothing to do).

    ``up_to`` stops after that migration version (used by the migration tests to replay an
    older schema); ``reapply=False`` skips re-applying functions/triggers/views.
    """
    try:
        with mapped_errors():
            return _upgrade(dsn, up_to=up_to, reapply=reapply)
    except PermissionDenied as exc:
        cause = exc.__cause__
        denied = (cause.diag.message_primary if isinstance(cause, psycopg.Error) else None
                  ) or exc.message
        raise PermissionDenied(
            f"`turing db up` needs the owner of the turing schema or a superuser ({denied})",
            "run it as the role that created the schema: the migrations and grants are its",
        ) from exc


def _upgrade(dsn: str, *, up_to: int | None, reapply: bool) -> list[str]:
    done: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (UPGRADE_LOCK_KEY,))
        try:
            version = _install_pgmq(conn)
            if version:
                done.append(f"installed pgmq {version} (SQL-only)")
            with conn.transaction():
                conn.execute("create schema if not exists turing")
                conn.execute(
                    """
                    create table if not exists turing.schema_migrations (
                        version integer primary key,
                        name text not null,
                        checksum text not null,
                        applied_at timestamptz not null default clock_timestamp()
                    )
                    """
                )
                conn.execute(
                    "comment on table turing.schema_migrations is "
                    "'Migrations applied by turing db up (version, file name, sha256).'"
                )
            applied = {
                v: c
                for v, c in conn.execute("select version, checksum from turing.schema_migrations")
            }
            for m in migrations():
                if up_to is not None and m.version > up_to:
                    break
                if m.version in applied:
                    if applied[m.version] != m.checksum:
                        raise SchemaError(
                            f"migration {m.version:04d}_{m.name} was changed after it was applied; "
                            "migrations are append-only: add a new one instead"
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(m.sql)
                        conn.execute(
                            "insert into turing.schema_migrations (version, name, checksum) "
                            "values (%s, %s, %s)",
                            (m.version, m.name, m.checksum),
                        )
                except psycopg.Error as exc:
                    raise SchemaError(
                        f"db/migrations/{m.version:04d}_{m.name}.sql failed: {exc}"
                    ) from exc
                done.append(f"applied migration {m.version:04d}_{m.name}")
            if reapply:
                _reapply(conn)
                done.append("re-applied functions, triggers, views and privileges")
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (UPGRADE_LOCK_KEY,))
    return done


def _reapply(conn: psycopg.Connection) -> None:
    with conn.transaction():
        # why: create or replace view cannot drop or retype a column; drop ours and re-create.
        views = conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'turing' and c.relkind = 'v'"
        ).fetchall()
        for (name,) in views:
            conn.execute(
                sql.SQL("drop view if exists {} cascade").format(
                    sql.Identifier("turing", name)
                )
            )
        pending = reapplied_files()
        # why: a view may read another view; instead of encoding an order in file names, apply
        # in passes and retry what failed on a missing relation once its dependency exists.
        while pending:
            retry: list[tuple[str, str]] = []
            last_error: psycopg.Error | None = None
            for label, text in pending:
                try:
                    with conn.transaction():
                        conn.execute(text)
                except psycopg.errors.UndefinedTable as exc:
                    retry.append((label, text))
                    last_error = exc
                except psycopg.Error as exc:
                    raise SchemaError(f"{label} failed: {exc}") from exc
            if len(retry) == len(pending):
                raise SchemaError(f"{retry[0][0]} failed: {last_error}")
            pending = retry


def status(dsn: str) -> SchemaStatus:
    with mapped_errors(), psycopg.connect(dsn, autocommit=True) as conn:
        server_version = conn.execute("show server_version").fetchone()[0]
        pgmq = _pgmq_installed(conn)
        exists = conn.execute(
            "select to_regclass('turing.schema_migrations') is not null"
        ).fetchone()[0]
        applied: list[tuple[int, str]] = []
        if exists:
            applied = [
                (int(v), str(n))
                for v, n in conn.execute(
                    "select version, name from turing.schema_migrations order by version"
                )
            ]
    versions = {v for v, _ in applied}
    pending = [(m.version, m.name) for m in migrations() if m.version not in versions]
    return SchemaStatus(applied, pending, pgmq, server_version)


def use_pipeline_role(dsn: str, role: str) -> None:
    """For development databases, tests and benchmarks: make `role` (created NOLOGIN if
    missing) the run_as of actors registered without one, with every privilege on the tables
    and sequences created in schema public from now on by the calling role. Why: an actor's SQL
    never runs as a superuser (invariant 14), and these register actors as one; production
    pipelines name their own run_as role with only what its tables need (README, roles)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL(
            "do $$ begin if not exists (select from pg_roles where rolname = {r}) "
            "then create role {i} nologin; end if; end $$"
        ).format(r=sql.Literal(role), i=sql.Identifier(role)))
        conn.execute("insert into turing.settings (key, value) values ('default_run_as', %s) "
                     "on conflict (key) do nothing", (role,))
        conn.execute(sql.SQL("grant usage, create on schema public to {}").format(
            sql.Identifier(role)))
        for kind in ("tables", "sequences"):
            conn.execute(sql.SQL(
                "alter default privileges in schema public grant all on {} to {}"
            ).format(sql.SQL(kind), sql.Identifier(role)))

