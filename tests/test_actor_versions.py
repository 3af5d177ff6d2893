"""Actor versions: any change to what an actor does to its input (prompt, schema, model, options,
script, SQL function or its body) is a new version, kept with its hash and definition; each
attempt records the version that ran it; `turing actor history` and `turing actor diff` show
them. Limits and wiring (timeouts, attempts, inbox) are not versions: they change how often and
where an actor runs, not what it answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

import psycopg
from conftest import wait_for
from test_runner import QWEN, completed, fake_models, llm_actor, submit_many

from turing_pg.db import Turing
from turing_pg.exits import Exit

TURING = [sys.executable, "-m", "turing_pg.cli"]


def run(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TURING, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TURING_DSN": dsn, "COLUMNS": "200"})


def versions(conn: psycopg.Connection, actor: str) -> list[tuple[int, str]]:
    return conn.execute(
        "select v.version, v.hash from turing.actor_versions as v "
        "join turing.actors as a using (actor_id) where a.name = %s order by v.version",
        (actor,)).fetchall()


def current(conn: psycopg.Connection, actor: str) -> int:
    return conn.execute("select version from turing.actors where name = %s",
                        (actor,)).fetchone()[0]


def test_a_prompt_change_is_a_new_version_and_a_timeout_change_is_not(
        turing: Turing, conn: psycopg.Connection) -> None:
    turing.register_actor(llm_actor("classify", QWEN))
    assert [v for v, _ in versions(conn, "classify")] == [1]
    turing.set_actor("classify", {"timeout": "45 seconds", "max_attempts": 5})
    assert current(conn, "classify") == 1 and len(versions(conn, "classify")) == 1
    turing.set_actor("classify", {"prompt_template": "Name the skill {skill} ({count})."})
    turing.set_actor("classify", {"options": {"temperature": 0.2}})
    assert [v for v, _ in versions(conn, "classify")] == [1, 2, 3]
    assert current(conn, "classify") == 3
    history = turing.actor_history("classify")
    assert [(r["version"], r["changed"], r["is_current"]) for r in history] == [
        (3, ["options"], True), (2, ["prompt_template"], False), (1, [], False)]
    assert history[1]["definition"]["prompt_template"] == "Name the skill {skill} ({count})."
    assert all(len(r["hash"]) == 64 for r in history)


def test_changing_back_is_the_earlier_version_again(
        turing: Turing, conn: psycopg.Connection) -> None:
    original = llm_actor("classify", QWEN)
    turing.register_actor(original)
    turing.set_actor("classify", {"prompt_template": "Something else {skill} {count}"})
    turing.register_actor(original)
    assert [v for v, _ in versions(conn, "classify")] == [1, 2]
    assert current(conn, "classify") == 1


def test_each_attempt_records_the_version_that_ran_it(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN))
    submit_many(turing, "classify", 3, prefix="a")
    runner = start_runner("--model", QWEN, "--ollama-host", fake.base_url)
    wait_for(lambda: completed(conn, "classify") == 3, what="3 completed tickets")
    turing.set_actor("classify", {"prompt_template": "Again: {skill} seen {count} times."})
    submit_many(turing, "classify", 2, prefix="b")
    wait_for(lambda: completed(conn, "classify") == 5, what="5 completed tickets")
    runner.stop()
    rows = conn.execute(
        "select left(subject_id, 1), actor_version from turing.tickets where actor = 'classify'"
        " order by ticket_id").fetchall()
    assert rows == [("a", 1), ("a", 1), ("a", 1), ("b", 2), ("b", 2)]
    assert turing.actor_history("classify")[0]["definition"]["prompt_template"].startswith(
        "Again:")


def test_a_sql_function_replaced_in_place_is_a_new_version_at_the_next_maintain(
        turing: Turing, conn: psycopg.Connection) -> None:
    conn.execute("create function public.double_it(p_subject_id text, p_input jsonb) "
                 "returns jsonb language sql as $$ select jsonb_build_object('v', 2) $$")
    turing.register_actor(dict(name="doubler", kind="sql", sql_function="public.double_it"))
    conn.execute("create or replace function public.double_it(p_subject_id text, p_input jsonb) "
                 "returns jsonb language sql as $$ select jsonb_build_object('v', 3) $$")
    assert current(conn, "doubler") == 1
    conn.execute("select turing.maintain()")
    assert current(conn, "doubler") == 2
    diff = {r["field"]: r for r in turing.actor_diff("doubler", 1, 2)}
    assert set(diff) == {"sql_source"}
    assert "'v', 2" in diff["sql_source"]["from_value"]
    assert "'v', 3" in diff["sql_source"]["to_value"]


def test_concurrent_changes_never_share_a_version_number(
        dsn: str, turing: Turing, conn: psycopg.Connection) -> None:
    turing.register_actor(llm_actor("classify", QWEN))
    errors: list[BaseException] = []

    def change(i: int) -> None:
        try:
            with Turing(dsn, max_size=1) as t:
                for j in range(5):
                    t.set_actor("classify", {"prompt_template": f"Writer {i} take {j}: {{skill}}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=change, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    found = versions(conn, "classify")
    assert [v for v, _ in found] == list(range(1, 17))
    assert len({h for _, h in found}) == 16
    last = conn.execute("select prompt_template from turing.actors where name = 'classify'"
                        ).fetchone()[0]
    assert turing.actor_history("classify")[0]["definition"]["prompt_template"] == last


def test_actor_history_and_diff_through_the_cli(turing: Turing, dsn: str) -> None:
    turing.register_actor(llm_actor("classify", QWEN))
    turing.set_actor("classify", {
        "prompt_template": "Classify the skill {skill}.\nIt was seen {count} times."})
    proc = run("actor", "history", "classify", dsn=dsn)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("prompt_template" in line and "2" in line for line in lines), proc.stdout
    assert any("(first)" in line for line in lines), proc.stdout
    as_json = json.loads(run("actor", "history", "classify", "--json", dsn=dsn).stdout)
    assert [r["version"] for r in as_json] == [2, 1]

    proc = run("actor", "diff", "classify", "1", "2", dsn=dsn)
    assert proc.returncode == 0, proc.stderr
    assert "-Classify the skill {skill} (seen {count} times)." in proc.stdout
    assert "+It was seen {count} times." in proc.stdout
    same = run("actor", "diff", "classify", "2", "2", dsn=dsn)
    assert same.returncode == 0 and "are the same" in same.stdout


def test_unknown_actors_and_versions_are_one_sentence_and_exit_4(
        turing: Turing, dsn: str) -> None:
    turing.register_actor(llm_actor("classify", QWEN))
    for args, expect in [
        (("actor", "history", "nope"), 'unknown actor "nope"'),
        (("actor", "diff", "nope", "1", "2"), 'unknown actor "nope"'),
        (("actor", "diff", "classify", "1", "7"), 'actor "classify" has no version 7'),
    ]:
        proc = run(*args, dsn=dsn)
        out = proc.stdout + proc.stderr
        assert proc.returncode == Exit.UNKNOWN, out
        assert expect in out and "Traceback" not in out, out
    proc = run("actor", "diff", "classify", "0", "1", dsn=dsn)
    assert proc.returncode == Exit.USAGE and "Traceback" not in proc.stderr
