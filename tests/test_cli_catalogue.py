"""The catalogue of user mistakes: every command of `turing` and `turing-runner`, found by walking
the click tree, run as a user would (a subprocess, against a real database with the schema) with
its bad inputs. Each mistake must end in its documented exit code (turing_pg.exits) with one
sentence that says what failed and what to write instead, never a traceback, and never through
the safety net of handle_errors (which is for bugs, not for mistakes).

A new command fails `test_every_command_is_in_the_catalogue` until it is listed here with its
mistakes; the mistakes every command shares (an unknown option; for commands that connect, a
malformed DSN, an unreachable server, a database without the schema) are added by themselves.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import click
import psycopg
import pytest
from conftest import _with_db
from psycopg import sql

from turing_pg.cli import main as turing_main
from turing_pg.cli.options import UNEXPECTED_HINT
from turing_pg.cli.params import MAX_JSON_DEPTH
from turing_pg.cli.runner import main as runner_main
from turing_pg.db import Turing
from turing_pg.exits import Exit

ROOTS = {"turing": turing_main, "turing-runner": runner_main}
MODULES = {"turing": "turing_pg.cli", "turing-runner": "turing_pg.cli.runner"}

HUGE = "x" * 10_000  # a random 10 KB subject id (the limit is 1024 bytes)
DEEP = "[" * 5_000 + "]" * 5_000  # JSON deeper than Python's recursion limit
DEEPISH = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)  # just over the limit
TOO_BIG_ID = str(2**63)  # one past bigint
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"


@dataclass(frozen=True)
class Mistake:
    """One bad input: the arguments after the command's name (`{files}` is the directory of the
    files below), the exit code it must end with, and a phrase the message must contain: the
    rule, or what to write instead."""

    args: tuple[str, ...]
    exit: Exit
    says: str
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Command:
    """A command's entry: `valid` are arguments it accepts (so the shared mistakes reach the
    database instead of a missing-argument error); `skip` names shared mistakes that are not
    mistakes for it, each with why."""

    mistakes: tuple[Mistake, ...] = ()
    valid: tuple[str, ...] = ()
    skip: dict[str, str] = field(default_factory=dict)


def m(*args: str, exit: Exit, says: str, env: dict[str, str] | None = None) -> Mistake:
    return Mistake(args, exit, says, tuple((env or {}).items()))


USAGE, DEFINITION, UNKNOWN = Exit.USAGE, Exit.INVALID_DEFINITION, Exit.UNKNOWN
REFUSED = Exit.REFUSED

# The actor files `actor add` is given (written into `{files}`).
FILES = {
    "bad_yaml.yaml": "name: scorer\n kind: [script\n",
    "not_utf8.yaml": b"\xff\xfe\x00name: x\n",
    "deep.yaml": "name: x\nkind: " + "[" * 3000 + "]" * 3000 + "\n",
    "empty.yaml": "",
    "scalars.yaml": "- one\n- two\n",
    "duration.yaml": "name: a\nkind: script\nscript: cat\ntimeout: 2 minutez\n",
    "lease.yaml": "name: a\nkind: script\nscript: cat\nlease: -5 minutes\n",
    "inbox.yaml": "name: a\nkind: script\nscript: cat\ninbox: new\n",
    "attempts.yaml": "name: a\nkind: script\nscript: cat\nmax_attempts: 0\n",
    "attempts_text.yaml": "name: a\nkind: script\nscript: cat\nmax_attempts: three\n",
    "field.yaml": "name: a\nkind: script\nscript: cat\ntimeuot: 5 minutes\n",
    "kind.yaml": "name: a\nkind: robot\n",
    "needs.yaml": "name: a\nkind: llm\n",
    "name.yaml": "name: Scorer\nkind: script\nscript: cat\n",
    "long_name.yaml": f"name: {HUGE}\nkind: script\nscript: cat\n",
    "include.yaml": "name: a\nkind: llm\nmodel: m\nprompt_template_file: missing.txt\n",
    "schema_file.yaml": "name: a\nkind: llm\nmodel: m\nprompt_template: hi\n"
                        "output_schema_file: not_json.txt\n",
    "not_json.txt": "{nope",
    "schema.yaml": "name: a\nkind: llm\nmodel: m\nprompt_template: hi\n"
                   "output_schema: {type: 5}\n",
    "binary.yaml": "name: a\nkind: script\nscript: !!binary aGVsbG8=\n",
    "nul.yaml": 'name: a\nkind: script\nscript: "a\\0b"\n',
    "work_query.yaml": "name: a\nkind: script\nscript: cat\nwork_query: delete from public.jobs\n",
    "subjects_nul.txt": b"one\na\x00b\n",
    "subjects_binary.txt": b"\xff\xfe\n",
}

CATALOGUE: dict[str, Command] = {
    "turing": Command(mistakes=(m("nosuchcommand", exit=USAGE, says="No such command"),)),
    "turing db": Command(mistakes=(m("nosuch", exit=USAGE, says="No such command"),)),
    "turing db up": Command(skip={"no_schema": "it creates the schema"}),
    "turing db status": Command(skip={"no_schema": "it reports the missing migrations"}),
    "turing db dsn": Command(mistakes=(
        m("extra", exit=USAGE, says="unexpected extra argument"),
        m(exit=USAGE, says="postgresql://USER@HOST", env={"TURING_DSN": "notadsn"}),
    )),
    "turing db stop": Command(mistakes=(
        m("extra", exit=USAGE, says="unexpected extra argument"),
        m(exit=Exit.DB_UNREACHABLE, says="set TURING_HOME to a directory",
          env={"TURING_HOME": "/etc/passwd"}),
    )),
    "turing actor": Command(mistakes=(m("nosuch", exit=USAGE, says="No such command"),)),
    "turing actor add": Command(valid=("-f", "{files}/ok.yaml"), mistakes=(
        m(exit=USAGE, says="Missing option '-f'"),
        m("-f", "{files}/nothere.yaml", exit=USAGE, says="does not exist"),
        m("-f", "{files}", exit=USAGE, says="cannot read the file"),
        m("-f", "{files}/bad_yaml.yaml", exit=DEFINITION, says="at line 2, column 6"),
        m("-f", "{files}/not_utf8.yaml", exit=DEFINITION, says="save the actor file as UTF-8"),
        m("-f", "{files}/deep.yaml", exit=DEFINITION, says="flatten it"),
        m("-f", "{files}/empty.yaml", exit=DEFINITION, says="a list under `actors:`"),
        m("-f", "{files}/scalars.yaml", exit=DEFINITION, says="write `name: ...`"),
        m("-f", "{files}/duration.yaml", exit=DEFINITION, says='"2 minutes" or "90s"'),
        m("-f", "{files}/lease.yaml", exit=DEFINITION, says="e.g. lease: 2 minutes"),
        m("-f", "{files}/inbox.yaml", exit=DEFINITION, says="Write a list, e.g. [new]"),
        m("-f", "{files}/attempts.yaml", exit=DEFINITION, says="e.g. max_attempts: 3"),
        m("-f", "{files}/attempts_text.yaml", exit=DEFINITION, says="e.g. 10"),
        m("-f", "{files}/field.yaml", exit=DEFINITION, says="Actor fields: name, kind"),
        m("-f", "{files}/kind.yaml", exit=DEFINITION, says="kind is one of"),
        m("-f", "{files}/needs.yaml", exit=DEFINITION, says="needs: model"),
        m("-f", "{files}/name.yaml", exit=DEFINITION, says="Use lowercase letters"),
        m("-f", "{files}/long_name.yaml", exit=DEFINITION, says="(at most 63)"),
        m("-f", "{files}/include.yaml", exit=DEFINITION, says="cannot read the file"),
        m("-f", "{files}/schema_file.yaml", exit=DEFINITION, says="at line 1, column 2"),
        m("-f", "{files}/schema.yaml", exit=DEFINITION, says='e.g. {"type": "object"}'),
        m("-f", "{files}/binary.yaml", exit=DEFINITION, says="write it as text"),
        m("-f", "{files}/nul.yaml", exit=USAGE, says="remove \\u0000"),
        m("-f", "{files}/work_query.yaml", exit=Exit.INVALID_DEFINITION, says="must be a SELECT"),
    )),
    "turing actor list": Command(mistakes=(
        m(exit=USAGE, says="TURING_STATEMENT_TIMEOUT=30",
          env={"TURING_STATEMENT_TIMEOUT": "soon"}),
    )),
    "turing actor stage": Command(valid=("scorer",), mistakes=(
        m("nope", exit=UNKNOWN, says="turing actor list"),
        m(exit=USAGE, says="Missing argument 'NAME'"),
    )),
    "turing actor promote": Command(valid=("scorer",), mistakes=(
        m("nope", exit=UNKNOWN, says="turing actor list"),
        m("scorer", "--to", "bogus", exit=USAGE, says="develop, stabilize, prove, qa"),
        m("scorer", "--to", "production", exit=REFUSED, says="turing raq scorer"),
    )),
    "turing actor demote": Command(valid=("scorer",), mistakes=(
        m("nope", exit=UNKNOWN, says="turing actor list"),
        m("scorer", exit=REFUSED, says="turing actor promote scorer"),
        m("scorer", "--to", "bogus", exit=USAGE, says="develop, stabilize, prove, qa"),
    )),
    "turing raq": Command(valid=("scorer",), mistakes=(
        m("nope", exit=UNKNOWN, says="turing actor list"),
        m("scorer", "--n", "5000", exit=REFUSED, says="or let its inbox fill first"),
        m("scorer", "--model", "nosuch:1b", exit=UNKNOWN, says="turing-runner --model nosuch"),
        m("scorer", "--runs", "1", exit=USAGE, says="--runs"),
    )),
    "turing qa": Command(valid=("scorer",), mistakes=(
        m("nope", exit=UNKNOWN, says="turing actor list"),
        m("scorer", "--sample", "0", exit=USAGE, says="--sample"),
    )),
    "turing actor show": Command(valid=("scorer",), mistakes=(
        m("nope", exit=UNKNOWN, says="turing actor list"),
        m(exit=USAGE, says="Missing argument 'NAME'"),
    )),
    "turing actor set": Command(valid=("scorer", "priority=1"), mistakes=(
        m("nope", "priority=1", exit=UNKNOWN, says="turing actor list"),
        m("scorer", exit=USAGE, says="Missing argument 'FIELD=VALUE...'"),
        m("scorer", "timeout=2 minutez", exit=DEFINITION, says='"2 minutes" or "90s"'),
        m("scorer", "backoff_base=soon", exit=DEFINITION, says='"2 minutes", "90s"'),
        m("scorer", "max_attempts=0", exit=DEFINITION, says="e.g. max_attempts: 3"),
        m("scorer", "batch_size=0", exit=DEFINITION, says="e.g. batch_size: 8"),
        m("scorer", "max_attempts=NaN", exit=DEFINITION, says="e.g. 10"),
        m("scorer", "inbox=new", exit=DEFINITION, says="Write a list, e.g. [new]"),
        m("scorer", 'output_schema={"type": 5}', exit=DEFINITION,
          says='e.g. {"type": "object"}'),
        m("scorer", "timeuot=5", exit=USAGE, says="Changeable fields: model"),
        m("scorer", "kind=llm", exit=USAGE, says="register a new one"),
        m("scorer", "max_attempts", exit=USAGE, says="write e.g. max_attempts=5"),
        m("scorer", "=5", exit=USAGE, says="write e.g. max_attempts=5"),
        m("scorer", f"options={DEEP}", exit=USAGE, says=f"at most {MAX_JSON_DEPTH} levels"),
    )),
    "turing actor enable": Command(valid=("scorer",), mistakes=(
        m("nope", exit=UNKNOWN, says="turing actor list"),
    )),
    "turing actor disable": Command(valid=("scorer",), mistakes=(
        m("nope", exit=UNKNOWN, says="turing actor list"),
    )),
    "turing submit": Command(valid=("scorer", "s-new"), mistakes=(
        m("nope", "1", exit=UNKNOWN, says="turing actor list"),
        m("scorer", HUGE, exit=USAGE, says="Use the key of the domain row"),
        m("scorer", "", exit=USAGE, says="needs a subject_id"),
        m("scorer", "s-open", exit=REFUSED, says="turing cancel"),
        m("scorer", "1", "--input", DEEP, exit=USAGE, says=f"at most {MAX_JSON_DEPTH} levels"),
        m("scorer", "1", "--input", DEEPISH, exit=USAGE,
          says=f"at most {MAX_JSON_DEPTH} levels"),
        m("scorer", "1", "--input", "{not json", exit=USAGE, says="write a JSON object"),
        m("scorer", "1", "--input", "NaN", exit=USAGE, says="write a JSON object"),
        m("scorer", "1", "--input", "[1, 2]", exit=USAGE, says="a JSON object"),
        m("scorer", exit=USAGE, says="pass --from-file FILE"),
        m(exit=USAGE, says="Missing argument 'ACTOR'"),
        m("scorer", "--from-file", "{files}/nothere.txt", exit=USAGE, says="No such file"),
        m("scorer", "--from-file", "{files}/subjects_binary.txt", exit=USAGE,
          says="one subject id per line"),
        m("scorer", "--from-file", "{files}/subjects_nul.txt", exit=USAGE,
          says="remove the NUL bytes"),
        m("scorer", "1", "--priority", "99999999999", exit=USAGE,
          says="-2147483648<=x<=2147483647"),
        m("scorer", "1", "--priority", "high", exit=USAGE, says="is not a valid integer"),
    )),
    "turing rerun": Command(valid=("scorer", "--all"), mistakes=(
        m("nope", "--all", exit=UNKNOWN, says="turing actor list"),
        m("scorer", exit=USAGE, says="pass --subject SUBJECT for one, or --all"),
        m("scorer", "--all", "--subject", "1", exit=USAGE, says="pass --subject SUBJECT"),
        m("scorer", "--subject", HUGE, exit=UNKNOWN, says="turing submit"),
        m("plain", "--all", exit=USAGE, says="Use `turing submit"),
    )),
    "turing cancel": Command(valid=("1",), mistakes=(
        m("999999", exit=UNKNOWN, says="not open"),
        m(TOO_BIG_ID, exit=USAGE, says="1<=x<=9223372036854775807"),
        m("0", exit=USAGE, says="1<=x<=9223372036854775807"),
        m("one", exit=USAGE, says="is not a valid integer"),
        m(exit=USAGE, says="Missing argument 'TICKET_ID'"),
    )),
    "turing retry": Command(valid=("1",), mistakes=(
        m("999999", exit=UNKNOWN, says="turing dead"),
        m(TOO_BIG_ID, exit=USAGE, says="1<=x<=9223372036854775807"),
        m(exit=USAGE, says="Missing argument 'TICKET_ID'"),
    )),
    "turing dead": Command(mistakes=(
        m("--limit", "-1", exit=USAGE, says="x>=0"),
        m("--limit", "many", exit=USAGE, says="is not a valid integer"),
        m("nosuch", exit=USAGE, says="No such command"),
    )),
    "turing dead retry": Command(valid=("1",), mistakes=(
        m(exit=USAGE, says="name ticket ids or pass --all"),
        m("999999", exit=UNKNOWN, says="turing dead"),
        m(TOO_BIG_ID, exit=USAGE, says="1<=x<=9223372036854775807"),
    )),
    "turing reap": Command(mistakes=(m("now", exit=USAGE, says="unexpected extra argument"),)),
    "turing tick": Command(mistakes=(m("now", exit=USAGE, says="unexpected extra argument"),)),
    "turing metrics": Command(mistakes=(
        m("--day", "yesterday", exit=USAGE, says="'%Y-%m-%d'"),
        m("--day", "2024-13-45", exit=USAGE, says="'%Y-%m-%d'"),
        m("--reaps", "-1", exit=USAGE, says="x>=0"),
    )),
    "turing status": Command(mistakes=(
        m(exit=USAGE, says="TURING_STATEMENT_TIMEOUT=30", env={"TURING_STATEMENT_TIMEOUT": "-5"}),
    )),
    "turing top": Command(valid=("--count", "1"), mistakes=(
        m("--interval", "-1", exit=USAGE, says="x>=0"),
        m("--count", "-1", exit=USAGE, says="x>=0"),
    )),
    "turing graph": Command(mistakes=(
        m("-o", "{files}/pipeline.gif", exit=USAGE, says="must end in .svg or .png"),
        m("--format", "png", exit=USAGE, says="'mermaid', 'dot'"),
    )),
    "turing check": Command(mistakes=(m("all", exit=USAGE, says="unexpected extra argument"),)),
    "turing tickets": Command(mistakes=(
        m("--actor", "nope", exit=UNKNOWN, says="turing actor list"),
        m("--limit", "-1", exit=USAGE, says="1<=x<=10000"),
        m("--limit", "0", exit=USAGE, says="1<=x<=10000"),
        m("--limit", "20000", exit=USAGE, says="1<=x<=10000"),
        m("--status", "done", exit=USAGE, says="'pending', 'running'"),
        m("--chain", TOO_BIG_ID, exit=USAGE, says="1<=x<=9223372036854775807"),
    )),
    "turing events": Command(mistakes=(
        m("--limit", "0", exit=USAGE, says="x>=1"),
        m("--limit", "-1", exit=USAGE, says="x>=1"),
    )),
    "turing chain": Command(valid=("1",), mistakes=(
        m("999999", exit=UNKNOWN, says="turing tickets"),
        m(TOO_BIG_ID, exit=USAGE, says="1<=x<=9223372036854775807"),
        m("1", "--limit", "0", exit=USAGE, says="x>=1"),
        m(exit=USAGE, says="Missing argument 'ID'"),
    )),
    "turing tickets show": Command(valid=("1",), mistakes=(
        m("999999", exit=UNKNOWN, says="as `turing tickets` lists them"),
        m(TOO_BIG_ID, exit=USAGE, says="1<=x<=9223372036854775807"),
        m("one", exit=USAGE, says="is not a valid integer"),
        m(exit=USAGE, says="Missing argument 'ID'"),
    )),
    "turing actor history": Command(valid=("scorer",), mistakes=(
        m("nope", exit=UNKNOWN, says="turing actor list"),
        m(exit=USAGE, says="Missing argument 'NAME'"),
    )),
    "turing actor diff": Command(valid=("scorer", "1", "1"), mistakes=(
        m("nope", "1", "2", exit=UNKNOWN, says="turing actor list"),
        m("scorer", "1", "9", exit=UNKNOWN, says="Its versions: 1"),
        m("scorer", "0", "1", exit=USAGE, says="x>=1"),
        m("scorer", "one", "1", exit=USAGE, says="is not a valid integer"),
        m("scorer", "1", exit=USAGE, says="Missing argument 'V2'"),
    )),
    "turing actor remove": Command(valid=("scorer", "--yes"), mistakes=(
        m("nope", "--yes", exit=UNKNOWN, says="turing actor list"),
        m("scorer", exit=USAGE, says="pass --yes"),
        m("scorer", "--yes", exit=REFUSED, says="--cancel-open"),
        m(exit=USAGE, says="Missing argument 'NAME'"),
    )),
    "turing web": Command(
        valid=("--port", "1"),
        skip={"unreachable": "it serves the login page; each login reaches the database",
              "no_schema": "it serves the login page; each page says what it lacks"},
        mistakes=(
            m("--port", "0", exit=USAGE, says="1<=x<=65535"),
            m("--port", "http", exit=USAGE, says="is not a valid integer"),
            m("--host", "no.such.host.invalid", exit=USAGE, says="pass an IP address"),
        )),
    "turing human": Command(valid=("--model", "human"), mistakes=(
        m("--model", "nope", exit=UNKNOWN, says="Known models: cpu"),
    )),
    "turing demo": Command(
        valid=("--limit", "1"),
        skip={"no_schema": "it creates the schema (and would run the whole demo)"},
        mistakes=(
            m("--limit", "0", exit=USAGE, says="x>=1"),
            m("--time-scale", "0", exit=USAGE, says="x>0"),
            m("--timeout", "-1", exit=USAGE, says="x>0"),
        )),
    "turing harness": Command(valid=("scorer", "--input", "{}"), mistakes=(
        m("nope", "--subject", "1", exit=UNKNOWN, says="turing actor list"),
        m("scorer", "--subject", "1", exit=UNKNOWN, says="give the input yourself"),
        m("scorer", "--subject", HUGE, exit=UNKNOWN, says="give the input yourself"),
        m("scorer", exit=USAGE, says="--subject S"),
        m("scorer", "--input", "[1]", exit=USAGE, says="a JSON object"),
        m("scorer", "--input", DEEP, exit=USAGE, says=f"at most {MAX_JSON_DEPTH} levels"),
        m("scorer", "--subject", "1", "--save", "--model", "m", exit=USAGE, says="drop --model"),
        m("scorer", "--input", "{}", "--save", exit=USAGE, says="needs --subject S"),
        m("scorer", "--subject", "s-open", "--save", exit=REFUSED, says="turing cancel"),
        m("scorer", "--input", "{}", "--model", "m", exit=USAGE, says="applies to llm actors"),
        m("scorer", "--input", "{}", "--backend", "vllm", exit=USAGE, says="'ollama', 'openai'"),
    )),
    "turing matrix": Command(valid=("writer", "--models", "m"), mistakes=(
        m("nope", "--models", "m", exit=UNKNOWN, says="turing actor list"),
        m("scorer", "--models", "m", exit=USAGE, says="has no model or prompt"),
        m("writer", "--models", "m", "--n", "5", exit=USAGE, says="submit some first"),
        m("writer", exit=USAGE, says="Missing option '--models'"),
        m("writer", "--models", ",", exit=USAGE, says="--models A,B"),
        m("writer", "--models", "m", "--n", "0", exit=USAGE, says="1<=x<=10000"),
        m("writer", "--models", "m", "--png", "{files}/m.gif", exit=USAGE, says="end in .png"),
        m("writer", "--models", "m", "--concurrency", "0", exit=USAGE, says="1<=x<=64"),
        m("writer", "--models", "m", "--threshold", "2", exit=USAGE, says="0<=x<=1"),
    )),
    "turing chat": Command(valid=("writer",), mistakes=(
        m("nope", exit=UNKNOWN, says="turing actor list"),
        m("scorer", exit=USAGE, says="has no model or prompt"),
        m("writer", exit=USAGE, says="name one with --subject S"),
        m("writer", "--subject", "1", exit=UNKNOWN, says="turing tickets --actor writer"),
    )),
    "turing-runner": Command(
        valid=("--model", "cpu"),
        skip={"unreachable": "it waits for the database (invariant: no manual step)",
              "no_schema": "it waits for the database too"},
        mistakes=(
            m(exit=USAGE, says="give --model NAME"),
            m("--model", "nope", exit=UNKNOWN, says="Known models: cpu"),
            m("--model", "cpu", "--concurrency", "0", exit=USAGE, says="1<=x<=256"),
            m("--model", "cpu", "--keep-alive", "2minutez", exit=USAGE, says="such as 30m"),
            m("--model", "cpu", "--poll-interval", "-1", exit=USAGE, says="x>0"),
            m("--model", "cpu", "--num-ctx", "0", exit=USAGE, says="x>=1"),
            m("--model", "cpu", "--backend", "vllm", exit=USAGE, says="'ollama', 'openai'"),
            m("--model", "cpu", exit=USAGE, says="TURING_STATEMENT_TIMEOUT=30",
              env={"TURING_STATEMENT_TIMEOUT": "x"}),
        )),
}


def _walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _walk(sub, f"{path} {name}")


COMMANDS = {path: cmd for root, main in ROOTS.items() for path, cmd in _walk(main, root)}


def _shared(path: str, command: click.Command) -> dict[str, Mistake]:
    """The mistakes every command shares, with the command's valid arguments."""
    valid = CATALOGUE[path].valid if path in CATALOGUE else ()
    shared = {"unknown_option": m("--no-such-option", exit=USAGE, says="--help")}
    if any(p.name == "dsn" for p in command.params):
        shared |= {
            "bad_dsn": m(*valid, "--dsn", "notadsn", exit=USAGE, says="postgresql://USER@HOST"),
            "unreachable": m(*valid, "--dsn", UNREACHABLE, exit=Exit.DB_UNREACHABLE,
                             says="check that PostgreSQL is running"),
            "no_schema": m(*valid, "--dsn", "{empty_dsn}", exit=Exit.SCHEMA,
                           says="run `turing db up`"),
        }
    skip = CATALOGUE[path].skip if path in CATALOGUE else {}
    return {name: mistake for name, mistake in shared.items() if name not in skip}


CASES = [
    pytest.param(path, mistake, id=f"{path}: {name}")
    for path, cmd in COMMANDS.items()
    for name, mistake in [
        *_shared(path, cmd).items(),
        *((" ".join(x.args)[:60] or "(nothing)", x)
          for x in (CATALOGUE[path].mistakes if path in CATALOGUE else ())),
    ]
]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str


@pytest.fixture(scope="module")
def catalogue_db(pg_server: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[dict[str, str]]:
    """One database with the schema (an actor `scorer` with a work_query, one open ticket,
    `plain` without a work_query, an llm actor `writer`), one without, and the files; cases
    only read or are refused, so they share them."""
    names = {"full": f"turing_cat_{os.getpid()}", "empty": f"turing_cat_empty_{os.getpid()}"}
    with psycopg.connect(pg_server, autocommit=True) as conn:
        for key, name in names.items():
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))
            conn.execute(sql.SQL("create database {}" + (" template {}" if key == "full" else ""))
                         .format(sql.Identifier(name), sql.Identifier(template_db)))
    dsn = _with_db(pg_server, names["full"])
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table public.jobs (id integer primary key, status text)")
        conn.execute("grant select on public.jobs to turing_test_app")
    with Turing(dsn) as t:
        t.register_actor({"name": "scorer", "kind": "script", "script": "cat",
                          "work_query": "select id as subject_id from public.jobs "
                                        "where status = 'new'"})
        t.register_actor({"name": "plain", "kind": "script", "script": "cat"})
        t.register_actor({"name": "writer", "kind": "llm", "model": "m",
                          "prompt_template": "Write about {subject_id}.",
                          "output_schema": {"type": "object"},
                          "work_query": "select id as subject_id from public.jobs "
                                        "where status = 'new'"})
        t.submit("scorer", "s-open")
    files = tmp_path_factory.mktemp("catalogue")
    (files / "ok.yaml").write_text("name: scorer\nkind: script\nscript: cat\n")
    for name, content in FILES.items():
        if isinstance(content, bytes):
            (files / name).write_bytes(content)
        else:
            (files / name).write_text(content)
    try:
        yield {"dsn": dsn, "empty_dsn": _with_db(pg_server, names["empty"]), "files": str(files)}
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            for name in names.values():
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                    sql.Identifier(name)))


def _run(path: str, mistake: Mistake, where: dict[str, str]) -> Ran:
    root, *words = path.split()
    args = [a.replace("{files}", where["files"]).replace("{empty_dsn}", where["empty_dsn"])
            for a in mistake.args]
    env = {**os.environ, "TURING_DSN": where["dsn"], "TURING_HOME": where["files"] + "/home",
           **dict(mistake.env)}
    if root == "turing-runner":
        env["TURING_EXIT_WHEN_IDLE"] = "1"
    proc = subprocess.run([sys.executable, "-m", MODULES[root], *words, *args],
                          capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL)
    return Ran(proc.returncode, proc.stdout + proc.stderr)


_CASE_TEST = "test_a_mistake_is_one_sentence_with_its_exit_code"


@pytest.fixture(scope="module")
def ran(catalogue_db: dict[str, str], request: pytest.FixtureRequest
        ) -> dict[tuple[str, Mistake], Ran]:
    """Every selected case, run once, a few at a time (each is a fresh Python process)."""
    cases = [(item.callspec.params["path"], item.callspec.params["mistake"])
             for item in request.session.items
             if getattr(item, "originalname", "") == _CASE_TEST]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda c: _run(c[0], c[1], catalogue_db), cases)
        return dict(zip(cases, results, strict=True))


# a line a refusal may print: turing's error and hint, click's usage error, the runner's
# error, and the runner's log lines before it
# (a confirmation question that met the end of stdin is the one other line a mistake may show)
_ALLOWED_LINE = re.compile(r"^(error: |hint: |Usage: |Try '|Error: |turing-runner: |"
                           r"\d\d:\d\d:\d\d |.*\? .*\[y/N\]: $)")


def test_every_command_is_in_the_catalogue():
    """A command added to the click tree fails here until its mistakes are listed above."""
    assert set(COMMANDS) == set(CATALOGUE), (
        f"not in the catalogue: {sorted(set(COMMANDS) - set(CATALOGUE))}; "
        f"listed but gone: {sorted(set(CATALOGUE) - set(COMMANDS))}")
    for path, entry in CATALOGUE.items():
        unknown = set(entry.skip) - {"unknown_option", "bad_dsn", "unreachable", "no_schema"}
        assert not unknown, f"{path}: skips {unknown}, which are not shared mistakes"


@pytest.mark.parametrize(("path", "mistake"), CASES)
def test_a_mistake_is_one_sentence_with_its_exit_code(path, mistake, ran):
    result = ran[(path, mistake)]
    shown = f"{path} {' '.join(mistake.args)[:200]} printed:\n{result.out[-3000:]}"
    assert "Traceback" not in result.out, shown
    assert UNEXPECTED_HINT not in result.out, f"the safety net caught a user mistake: {shown}"
    assert result.code == mistake.exit, f"exit {result.code}, documented {mistake.exit}: {shown}"
    lines = [line for line in result.out.splitlines() if line.strip()]
    assert all(_ALLOWED_LINE.match(line) for line in lines), f"not one sentence: {shown}"
    errors = [line for line in lines if line.startswith(("error: ", "Error: "))]
    if path.startswith("turing-runner"):
        assert errors or any(line.startswith("turing-runner: ") for line in lines), shown
    else:
        assert len(errors) == 1, f"not one sentence: {shown}"
    assert any(line.startswith(("hint: ", "Try '")) for line in lines), (
        f"no hint of what to write instead: {shown}")
    assert mistake.says in result.out, f"does not say {mistake.says!r}: {shown}"


# A command with the real error handler whose body has a bug: what the safety net is for.
_BUGGY_COMMAND = """
import click
from turing_pg.cli.options import common_options, handle_errors

@click.command()
@common_options
@handle_errors
def buggy(dsn, as_json, verbose):
    {}["missing"]

buggy()
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_the_safety_net_names_a_bug_as_a_bug(verbose):
    """An exception no handler knows ends in one sentence with the marker the catalogue looks
    for, exit 1; with -v the traceback follows for the bug report."""
    proc = subprocess.run([sys.executable, "-c", _BUGGY_COMMAND, *(["-v"] if verbose else [])],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == Exit.ERROR
    assert "error: unexpected KeyError: 'missing'" in proc.stderr
    assert UNEXPECTED_HINT in proc.stderr
    assert ("Traceback" in proc.stderr) is verbose
