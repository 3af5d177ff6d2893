"""Every PL/pgSQL body in schema turing passes plpgsql_check.

sqlfluff lints the SQL files but skips dollar-quoted bodies, so the functions themselves are
checked here, on the installed schema, by the plpgsql_check extension: embedded SQL against the
real catalogue (columns, types, the function's own search_path), unused and shadowed variables,
dead code, hidden casts, volatility and unsanitised dynamic SQL.

The extension is superuser-only and is never part of what Turing installs: it is created in this
test's throw-away clone only. Servers without it (the embedded PostgreSQL 18 wheel has none) skip
the test; CI runs it on Debian's PostgreSQL 15 with postgresql-15-plpgsql-check and sets
TURING_REQUIRE_PLPGSQL_CHECK=1, which turns that skip into a failure.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.rows import dict_row

from turing_pg import schema

REQUIRE_ENV = "TURING_REQUIRE_PLPGSQL_CHECK"


@dataclass(frozen=True)
class Allowed:
    """A finding accepted on purpose. Matched on function name, message and a fragment of the
    finding's detail or query, never on a line number, so edits elsewhere in the body do not
    break it; an entry that matches nothing fails the test, so the list cannot go stale."""

    function: str
    message: str
    fragment: str
    reason: str


ALLOWED: tuple[Allowed, ...] = (
    # why: plpgsql_check cannot see what dynamic SQL does, so it proposes STABLE. It runs the
    # actor's exists() and EXPLAIN through wrappers; a volatility change would change its
    # snapshot behaviour and is not a lint fix.
    Allowed("turing.check_pipeline", "routine is marked as VOLATILE, should be STABLE",
            "cannot to determine volatility of used dynamic SQL",
            "false positive: volatility of the user's dynamic SQL is unknown"),
    # why: the statement's column lists are built from turing.actor_fields with quote_ident /
    # %I, and the values travel as the bound parameter $1, never spliced into the text.
    Allowed("turing._register_actor", "text type variable is not sanitized",
            "jsonb_populate_record(null::turing.actors",
            "identifiers quoted with quote_ident/%I from the catalogue; values bound as $1"),
)

# One row per function to check: plain functions with relid 0; trigger functions once per table
# they are attached to, with the union of the transition-table names of those triggers (the
# check is static, so every branch of the body sees both names); trigger functions attached to
# nothing (announce_work, for domain tables) against a probe table made here.
TARGETS = """
    select t.fn, t.name, t.fn::regprocedure::text as signature, t.relid,
        case when t.relid = 0 then '' else t.relid::regclass::text end as relation,
        t.newtable, t.oldtable
    from (
        select p.oid as fn, n.nspname || '.' || p.proname as name,
            coalesce(tr.relid, case when p.prorettype = 'trigger'::regtype
                then 'public.plpgsql_check_probe'::regclass end, 0) as relid,
            tr.newtable, tr.oldtable
        from pg_catalog.pg_proc as p
        inner join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
        inner join pg_catalog.pg_language as l on l.oid = p.prolang
        left join (
            select tg.tgfoid, tg.tgrelid as relid, max(tg.tgnewtable) as newtable,
                max(tg.tgoldtable) as oldtable
            from pg_catalog.pg_trigger as tg
            where not tg.tgisinternal
            group by tg.tgfoid, tg.tgrelid
        ) as tr on tr.tgfoid = p.oid
        where n.nspname = 'turing' and l.lanname = 'plpgsql'
    ) as t
    order by t.name, t.relid
"""

CHECK = """
    select c.lineno, c.statement, c.sqlstate, c.message, c.detail, c.hint, c.level, c.query
    from plpgsql_check.plpgsql_check_function_tb(
        %(fn)s::oid::regprocedure, %(relid)s::oid::regclass,
        fatal_errors => false,
        other_warnings => true,
        extra_warnings => true,
        performance_warnings => true,
        security_warnings => true,
        compatibility_warnings => true,
        newtable => %(newtable)s,
        oldtable => %(oldtable)s
    ) as c
"""


def _body_start_lines() -> dict[str, tuple[str, int]]:
    """turing.<name> -> (file, line of the body's opening dollar quote), from the SQL files, so a
    finding's body line can be printed as file:line."""
    found: dict[str, tuple[str, int]] = {}
    head = re.compile(r"create\s+or\s+replace\s+function\s+(turing\.\w+)\s*\(", re.I)
    for label, text in schema.reapplied_files():
        for m in head.finditer(text):
            quote = re.compile(r"\$\w*\$").search(text, m.end())
            if quote:
                found.setdefault(m.group(1), (label, text.count("\n", 0, quote.start()) + 1))
    return found


def _require_or_skip(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, but {REQUIRE_ENV}=1 requires the check to run", pytrace=False)
    pytest.skip(f"{reason}; CI runs this test on Debian's PostgreSQL 15 with "
                "postgresql-15-plpgsql-check")


def _allowed(name: str, finding: dict) -> Allowed | None:
    text = f"{finding['detail'] or ''}\n{finding['query'] or ''}"
    for entry in ALLOWED:
        if entry.function == name and entry.message == finding["message"] \
                and entry.fragment in text:
            return entry
    return None


def _describe(target: dict, finding: dict, where: dict[str, tuple[str, int]]) -> str:
    """file:line: function [on table] line N: [level sqlstate] statement: message (detail)."""
    line = finding["lineno"]
    loc = ""
    if target["name"] in where and line is not None:
        label, start = where[target["name"]]
        loc = f"{label}:{start + line - 1}: "
    on = f" on {target['relation']}" if target["relation"] else ""
    at = f"line {line}" if line is not None else "whole function"
    out = (f"{loc}{target['signature']}{on} {at}: "
           f"[{finding['level']} {finding['sqlstate']}] {finding['statement'] or 'function'}: "
           f"{finding['message']}")
    if finding["detail"]:
        out += f" ({finding['detail']})"
    if finding["query"]:
        out += f"\n      query: {' '.join(finding['query'].split())[:160]}"
    return out


def test_every_plpgsql_function_passes_plpgsql_check(dsn):
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        version = conn.execute("select current_setting('server_version') as v").fetchone()["v"]
        installed = conn.execute(
            "select exists (select from pg_extension where extname = 'plpgsql_check') as yes"
        ).fetchone()["yes"]
        assert not installed, "plpgsql_check must not be part of the schema Turing installs"
        available = conn.execute(
            "select exists (select from pg_available_extensions where name = 'plpgsql_check')"
            " as yes"
        ).fetchone()["yes"]
        if not available:
            _require_or_skip(f"plpgsql_check is not available on this PostgreSQL {version}")
        try:
            # why: its own schema, in this clone only (dropped with it after the test).
            conn.execute("create schema plpgsql_check")
            conn.execute("create extension plpgsql_check schema plpgsql_check")
        except psycopg.errors.InsufficientPrivilege as e:
            _require_or_skip(f"cannot create plpgsql_check here ({e.diag.message_primary})")
        conn.execute("create table public.plpgsql_check_probe (id integer)")

        targets = conn.execute(TARGETS).fetchall()
        assert targets, "no PL/pgSQL function found in schema turing"
        where = _body_start_lines()
        problems: list[str] = []
        used: set[Allowed] = set()
        for t in targets:
            for finding in conn.execute(CHECK, t).fetchall():
                entry = _allowed(t["name"], finding)
                if entry:
                    used.add(entry)
                    continue
                problems.append(_describe(t, finding, where))

    stale = [f"{a.function}: {a.message} [{a.fragment}]" for a in ALLOWED if a not in used]
    report = []
    if problems:
        report.append(f"plpgsql_check found {len(problems)} problem(s) in {len(targets)} "
                      "checked function(s):\n  " + "\n  ".join(problems))
    if stale:
        report.append("allow-list entries that no longer match any finding (delete them):\n  "
                      + "\n  ".join(stale))
    if report:
        pytest.fail("\n".join(report), pytrace=False)
