"""The `turing` command, run in a subprocess as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

TURING = [sys.executable, "-m", "turing_pg.cli"]


def run(*args: str, dsn: str | None = None, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if dsn:
        full_env["TURING_DSN"] = dsn
    proc = subprocess.run([*TURING, *args], capture_output=True, text=True, env=full_env,
                          timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"turing {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def test_installed_console_script_exists():
    assert shutil.which("turing") or Path(sys.executable).with_name("turing").exists()


def test_db_up_on_the_embedded_default_then_stop(tmp_home):
    env = {"TURING_HOME": str(tmp_home), "TURING_DSN": ""}
    try:
        up = run("db", "up", "--json", env=env)
        assert "applied migration 0001_core" in json.loads(up.stdout)["done"]
        again = run("db", "up", env=env)
        assert "re-applied" in again.stdout
        st = json.loads(run("db", "status", "--json", env=env).stdout)
        assert st["pending"] == [] and st["pgmq_installed"]
        assert run("db", "dsn", env=env).stdout.startswith("postgresql://postgres@127.0.0.1:")
    finally:
        assert run("db", "stop", env=env).stdout.strip() == "stopped"
    assert not (tmp_home / "pgdata" / "postmaster.pid").exists()


def test_actor_add_submit_tick_status(dsn, tmp_path, conn, jobs):
    (tmp_path / "scorer.yaml").write_text(
        "name: scorer\nkind: script\nscript: cat\n"
        "work_query: select id as subject_id from public.jobs where status = 'new'\n"
        "on_complete: public.jobs_scored\n"
    )
    out = json.loads(run("actor", "add", "-f", str(tmp_path / "scorer.yaml"), "--json",
                         dsn=dsn).stdout)
    assert list(out) == ["scorer"]
    ticket = json.loads(run("submit", "scorer", "not-a-job", "--input", '{"x": 1}', "--json",
                            dsn=dsn).stdout)["ticket_id"]
    assert conn.execute("select input from turing.tickets where ticket_id = %s",
                        (ticket,)).fetchone()[0] == {"x": 1}
    result = json.loads(run("tick", "--json", dsn=dsn).stdout)
    assert result["discovered"] == 200 and result["reaped"] == 0
    status = json.loads(run("status", "--json", dsn=dsn).stdout)
    assert status["actors"][0]["pending"] == 201


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("submit", "ghost", "1"), 4, 'unknown actor "ghost"'),
        (("submit", "scorer", "1", "--input", "{not json"), 2, "--input is not JSON"),
        (("cancel", "999999"), 4, ""),
    ],
)
def test_errors_say_what_to_do_with_fixed_exit_codes(dsn, turing, args, code, message):

    turing.register_actor(dict(name="scorer", kind="script", script="cat"))
    proc = run(*args, dsn=dsn, check=False)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr


def test_bad_work_query_file_exits_3_with_a_hint(dsn, tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nkind: script\nscript: cat\nwork_query: delete from public.jobs\n")
    proc = run("actor", "add", "-f", str(tmp_path / "bad.yaml"), dsn=dsn, check=False)
    assert proc.returncode == 3
    assert "must be a SELECT" in proc.stderr and "hint:" in proc.stderr


def test_unreachable_database_exits_7(tmp_path):
    proc = run("status", dsn="postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
               check=False)
    assert proc.returncode == 7
    assert "cannot reach the database" in proc.stderr


def test_demo_runs_the_taxonomy_pipeline_end_to_end_and_is_rerunnable(dsn):
    """`turing demo` with a reduced data set: schema, sample data, the simulated Ollama server,
    one runner per model plus the cpu runner, progress, then dashboard and taxonomy tree."""
    for _ in range(2):  # rerunnable on the same database
        proc = run("demo", "--limit", "15", "--json", dsn=dsn)
        data = json.loads(proc.stdout)
        assert data["drained"] is True and data["simulated"] is True
        done = {(r["actor"], r["status"]): r["n"] for r in data["counts"]}
        assert done[("clean_skills", "completed")] == 15
        entities = done[("create_entities", "completed")]
        assert entities >= 10
        # both classifiers placed every entity, and every entity was committed
        assert done[("classify_qwen", "completed")] == entities
        assert done[("classify_llama", "completed")] == entities
        assert done[("commit_placement", "completed")] == entities
        # the arbitrator ran only where the two models disagreed
        assert done.get(("arbitrate", "completed"), 0) <= entities
        assert not [k for k in done if k[1] == "dead"]
        assert {r["actor"] for r in data["dashboard"]} >= {"clean_skills", "arbitrate"}
        assert "simulated Ollama" in proc.stderr
        assert data["taxonomy"].count("\n") >= entities


def _exit_code_entries(help_text: str) -> list[tuple[int, str, str]]:
    """(code, phrase, detail in parentheses) for each entry of the `Exit codes:` paragraph of a
    --help text; the closing "the others as in …" is not an entry."""
    start = help_text.index("Exit codes:") + len("Exit codes:")
    paragraph = " ".join(help_text[start:].split("\n\n", 1)[0].split()).rstrip(".")
    entries, depth, current = [], 0, ""
    for ch in paragraph + ";":  # split on `;` outside parentheses
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == ";" and depth == 0:
            entries.append(current.strip())
            current = ""
        else:
            current += ch
    parsed = []
    for entry in entries:
        if entry.startswith("the others as in"):
            continue
        code, _, phrase = entry.partition(" ")
        assert code.isdigit(), f"not an exit code: {entry!r}"
        phrase, _, detail = phrase.partition(" (")
        parsed.append((int(code), phrase, detail.removesuffix(")")))
    return parsed


def test_documented_exit_codes_match_the_exit_table():
    """Every `Exit codes:` paragraph (`turing --help`, `turing-runner --help`, and subcommands
    with codes of their own) pairs each code with that code's phrase in turing_pg.exits, so the
    help can no longer say 3 for a code that is 4."""
    from turing_pg.cli import main
    from turing_pg.db import UnknownModel
    from turing_pg.exits import Exit

    turing_help = run("--help").stdout
    runner_help = subprocess.run([sys.executable, "-m", "turing_pg.cli.runner", "--help"],
                                 capture_output=True, text=True, check=True, timeout=60).stdout
    documented = {"turing": _exit_code_entries(turing_help),
                  "turing-runner": _exit_code_entries(runner_help)}

    def walk(group, prefix):
        for name, cmd in group.commands.items():
            with click.Context(cmd, info_name=f"{prefix} {name}") as ctx:
                text = cmd.get_help(ctx)
            if "Exit codes:" in text:
                documented[f"{prefix} {name}"] = _exit_code_entries(text)
            if isinstance(cmd, click.Group):
                walk(cmd, f"{prefix} {name}")

    walk(main, "turing")
    assert {"turing check", "turing cancel", "turing demo"} <= set(documented)
    for command, entries in documented.items():
        codes = [code for code, _, _ in entries]
        assert codes == sorted(set(codes)), f"{command}: codes out of order or repeated"
        for code, phrase, _ in entries:
            assert code in {e.value for e in Exit}, f"{command}: {code} is not an exit code"
            assert phrase == Exit(code).doc, f"{command}: {code} documented as {phrase!r}"
    assert [code for code, _, _ in documented["turing"]] == [e.value for e in Exit]
    # the runner's unknown-model line carries the code its error really exits with
    assert [code for code, _, detail in documented["turing-runner"]
            if "unknown --model" in detail] == [UnknownModel.exit_code]
