"""The one place Python talks to PostgreSQL.

Every call is a named SQL function of the `turing` schema with bound parameters; no SQL is built
from strings. Errors raised by those functions carry a project SQLSTATE (``TRnnn``); they are
mapped here, once, to the domain exceptions below, which the CLI maps to exit codes.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from turing_pg.credentials import hide, redact
from turing_pg.exits import Exit

# --------------------------------------------------------------------------------------------
# Errors


class TuringError(Exception):
    """Base of every error Turing reports to a user; ``exit_code`` is what the CLI exits with."""

    exit_code = Exit.ERROR
    sqlstate: str | None = None

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message


class InvalidWorkQuery(TuringError):
    sqlstate, exit_code = "TR001", Exit.INVALID_DEFINITION


class UnknownActor(TuringError):
    sqlstate, exit_code = "TR002", Exit.UNKNOWN


class UnknownModel(TuringError):
    sqlstate, exit_code = "TR003", Exit.UNKNOWN


class ChainTooDeep(TuringError):
    sqlstate, exit_code = "TR004", Exit.REFUSED


class ChainLoop(TuringError):
    sqlstate, exit_code = "TR005", Exit.REFUSED


class DuplicateOpenTicket(TuringError):
    sqlstate, exit_code = "TR006", Exit.REFUSED


class InvalidOutput(TuringError):
    sqlstate, exit_code = "TR007", Exit.INVALID_DEFINITION


class IllegalTransition(TuringError):
    sqlstate, exit_code = "TR008", Exit.REFUSED


class InvalidActor(TuringError):
    sqlstate, exit_code = "TR009", Exit.INVALID_DEFINITION


def output_schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a JSON Schema the answer can be checked against, or None. The one
    check: the client refuses such an actor at registration, the llm executor (for an actor
    registered through SQL) fails its tickets with it, not retried."""
    if schema is None:
        return None
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/" + "/".join(str(p) for p in exc.absolute_path)
        return f"output_schema is not a valid JSON Schema (at {where}: {exc.message})"
    return None


def _refuse_bad_output_schema(actor: str, schema: Any) -> None:
    problem = output_schema_problem(schema)
    if problem is not None:
        raise InvalidActor(f'actor "{actor}": {problem}',
                           'Write a JSON Schema object, e.g. {"type": "object"}.')


class UnknownTicket(TuringError):
    sqlstate, exit_code = "TR010", Exit.UNKNOWN


class DiscoverFailed(TuringError):
    sqlstate, exit_code = "TR011", Exit.WORK_QUERY_FAILED


class InvalidArgument(TuringError):
    sqlstate, exit_code = "TR012", Exit.USAGE


class RunAsRefused(TuringError):
    """An actor's SQL would not run as a role it may: a run_as that is a superuser, a member of
    turing_owner, or a role the registrant is not a member of; or a wrapper no longer its
    run_as role's SECURITY DEFINER function."""

    sqlstate, exit_code = "TR013", Exit.REFUSED


class WorkerNameTaken(TuringError):
    """A worker name that belongs to a running runner, registered without its secret."""

    sqlstate, exit_code = "TR014", Exit.REFUSED


class GateRefused(TuringError):
    """A promotion whose gate lacks evidence for the current version, or a raq run the
    actor's inputs cannot fill; the message says what is missing."""

    sqlstate, exit_code = "TR015", Exit.REFUSED


class InvalidDefinitionFile(TuringError):
    """An actor file that cannot be read as definitions (YAML syntax, shape, includes)."""

    exit_code = 3


class PermissionDenied(TuringError):
    """The login may not do this (SQLSTATE 42501, insufficient_privilege). The message names
    the Turing role that may, read from the catalogue (`needing`), so it follows the grants of
    db/privileges.sql instead of a copy of them here."""

    sqlstate, exit_code = "42501", Exit.PERMISSION

    @classmethod
    def needing(cls, denied: str, roles: Sequence[str] | None) -> PermissionDenied:
        """`denied` is the server's sentence ("permission denied for function submit");
        `roles` the Turing roles granted what was denied (None: not known)."""
        if roles:
            needed = " or ".join(roles)
            return cls(f"{denied}: needs role {needed}",
                       f"connect as a login that is a member of {roles[0]} "
                       f"(grant {roles[0]} to <login>)")
        if roles is None:
            return cls(f"{denied}: the login lacks the privilege",
                       "turing_viewer reads, turing_runner runs work, turing_admin manages "
                       "actors and work; schema changes need the owner of the turing schema")
        return cls(f"{denied}: no Turing role is granted it",
                   "it needs the owner of the object, or a grant from its owner")


class SchemaMissing(TuringError):
    """The database has no Turing schema, or one older than this client (an object of schema
    turing that the call needs does not exist): `turing db up` was not run there, or the DSN
    names another database."""

    exit_code = Exit.SCHEMA


# why: the SQLSTATEs of a missing schema, relation or function; mapped to SchemaMissing only
# when the object is Turing's own (an actor's SQL may miss its own objects: that is its error).
# why: how the server names a missing object of the schema: a call (function turing.f(...)) or
# a signature it parsed (function "turing.f(date)", from has_function_privilege).
_MISSING_OBJECT = {"3F000": ('schema "turing"',), "42P01": ('relation "turing.',),
                   "42883": ("function turing.", 'function "turing.')}


class DatabaseUnavailable(TuringError):
    """The database cannot be reached (down, restarting, wrong DSN), or the server ended the
    session mid-call (a backend terminated, a shutdown or a crash): an infrastructure fault,
    never the work's failure (the call may or may not have committed; fenced calls may be made
    again with the same lease token)."""

    exit_code = Exit.DB_UNREACHABLE


_BY_SQLSTATE: dict[str, type[TuringError]] = {
    cls.sqlstate: cls
    for cls in (
        InvalidWorkQuery, UnknownActor, UnknownModel, ChainTooDeep, ChainLoop,
        DuplicateOpenTicket, InvalidOutput, IllegalTransition, InvalidActor, UnknownTicket,
        DiscoverFailed, InvalidArgument, RunAsRefused, WorkerNameTaken, GateRefused,
    )
    if cls.sqlstate
}


# Turing's roles, least privileged first: a denial names the first that may do the thing.
ROLES = ("turing_viewer", "turing_runner", "turing_admin")
_DENIED = re.compile(r"^permission denied for (function|procedure|table|view|materialized view) "
                     r"(\S+)$")
# why: read from the catalogue, which every login may read (even one in none of Turing's roles,
# without usage on the schema), so the answer is the grants as they are, not a copy of them.
_ROLES_GRANTED = """
select r.role
from unnest(%(roles)s::text[]) with ordinality as r (role, n)
where pg_catalog.to_regrole(r.role) is not null
    and case
        when %(kind)s in ('function', 'procedure') then exists (
            select from pg_catalog.pg_proc as p
            inner join pg_catalog.pg_namespace as s on p.pronamespace = s.oid
            where s.nspname = 'turing' and p.proname = %(object)s
                and pg_catalog.has_function_privilege(r.role, p.oid, 'execute'))
        else exists (
            select from pg_catalog.pg_class as c
            inner join pg_catalog.pg_namespace as s on c.relnamespace = s.oid
            where s.nspname = 'turing' and c.relname = %(object)s
                and pg_catalog.has_table_privilege(r.role, c.oid, 'select'))
    end
order by r.n
"""

# why: the server ended the session or does not accept one yet: 57P01 admin_shutdown (a fast
# stop, pg_terminate_backend), 57P02 crash_shutdown (another backend crashed), 57P03
# cannot_connect_now (starting up, shutting down); class 08 is the connection exceptions.
_SESSION_ENDED = frozenset({"57P01", "57P02", "57P03"})


def map_error(exc: psycopg.Error, *, connection_lost: bool = False) -> Exception:
    """The domain exception for a psycopg error (or the error itself when it is not ours).
    `connection_lost`: the connection the call ran on is broken now."""
    state = exc.sqlstate or ""
    diag = exc.diag
    if state == PermissionDenied.sqlstate:
        return PermissionDenied.needing(diag.message_primary or str(exc), None)
    if state in _MISSING_OBJECT and any(m in (diag.message_primary or "")
                                        for m in _MISSING_OBJECT[state]):
        return SchemaMissing(
            f"{diag.message_primary}: this database has no Turing schema, or an older one",
            "run `turing db up` against it (with the same --dsn / TURING_DSN), or point "
            "--dsn at the database that has it")
    if state in _BY_SQLSTATE:
        return _BY_SQLSTATE[state](diag.message_primary or str(exc), diag.message_hint)
    if isinstance(exc, psycopg.errors.InvalidTextRepresentation) and "json" in str(exc).lower():
        return InvalidOutput(f"not valid JSON: {diag.message_primary}", diag.message_detail)
    if isinstance(exc, psycopg.DataError) and not state and "NUL (0x00)" in str(exc):
        # why: refused by psycopg before it sends anything; PostgreSQL text cannot hold it.
        return InvalidArgument("a text value contains a NUL byte (\\0), which PostgreSQL "
                               "cannot store", "remove the NUL bytes from it")
    if state == "22P05":  # untranslatable_character: \u0000 in JSON that jsonb must store
        detail = f": {diag.message_detail}" if diag.message_detail else ""
        return InvalidArgument(f"{diag.message_primary}{detail}",
                               "remove \\u0000 (a NUL character) from the JSON")
    if state.startswith("08") or state in _SESSION_ENDED or (
            isinstance(exc, psycopg.OperationalError) and (not state or connection_lost)):
        text = " ".join(str(exc).split())  # one line: libpq adds "\n\tIs the server running…"
        if "unsupported startup parameter" in text:
            # why: a pooler refusing a parameter of the DSN answers, so "cannot reach" would
            # send the operator looking for a network problem.
            return DatabaseUnavailable(
                f"the connection pooler refused the connection: {text}",
                "remove that parameter from the DSN (Turing sets its limits per transaction), "
                "or list it in PgBouncer's ignore_startup_parameters")
        return DatabaseUnavailable(
            f"lost the database connection: {text} (SQLSTATE {state})" if state
            else f"cannot reach the database: {text}",
            "check that PostgreSQL is running and the DSN (--dsn / TURING_DSN) is right; "
            "for the embedded server run `turing db up`",
        )
    return exc


@contextmanager
def mapped_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        mapped = map_error(exc)
        if mapped is exc:
            raise
        raise mapped from exc


# --------------------------------------------------------------------------------------------
# Records that cross the boundary


@dataclass(frozen=True)
class ActorRuntime:
    """What a runner needs of an actor to run its tickets, at one revision of its definition
    (claim_batch sends it once per revision; the client caches it)."""

    revision: int
    name: str
    kind: str
    model: str
    prompt_template: str | None
    output_schema: dict[str, Any] | None
    script: str | None
    sql_function: str | None
    options: dict[str, Any]
    # why: None for `timeout: auto`: the value moves with the measurements, so each ticket's
    # timeout comes with its start (ClaimedTicket.timeout_s, start_tickets), never from here.
    timeout_s: float | None
    lease_s: float
    system_prompt: str | None = None
    think: str = "false"  # false, true, or a level: low, medium, high


@dataclass(frozen=True)
class ClaimedTicket:
    """One ticket as claim_batch returns it, with its actor's definition."""

    ticket_id: int
    lease_token: UUID
    batch_id: int
    subject_id: str
    input: dict[str, Any]
    attempt: int
    chain_id: int
    started: bool  # started by the claim; False = claimed ahead, start with start_tickets
    actor: ActorRuntime
    # the timeout this attempt runs with, fixed by the database at its start (None until then)
    timeout_s: float | None = None
    # why: one ticket whose input cannot be decoded here (e.g. JSON nested deeper than Python's
    # recursion limit) must fail alone, with the reason, not take its batch down with it.
    input_error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one reported result."""

    ticket_id: int
    accepted: bool
    status: str | None
    retry_ticket_id: int | None = None
    error: str | None = None  # why it failed, when the database made it fail (on_complete)


@dataclass(frozen=True)
class Submission:
    """What became of one subject of submit_many (in the order they were given)."""

    item: int  # 1-based position in the call
    subject_id: str
    ticket_id: int | None  # the new ticket, or the one that already holds the subject
    skipped: str | None  # None = created; 'open_ticket' or 'repeated' = not created


@dataclass(frozen=True)
class ActorState:
    actor: str
    kind: str
    model: str
    enabled: bool
    pending: int
    running: int
    expired: int
    dead: int


def _redacted(text: str | None) -> str | None:
    """A free text bound for Turing's tables (an error, a reason), without any password this
    process holds: a script's stderr or an exception may quote a DSN."""
    return None if text is None else redact(text)


def _decode_input(text: str) -> tuple[dict[str, Any], str | None]:
    """A ticket input as the claim sent it (JSON text): (input, None), or ({}, why not)."""
    try:
        return json.loads(text), None
    except RecursionError:
        return {}, ("the ticket's input is JSON nested too deeply to decode (Python's recursion "
                    "limit); flatten it in the work_query or the submit")
    except ValueError as exc:
        return {}, f"the ticket's input cannot be decoded as JSON: {exc}"


# --------------------------------------------------------------------------------------------
# The client

# why: a runner sees a handful of revisions; the bound only guards a process that lives through
# thousands of redefinitions.
ACTOR_CACHE_SIZE = 1000


# a fixed DSN, or a callable that looks it up again for every new connection (the embedded
# server's, pgserver.EmbeddedDsn)
DsnSource = str | Callable[[], str]

# why: a connection attempt to a host that drops packets (or to a port some other program holds
# and never answers on) must fail like a refused one instead of blocking a pool worker for minutes.
CONNECT_TIMEOUT_S = 5


def connect_kwargs() -> dict[str, Any]:
    """Connection settings for every Turing connection: none of them session state, so the
    same connections work direct and through a transaction pooler (PgBouncer, a managed
    database's pooler).

    * no `options` startup parameter: PgBouncer refuses it ("unsupported startup parameter:
      options"), or drops it silently when told to ignore it, and then a limit set there would
      not hold; limits are set per transaction instead (statement_timeout_ms, _checkout);
    * no prepared statements (`prepare_threshold=None`): psycopg prepares a query it runs
      often on the server connection it ran on, and through a transaction pooler the next call
      lands on another one ("prepared statement _pg3_0 does not exist"). Debian's PgBouncer
      (1.18) cannot track them (max_prepared_statements needs 1.21), and the calls are one-line
      `select * from turing.f(...)` whose own plans PL/pgSQL caches anyway;
    * `application_name` is a startup parameter PgBouncer passes on."""
    return {"autocommit": True, "application_name": "turing", "prepare_threshold": None}


def statement_timeout_ms() -> int:
    """The limit on each call (TURING_STATEMENT_TIMEOUT, seconds; default 30)."""
    text = os.environ.get("TURING_STATEMENT_TIMEOUT", "30")
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400 * 365:
        raise InvalidArgument(f"TURING_STATEMENT_TIMEOUT={text[:40]!r} is not a number of "
                              "seconds", "write e.g. TURING_STATEMENT_TIMEOUT=30 (or unset it)")
    return int(seconds * 1000)


def check_dsn(dsn: str) -> str:
    """`dsn` when psycopg can parse it, else InvalidArgument saying what a DSN looks like (a
    malformed one is the caller's mistake, not an unreachable database)."""
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise InvalidArgument(
            f"the DSN is not a connection string: {redact(str(exc).strip())}",
            "write postgresql://USER@HOST:PORT/DBNAME or host=HOST dbname=DBNAME") from None
    return dsn


class Turing:
    """Calls the SQL API. Each call borrows a pooled connection for the call only, so nothing
    holds a connection or a transaction between calls (invariant 8)."""

    def __init__(self, dsn: DsnSource, *, min_size: int = 1, max_size: int = 4,
                 wait_s: float = 30.0) -> None:
        self._dsn = dsn
        # why: whatever this client writes as free text (an error, a reason) is redacted of the
        # passwords the process holds, its own DSN's first of all.
        hide(dsn if isinstance(dsn, str) else None)
        self.wait_s = wait_s
        self._timeout = f"{statement_timeout_ms()}ms"
        self.actors: dict[int, ActorRuntime] = {}
        # why: register_runner issues each worker a secret that heartbeat and release_worker
        # must present (another runner's name gets nothing); kept here so a re-registration
        # after a reconnect keeps the same one.
        self._runner_secrets: dict[str, str] = {}
        self.pool = ConnectionPool(
            # why: psycopg_pool calls a callable conninfo for every new connection, so a pool
            # following the embedded server reconnects to wherever it listens now.
            dsn,
            min_size=min_size,
            max_size=max_size,
            # why: a caller that must stay responsive while the database is down (the runner)
            # gets DatabaseUnavailable after wait_s instead of blocking on the pool.
            timeout=wait_s,
            # why: no `check`: _checkout checks, and retries a dead connection at once.
            kwargs={**connect_kwargs(), "connect_timeout": CONNECT_TIMEOUT_S},
            # why: the pool's own retries of a lost connection back off exponentially (1, 2,
            # 4 … 128 s) for reconnect_timeout; the default 5 min would let a long outage delay
            # the first connection after the server is back by minutes. Giving up after wait_s
            # leaves the pacing to the callers: each call that finds the pool empty starts a
            # fresh attempt at once.
            reconnect_timeout=wait_s,
            open=False,
            name="turing",
        )
        with mapped_errors():
            # why: fail fast with the server's own message (wrong DSN, server down) instead of
            # the pool's generic timeout after it retried in the background.
            psycopg.connect(self.dsn, connect_timeout=10, **connect_kwargs()).close()
            self.pool.open(wait=True, timeout=15)

    @property
    def dsn(self) -> str:
        """The DSN connections go to now."""
        return self._dsn() if callable(self._dsn) else self._dsn

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Turing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for one call, its errors mapped; an error that leaves the
        connection broken (the backend was killed, the server went away) is DatabaseUnavailable
        whatever its SQLSTATE."""
        lost = False
        try:
            conn = self._checkout()
            try:
                with conn:
                    yield conn
            except psycopg.Error:
                lost = conn.broken
                raise
            finally:
                self.pool.putconn(conn)
        except psycopg.Error as exc:
            mapped = map_error(exc, connection_lost=lost)
            if mapped is exc:
                raise
            if isinstance(mapped, PermissionDenied):
                mapped = self._name_role(exc.diag.message_primary or str(exc), mapped)
            raise mapped from exc

    @contextmanager
    def _call(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """The block of one call on a connection from _connection: its statements and the
        call's statement timeout go to the server as one implicit transaction, ended by a Sync
        sent at the block's end, before the results are read (they are in the cursors after).

        why: the limit is set in the call's own transaction, not in the session (a pooler
        shares server connections between clients), and costs no round trip. The Sync right
        behind the call matters: in pipeline mode a fetch only asks the server to flush, so a
        fetch inside the block kept the transaction open, with its locks (maintain's advisory
        lock, the rows a claim took), until the results were processed; a runner frozen there
        (SIGSTOP, a paused VM) stalled every other runner's reaping."""
        with conn.pipeline():
            conn.execute("select pg_catalog.set_config('statement_timeout', %(t)s, true)",
                         {"t": self._timeout})
            yield

    def _name_role(self, denied: str, error: PermissionDenied) -> PermissionDenied:
        """The denial with the Turing roles that may do what was denied, when the server's
        sentence names a function or a relation of the turing schema; else `error`."""
        m = _DENIED.match(denied)
        if not m:
            return error
        try:
            # why: straight from the pool, not through _connection: a failing lookup must not
            # be mapped (and looked up) again; it only loses the role's name.
            with self.pool.connection(timeout=self.wait_s) as conn:
                rows = conn.execute(_ROLES_GRANTED, {"roles": list(ROLES), "kind": m[1],
                                                     "object": m[2].strip('"')}).fetchall()
        except Exception:
            return error
        return PermissionDenied.needing(denied, [r[0] for r in rows])

    def _checkout(self) -> psycopg.Connection[Any]:
        """A pooled connection that answers. A dead one (its backend was killed while it sat in
        the pool, or the server restarted) goes back and the next is taken at once: the pool
        replaces a dead connection right away and hands the new one to the caller waiting for
        it. (The pool's own `check` sleeps 1, 2, 4 s between tries, while the new connection
        sits idle: a server that kills sessions every second would starve every call.)"""
        deadline = time.monotonic() + self.wait_s
        # why: bounded, so sessions that die as soon as they open cannot spin us; at most every
        # pooled connection is dead, and then the fresh one answers.
        for _ in range(self.pool.max_size + 2):
            conn = self.pool.getconn(timeout=max(deadline - time.monotonic(), 0.01))
            try:
                conn.execute("")
                return conn
            except psycopg.Error:
                self.pool.putconn(conn)  # why: the pool sees it is broken and replaces it
        raise PoolTimeout(f"every connection the pool gave in {self.wait_s:.0f} s was dead")

    def _rows(self, query: str, params: dict[str, Any] | Sequence[Any] | None = None
              ) -> list[dict[str, Any]]:
        with self._connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            with self._call(conn):
                cur.execute(query, params)
            return list(cur.fetchall())

    def _value(self, query: str, params: dict[str, Any] | Sequence[Any] | None = None) -> Any:
        rows = self._rows(query, params)
        return next(iter(rows[0].values())) if rows else None

    # -- actors -----------------------------------------------------------------------------
    def register_actor(self, spec: Mapping[str, Any]) -> int:
        """Create or replace an actor from its definition (the fields of turing.actor_fields;
        the database validates it and says which field is wrong)."""
        _refuse_bad_output_schema(str(spec.get("name")), spec.get("output_schema"))
        return int(self._value("select turing.register_actor(p_spec => %(s)s)",
                               {"s": Jsonb(dict(spec))}))

    def actor_fields(self) -> list[dict[str, Any]]:
        """The fields an actor definition may have: name, type, default, description."""
        return self._rows("select * from turing.actor_fields order by position")

    def set_actor_enabled(self, actor: str, enabled: bool) -> bool:
        return bool(
            self._value(
                "select turing.set_actor_enabled(p_actor => %(a)s, p_enabled => %(e)s)",
                {"a": actor, "e": enabled},
            )
        )

    def remove_actor(self, actor: str, cancel_open: bool = False) -> dict[str, Any]:
        """Remove an actor; its history stays readable (turing.remove_actor). Refused
        (IllegalTransition) while it has open tickets, unless `cancel_open` cancels them."""
        return dict(self._value(
            "select turing.remove_actor(p_name => %(a)s, p_cancel_open => %(c)s)",
            {"a": actor, "c": cancel_open}))

    def discover(self, actor: str) -> int:
        return int(self._value("select turing.discover(p_actor => %(a)s)", {"a": actor}))

    # -- work -------------------------------------------------------------------------------
    def submit(self, actor: str, subject_id: str, input: dict[str, Any] | None = None,
               priority: int | None = None) -> int:
        return int(
            self._value(
                "select turing.submit(p_actor => %(a)s, p_subject_id => %(s)s, "
                "p_input => %(i)s, p_priority => %(p)s)",
                {"a": actor, "s": str(subject_id), "i": Jsonb(input or {}), "p": priority},
            )
        )

    def submit_many(self, actor: str, subject_ids: Sequence[str],
                    inputs: Sequence[dict[str, Any] | None] | None = None,
                    priority: int | None = None) -> list[Submission]:
        """submit() for many subjects of one actor in one set-based call, each a new chain: a
        subject that already has an open ticket, or repeats an earlier one, is skipped, not
        refused. One Submission per subject, in order; a bad subject id or input refuses the
        whole call (InvalidArgument, naming the element) and creates nothing."""
        rows = self._rows(
            "select item, subject_id, ticket_id, skipped from turing.submit_many("
            "p_actor => %(a)s, p_subject_ids => %(s)s, p_inputs => %(i)s::jsonb[], "
            "p_priority => %(p)s)",
            {"a": actor, "s": [None if s is None else str(s) for s in subject_ids],
             "i": None if inputs is None else [None if i is None else Jsonb(i) for i in inputs],
             "p": priority},
        )
        return [Submission(**r) for r in rows]

    def cancel_ticket(self, ticket_id: int, reason: str | None = None) -> bool:
        return bool(
            self._value(
                "select turing.cancel_ticket(p_ticket_id => %(t)s, p_reason => %(r)s)",
                {"t": ticket_id, "r": _redacted(reason)},
            )
        )

    # -- the runner API ---------------------------------------------------------------------
    def register_runner(self, worker: str, models: list[str], *, hostname: str | None = None,
                        pid: int | None = None, concurrency: int | None = None,
                        info: dict[str, Any] | None = None) -> None:
        self._runner_secrets[worker] = str(self._value(
            "select turing.register_runner(p_worker => %(w)s, p_models => %(m)s, "
            "p_hostname => %(h)s, p_pid => %(p)s, p_concurrency => %(c)s, p_info => %(i)s, "
            "p_secret => %(s)s)",
            {"w": worker, "m": models, "h": hostname, "p": pid, "c": concurrency,
             "i": Jsonb(json.loads(redact(json.dumps(info or {})))),
             "s": self._runner_secrets.get(worker)},
        ))

    def claim_batch(self, model: str, worker: str, limit: int, *,
                    start_now: int | None = None, discover: bool = True,
                    cold: bool = False, stage: str | None = None) -> list[ClaimedTicket]:
        """Claim up to `limit` tickets of `model` and start the first `start_now` of them (all by
        default); `cold` says the model server must load `model` before they can run (their
        auto timeouts then include its load time). With `discover`, the actors of `model`
        due for discovery are topped up first, in their own calls; a runner discovers from its
        own thread instead, so a slow work_query never delays its claims. The database sends an
        actor's definition only for revisions this client has not seen; they are kept in
        `self.actors`. `stage` (None: every stage) claims only the actors whose current version
        is at that stage or later, or that have a production version to run instead."""
        if discover:
            self.top_up_model(model, limit)
        with self._connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            # why: JSON is decoded here, row by row, so one undecodable input fails its own
            # ticket instead of raising for the whole claim after it committed.
            cur.adapters.register_loader("jsonb", TextLoader)
            with self._call(conn):
                cur.execute(
                    "select * from turing.claim_batch(p_model => %(m)s, p_worker => %(w)s, "
                    "p_limit => %(n)s, p_known_revisions => %(k)s, p_start_now => %(s)s, "
                    "p_cold => %(c)s, p_stage => %(g)s)",
                    {"m": model, "w": worker, "n": limit, "k": list(self.actors),
                     "s": limit if start_now is None else start_now, "c": cold, "g": stage},
                )
            rows = cur.fetchall()
        fresh = {r["actor_revision"]: ActorRuntime(revision=r["actor_revision"],
                                                   **json.loads(r["actor"]))
                 for r in rows if r["actor"] is not None}
        if fresh:
            if len(self.actors) + len(fresh) > ACTOR_CACHE_SIZE:
                # why: old revisions are never claimed again; keep only what this claim uses
                used = {r["actor_revision"] for r in rows}
                self.actors = {k: v for k, v in self.actors.items() if k in used}
            self.actors.update(fresh)
        out = []
        for r in rows:
            data, error = _decode_input(r["input"])
            out.append(ClaimedTicket(
                r["ticket_id"], r["lease_token"], r["batch_id"], r["subject_id"], data,
                r["attempt"], r["chain_id"], r["started"], self.actors[r["actor_revision"]],
                r["timeout_s"], error))
        return out

    def held_back(self, model: str, stage: str) -> list[dict[str, Any]]:
        """The actors of `model` with pending work a runner of `stage` does not claim."""
        return self._rows("select * from turing.held_back(p_model => %(m)s, p_stage => %(s)s)",
                          {"m": model, "s": stage})

    def top_up_model(self, model: str, want: int = 1) -> int:
        """Discover for every actor of `model` that discover_due names, one call each."""
        return sum(self.top_up(a) for a in self.discover_due(model, want))

    def discover_due(self, model: str, want: int = 1) -> list[str]:
        return [r["actor"] for r in self._rows(
            "select actor from turing.discover_due(p_model => %(m)s, p_want => %(n)s)",
            {"m": model, "n": want})]

    def top_up(self, actor: str, *, timeout_s: float | None = None) -> int:
        """Discover for one actor; a failing work_query is recorded, not raised. `timeout_s`
        is this call's own statement timeout (a runner's discovery budget per actor)."""
        if timeout_s is None:
            return int(self._value("select turing.top_up(p_actor => %(a)s)", {"a": actor}))
        with self._connection() as conn:
            # why: local to the call's transaction (it follows the default one _connection
            # set), so the pooled connection keeps no limit of its own.
            with self._call(conn):
                conn.execute("select pg_catalog.set_config('statement_timeout', %(t)s, true)",
                             {"t": f"{int(timeout_s * 1000)}ms"})
                cur = conn.execute("select turing.top_up(p_actor => %(a)s)", {"a": actor})
            row = cur.fetchone()
            return int(row[0]) if row else 0

    def notify_work(self, payload: str) -> None:
        """NOTIFY turing_work with `payload`: what the runner's listener sends itself to check
        that notifications reach it."""
        self._rows("select pg_catalog.pg_notify('turing_work', %(p)s)", {"p": payload})

    def maintain(self, caller: str, min_interval_s: float = 5.0) -> dict[str, Any]:
        """The inbox, and (at most every min_interval_s across runners) reap and alerts."""
        return dict(self._value(
            "select turing.maintain(p_caller => %(c)s, p_min_interval => %(i)s::interval)",
            {"c": caller, "i": f"{min_interval_s} seconds"}))

    def start_tickets(self, worker: str, tickets: Sequence[tuple[int, UUID]], *,
                      cold: bool = False) -> dict[int, float | None]:
        """Start tickets claimed ahead. Per ticket: the timeout (seconds) it runs with, fixed
        from now on, or None when it is no longer this runner's (do not run it)."""
        rows = self._rows(
            "select * from turing.start_tickets(p_worker => %(w)s, p_ticket_ids => %(i)s, "
            "p_lease_tokens => %(t)s, p_cold => %(c)s)",
            {"w": worker, "i": [t[0] for t in tickets], "t": [t[1] for t in tickets],
             "c": cold},
        )
        return {r["ticket_id"]: r["timeout_s"] if r["held"] else None for r in rows}

    def report_model_load(self, worker: str, model: str, load_s: float) -> None:
        """The model server took `load_s` seconds to load `model` (what an auto timeout adds
        for an attempt started cold)."""
        self._rows(
            "select turing.report_model_load(p_worker => %(w)s, p_model => %(m)s, "
            "p_load_s => %(s)s)", {"w": worker, "m": model, "s": load_s})

    def measure_run_times(self) -> int:
        """Refresh the measured run times auto timeouts follow (maintain does it by itself
        about once a minute)."""
        return int(self._value("select turing.measure_run_times()"))

    def return_tickets(self, worker: str, tickets: Sequence[tuple[int, UUID]], reason: str,
                       *, fault: bool = False) -> list[Outcome]:
        """Give claimed tickets back without charging an attempt (a fault, a skip). A fault is
        counted on the ticket, and the one that reaches settings.fault_charge_after is charged
        (the outcome says failed or dead). Only tickets still held come back."""
        rows = self._rows(
            "select * from turing.return_tickets(p_worker => %(w)s, p_ticket_ids => %(i)s, "
            "p_lease_tokens => %(t)s, p_reason => %(r)s, p_fault => %(f)s)",
            {"w": worker, "i": [t[0] for t in tickets], "t": [t[1] for t in tickets],
             "r": _redacted(reason), "f": fault})
        return [Outcome(r["ticket_id"], True, r["status"]) for r in rows]

    def skip_ticket(self, worker: str, ticket_id: int, lease_token: UUID,
                    for_s: float = 600.0) -> bool:
        """A person passes on a claimed ticket: back to pending uncharged, not claimable for
        `for_s` seconds (so the next claim hands out other work); False when no longer held."""
        return bool(self._value(
            "select turing.skip_ticket(p_worker => %(w)s, p_ticket_id => %(i)s, "
            "p_lease_token => %(t)s, p_for => %(f)s * interval '1 second')",
            {"w": worker, "i": ticket_id, "t": lease_token, "f": for_s}))

    def release_unheld(self, worker: str, held: Sequence[int]) -> int:
        """After a claim that broke off: give back this worker's running tickets it does not
        hold (the lost claim's), nothing charged."""
        return int(self._value(
            "select turing.release_unheld(p_worker => %(w)s, p_secret => %(s)s, p_held => %(h)s)",
            {"w": worker, "s": self._runner_secrets.get(worker), "h": list(held)}))

    def report_backend(self, worker: str, backend: str, model: str, up: bool,
                       error: str | None = None, setting: str | None = None) -> None:
        self._rows(
            "select turing.report_backend(p_worker => %(w)s, p_backend => %(b)s, "
            "p_model => %(m)s, p_state => %(s)s, p_error => %(e)s, p_setting => %(g)s)",
            {"w": worker, "b": redact(backend), "m": model, "s": "up" if up else "down",
             "e": _redacted(error), "g": setting})

    def rerun(self, actor: str, subject_id: str | None = None) -> list[dict[str, Any]]:
        return self._rows(
            "select * from turing.rerun(p_actor => %(a)s, p_subject_id => %(s)s)",
            {"a": actor, "s": subject_id})

    def complete_batch(self, results: Sequence[tuple[int, UUID, Any]],
                       calls: Sequence[dict[str, Any]] = ()) -> list[Outcome]:
        """Save outputs (fenced); `calls` are the attempts' call records (CallRecord.as_json),
        kept in the same transaction."""
        rows = self._rows(
            "select * from turing.complete_batch(p_ticket_ids => %(i)s, "
            "p_lease_tokens => %(t)s, p_outputs => %(o)s::jsonb[], p_calls => %(c)s::jsonb)",
            {
                "i": [r[0] for r in results],
                "t": [r[1] for r in results],
                "o": [json.dumps(r[2]) for r in results],
                "c": json.dumps(list(calls)) if calls else None,
            },
        )
        return [Outcome(r["ticket_id"], r["accepted"], r["status"], error=r["error"])
                for r in rows]

    def complete_ticket(self, ticket_id: int, lease_token: UUID, output: Any) -> bool:
        return bool(
            self._value(
                "select turing.complete_ticket(p_ticket_id => %(i)s, p_lease_token => %(t)s, "
                "p_output => %(o)s)",
                {"i": ticket_id, "t": lease_token, "o": Jsonb(output)},
            )
        )

    def fail_batch(self, failures: Sequence[tuple[int, UUID, str, str, bool]],
                   calls: Sequence[dict[str, Any]] = ()) -> list[Outcome]:
        """Report failures (fenced); `calls` are the attempts' call records, raw answers
        included, kept in the same transaction."""
        rows = self._rows(
            "select * from turing.fail_batch(p_ticket_ids => %(i)s, p_lease_tokens => %(t)s, "
            "p_errors => %(e)s, p_kinds => %(k)s, p_retryable => %(r)s, "
            "p_calls => %(c)s::jsonb)",
            {
                "i": [f[0] for f in failures],
                "t": [f[1] for f in failures],
                "e": [_redacted(f[2]) for f in failures],
                "k": [f[3] for f in failures],
                "r": [f[4] for f in failures],
                "c": json.dumps(list(calls)) if calls else None,
            },
        )
        return [
            Outcome(r["ticket_id"], r["accepted"], r["status"], r["retry_ticket_id"]) for r in rows
        ]

    def fail_ticket(self, ticket_id: int, lease_token: UUID, error: str, kind: str = "failed",
                    retryable: bool = True) -> bool:
        return bool(
            self._value(
                "select turing.fail_ticket(p_ticket_id => %(i)s, p_lease_token => %(t)s, "
                "p_error => %(e)s, p_kind => %(k)s, p_retryable => %(r)s)",
                {"i": ticket_id, "t": lease_token, "e": _redacted(error), "k": kind,
                 "r": retryable},
            )
        )

    def heartbeat(self, worker: str, tickets: Sequence[tuple[int, UUID]] = ()
                  ) -> dict[int, bool]:
        rows = self._rows(
            "select * from turing.heartbeat(p_worker => %(w)s, p_secret => %(s)s, "
            "p_ticket_ids => %(i)s, p_lease_tokens => %(t)s)",
            {"w": worker, "s": self._runner_secrets.get(worker),
             "i": [t[0] for t in tickets], "t": [t[1] for t in tickets]},
        )
        return {r["ticket_id"]: r["held"] for r in rows}

    def model_backlog(self, models: list[str], worker: str | None = None,
                      stage: str | None = None) -> list[dict[str, Any]]:
        """Per model: pending, ready and running tickets, in the order a runner should choose;
        the first row becomes the worker's current_model. `ready` counts what a claim of
        `stage` would take (None: every stage)."""
        return self._rows(
            "select * from turing.model_backlog(p_models => %(m)s, p_worker => %(w)s, "
            "p_stage => %(s)s)",
            {"m": models, "w": worker, "s": stage},
        )

    def run_sql_ticket(self, ticket_id: int, lease_token: UUID) -> tuple[bool, str | None,
                                                                          str | None]:
        """Run a sql actor's ticket inside the database; (accepted, status, error)."""
        rows = self._rows(
            "select * from turing.run_sql_ticket(p_ticket_id => %(i)s, p_lease_token => %(t)s)",
            {"i": ticket_id, "t": lease_token},
        )
        r = rows[0]
        return bool(r["accepted"]), r["status"], r["error"]

    def release_worker(self, worker: str, ticket_ids: list[int] | None = None,
                       stopping: bool = True) -> int:
        return int(
            self._value(
                "select turing.release_worker(p_worker => %(w)s, p_secret => %(k)s, "
                "p_ticket_ids => %(i)s, p_stopping => %(s)s)",
                {"w": worker, "k": self._runner_secrets.get(worker), "i": ticket_ids,
                 "s": stopping},
            )
        )

    def reap(self, caller: str | None = None) -> int:
        return int(self._value("select turing.reap(p_caller => %(c)s)", {"c": caller}))

    def tick(self, caller: str = "tick") -> dict[str, Any]:
        return dict(self._value("select turing.tick(p_caller => %(c)s)", {"c": caller}))

    def compute_metrics(self, day: str | None = None) -> int:
        if day is None:
            return int(self._value("select turing.compute_metrics()"))
        return int(self._value("select turing.compute_metrics(p_day => %(d)s::date)", {"d": day}))

    def startup_state(self, models: list[str] | None = None) -> list[ActorState]:
        rows = self._rows(
            "select * from turing.startup_state(p_models => %(m)s)", {"m": models}
        )
        return [ActorState(**r) for r in rows]

    def retry_dead(self, ticket_id: int) -> int:
        return int(self._value("select turing.retry_dead(p_ticket_id => %(t)s)", {"t": ticket_id}))

    def set_actor(self, actor: str, changes: dict[str, Any]) -> int:
        _refuse_bad_output_schema(actor, changes.get("output_schema"))
        return int(
            self._value(
                "select turing.set_actor(p_actor => %(a)s, p_changes => %(c)s)",
                {"a": actor, "c": Jsonb(changes)},
            )
        )

    def chain_story(self, id_: int, limit: int = 1000) -> dict[str, Any]:
        """One chain as a document (turing.chain_story): `id_` is a chain id or the id of any
        ticket in it. Raises UnknownTicket when neither exists."""
        return dict(self._value(
            "select turing.chain_story(p_id => %(i)s, p_limit => %(n)s)",
            {"i": id_, "n": limit}))

    def ticket_story(self, ticket_id: int) -> dict[str, Any]:
        """One attempt's whole story (turing.ticket_story): input, call record, output, error,
        lease events. Raises UnknownTicket when no ticket has that id."""
        return dict(self._value("select turing.ticket_story(p_ticket_id => %(i)s)",
                                {"i": ticket_id}))

    def recent_reaps(self, limit: int = 20, since: str = "1 day") -> list[dict[str, Any]]:
        """The reaper's log, newest first: attempts taken back, claims returned unstarted,
        runners marked lost (turing.recent_reaps)."""
        return self._rows(
            "select * from turing.recent_reaps(p_limit => %(n)s, p_since => %(s)s::interval)",
            {"n": limit, "s": since})

    def ticket_page(self, ticket_id: int) -> dict[str, Any]:
        """One ticket as a document: row, timings, lease events, the subject's other attempts
        and its call record (turing.ticket_page). Raises UnknownTicket."""
        return dict(self._value("select turing.ticket_page(p_ticket_id => %(i)s)",
                                {"i": ticket_id}))

    def runner_board(self) -> list[dict[str, Any]]:
        """Runners with their circuit breakers' reports (turing.runner_board)."""
        return self._rows("select * from turing.runner_board()")

    def model_throughput(self, hours: int = 6) -> list[dict[str, Any]]:
        """Per model and hour: completed, failed, mean and p95 run time, tokens, read from the
        hourly rollup (turing.model_throughput)."""
        return self._rows("select * from turing.model_throughput(p_hours => %(h)s)",
                          {"h": hours})

    def set_model_enabled(self, model: str, enabled: bool) -> int:
        """Pause or resume every actor of `model`; how many. Raises UnknownModel."""
        return int(self._value(
            "select turing.set_model_enabled(p_model => %(m)s, p_enabled => %(e)s)",
            {"m": model, "e": enabled}))

    def retry_all_dead(self, actor: str) -> int:
        """Retry every unhandled dead letter of `actor`; how many. Raises UnknownActor."""
        return int(self._value("select turing.retry_all_dead(p_actor => %(a)s)", {"a": actor}))

    def login(self) -> tuple[str, bool]:
        """(this login's name, whether it is a superuser): `turing web` refuses a superuser's
        session, so every page runs with privileges PostgreSQL checks."""
        row = self._rows(
            "select current_user as name, r.rolsuper from pg_catalog.pg_roles as r "
            "where r.rolname = current_user")[0]
        return str(row["name"]), bool(row["rolsuper"])

    def drain_inbox(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._rows("select * from turing.drain_inbox(p_limit => %(n)s)", {"n": limit})

    # -- monitoring -------------------------------------------------------------------------
    def find_tickets(self, *, actor: str | None = None, status: str | None = None,
                     subject_id: str | None = None, chain_id: int | None = None,
                     limit: int = 50) -> list[dict[str, Any]]:
        return self._rows(
            "select * from turing.find_tickets(p_actor => %(a)s, p_status => %(s)s, "
            "p_subject_id => %(j)s, p_chain_id => %(c)s, p_limit => %(n)s)",
            {"a": actor, "s": status, "j": subject_id, "c": chain_id, "n": limit},
        )

    def check_pipeline(self) -> list[dict[str, Any]]:
        return self._rows("select * from turing.check_pipeline()")

    def actor_definitions(self) -> list[dict[str, Any]]:
        return self._rows("select * from turing.actor_definitions()")

    def actor_history(self, actor: str) -> list[dict[str, Any]]:
        """The versions of one actor, newest first (turing.actor_history). Raises UnknownActor."""
        return self._rows("select * from turing.actor_history(p_actor => %(a)s)", {"a": actor})

    def actor_diff(self, actor: str, from_version: int, to_version: int) -> list[dict[str, Any]]:
        """The fields that differ between two versions of one actor (turing.actor_diff).
        Raises UnknownActor for an unknown actor or version."""
        return self._rows(
            "select * from turing.actor_diff(p_actor => %(a)s, p_from => %(f)s, p_to => %(t)s)",
            {"a": actor, "f": from_version, "t": to_version})

    def actor_runtime(self, actor: str) -> tuple[ActorRuntime, int, float]:
        """The actor's current definition as a runner runs it, its version and the timeout an
        attempt started now gets (turing.actor_runtime). Raises UnknownActor."""
        [row] = self._rows("select * from turing.actor_runtime(p_actor => %(a)s)", {"a": actor})
        runtime = ActorRuntime(revision=row["actor_revision"], **row["actor"])
        return runtime, row["actor_version"], row["timeout_s"]

    def actor_inputs(self, actor: str, subject_ids: Sequence[str] | None = None,
                     limit: int = 100) -> list[dict[str, Any]]:
        """Inputs the actor would run on, without a ticket: its work_query's rows, then its
        latest tickets' inputs (turing.actor_inputs: subject_id, input, source). Raises
        UnknownActor."""
        return self._rows(
            "select * from turing.actor_inputs(p_actor => %(a)s, p_subject_ids => %(s)s, "
            "p_limit => %(n)s)",
            {"a": actor, "s": None if subject_ids is None else list(subject_ids), "n": limit})

    # -- stages and their evidence (RAQ) ---------------------------------------------------
    def promote(self, actor: str, to_stage: str | None = None,
                note: str | None = None) -> dict[str, Any]:
        """Move the current version of `actor` up to `to_stage` (default: the next), if its
        gates have their evidence (turing.promote). Raises GateRefused with what is missing."""
        return self._rows("select * from turing.promote(p_actor => %(a)s, p_to_stage => %(s)s, "
                          "p_note => %(n)s)", {"a": actor, "s": to_stage, "n": note})[0]

    def demote(self, actor: str, to_stage: str = "develop",
               note: str | None = None) -> dict[str, Any]:
        """Move the current version of `actor` down to `to_stage` (turing.demote)."""
        return self._rows("select * from turing.demote(p_actor => %(a)s, p_to_stage => %(s)s, "
                          "p_note => %(n)s)", {"a": actor, "s": to_stage, "n": note})[0]

    def actor_stages(self, actor: str) -> list[dict[str, Any]]:
        """Every version of `actor` with its stage (turing.actor_stages)."""
        return self._rows("select * from turing.actor_stages(p_actor => %(a)s)", {"a": actor})

    def start_raq(self, actor: str, n: int, runs: int, model: str | None = None) -> int:
        """Start a repeatability run of `actor` (turing.start_raq); returns its id."""
        return int(self._value(
            "select turing.start_raq(p_actor => %(a)s, p_n => %(n)s, p_runs => %(r)s, "
            "p_model => %(m)s)", {"a": actor, "n": n, "r": runs, "m": model}))

    def raq_attempts(self, raq_run_id: int) -> list[dict[str, Any]]:
        """The last attempt of each (input, run) of a raq run (turing.raq_attempts)."""
        return self._rows("select * from turing.raq_attempts(p_raq_run_id => %(r)s)",
                          {"r": raq_run_id})

    def finish_raq(self, raq_run_id: int, fields: list[dict[str, Any]]) -> dict[str, Any]:
        """Store a finished raq run's figures and whether it passed (turing.finish_raq)."""
        return self._rows("select * from turing.finish_raq(p_raq_run_id => %(r)s, "
                          "p_fields => %(f)s)", {"r": raq_run_id, "f": Jsonb(fields)})[0]

    def qa_sample(self, actor: str, n: int) -> list[dict[str, Any]]:
        """Completed, unreviewed tickets of the current version of `actor`, at random."""
        return self._rows("select * from turing.qa_sample(p_actor => %(a)s, p_n => %(n)s)",
                          {"a": actor, "n": n})

    def record_review(self, ticket_id: int, verdict: str, note: str | None = None) -> None:
        """A person's verdict on a completed ticket (turing.record_review)."""
        self._value("select turing.record_review(p_ticket_id => %(t)s, p_verdict => %(v)s, "
                    "p_note => %(n)s)", {"t": ticket_id, "v": verdict, "n": note})

    def qa_summary(self, actor: str) -> dict[str, Any]:
        """The QA figures of the current version of `actor` (turing.qa_summary)."""
        return self._rows("select * from turing.qa_summary(p_actor => %(a)s)", {"a": actor})[0]

    def read_events(self, limit: int = 100, visibility_s: int = 30) -> list[dict[str, Any]]:
        """Consume up to `limit` events of the pgmq queue turing_events: read and archive them
        in one transaction (consume_events; turing_admin)."""
        return self._rows(
            "select * from turing.consume_events(p_limit => %(n)s, p_visibility_s => %(vt)s)",
            {"n": limit, "vt": visibility_s})

    def peek_events(self, after_msg_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` events after `after_msg_id`, oldest first, left on the queue
        (peek_events; turing_viewer may)."""
        return self._rows(
            "select * from turing.peek_events(p_after_msg_id => %(a)s, p_limit => %(n)s)",
            {"a": after_msg_id, "n": limit})

    def may_execute(self, function: str) -> bool:
        """Whether this login may execute `turing.<function>`, given with its argument types
        ("compute_metrics(date)"): a read command skips a write its role may not make."""
        return bool(self._value(
            "select pg_catalog.has_function_privilege(%(f)s, 'execute')",
            {"f": f"turing.{function}"}))

    def counts(self) -> list[dict[str, Any]]:
        return self._rows("select * from turing.v_counts order by actor, status")

    def dead_letters(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Unhandled dead letters, newest first; `limit` None for all."""
        return self._rows(
            "select * from turing.v_dead_letters order by finished_at desc, ticket_id desc "
            "limit %s", (limit,))

    def view(self, name: str) -> list[dict[str, Any]]:
        """Rows of one of the monitoring views (name checked against the known ones)."""
        allowed = {
            "v_counts", "v_stuck", "v_timeout_recommendations", "v_dashboard", "v_runners",
            "v_dead_letters", "v_failure_rates", "v_throughput_hourly", "v_alerts",
            "v_pipeline_edges", "v_tokens_hourly",
        }
        if name not in allowed:
            raise InvalidArgument(f"unknown view {name!r}", f"one of {sorted(allowed)}")
        query = psycopg.sql.SQL("select * from {}").format(psycopg.sql.Identifier("turing", name))
        with self._connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            with self._call(conn):
                cur.execute(query)
            return list(cur.fetchall())
