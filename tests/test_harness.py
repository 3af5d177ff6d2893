"""`turing harness` runs one actor on one subject through the runner's executor, writing
nothing unless --save, which makes it a ticket claimed and reported like a runner's; `turing
matrix` runs the same inputs on several models and compares them (turing_pg.agreement).

Through the real CLI in a subprocess, against the bundled Ollama-compatible server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from test_runner import LLAMA, QWEN, SCHEMA

from turing_pg.agreement import Rule, agree, pairwise
from turing_pg.db import Turing
from turing_pg.exits import Exit
from turing_pg.fake_ollama import ModelSpec

TURING = [sys.executable, "-m", "turing_pg.cli"]
GEMMA = "gemma2:9b"
KEEP = '{"label": "keep", "confidence": 0.5}'


def run(*args: str, dsn: str, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TURING, *args], capture_output=True, text=True, timeout=120,
                          input=stdin,
                          env={**os.environ, "TURING_DSN": dsn, "COLUMNS": "200", **(env or {})})


def models() -> list[ModelSpec]:
    """qwen answers by its seeded simulation; llama and gemma always answer KEEP (they agree)."""
    return [ModelSpec(name=QWEN), ModelSpec(name=LLAMA, family="llama", scripted=[(".", KEEP)]),
            ModelSpec(name=GEMMA, family="gemma", scripted=[(".", KEEP)])]


@pytest.fixture
def scorer(turing: Turing, jobs: int) -> str:
    """An llm actor over the jobs table (inbox new → outbox scored)."""
    turing.register_actor(dict(
        name="scorer", kind="llm", model=QWEN,
        prompt_template="Classify the job {title} (id {subject_id}).",
        system_prompt="You sort jobs.", output_schema=SCHEMA, timeout="20 seconds",
        work_query="select id::text as subject_id, title from public.jobs "
                   "where status = 'new' order by id",
        on_complete="public.jobs_scored", inbox=["new"], outbox=["scored"]))
    return "scorer"


def counts(conn: psycopg.Connection) -> dict[str, int]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        "select (select count(*) from turing.tickets) as tickets, "
        "(select count(*) from turing.calls) as calls, "
        "(select count(*) from public.jobs where status <> 'new') as written").fetchone()


def test_harness_shows_prompt_answer_output_and_counters_and_writes_nothing(
        dsn: str, conn: psycopg.Connection, scorer: str, fake_ollama: Any) -> None:
    fake = fake_ollama(models=models())
    before = counts(conn)
    proc = run("harness", scorer, "--subject", "7", "--ollama-host", fake.base_url, "--json",
               dsn=dsn)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["input"] == {"title": "job 7"} and doc["input_source"] == "work_query"
    assert doc["call"]["prompt"] == "Classify the job job 7 (id 7)."
    assert doc["call"]["system_prompt"] == "You sort jobs."
    assert json.loads(doc["call"]["answer"]) == doc["output"]
    assert doc["valid"] is True and doc["result"] == "completed"
    assert doc["output"]["label"] in ("keep", "drop")
    assert doc["call"]["tokens"]["output"] > 0 and doc["call"]["timings_ns"]["total"] > 0
    assert doc["saved"] is False and doc["ticket_id"] is None
    assert counts(conn) == before, "no ticket, no call record, no on_complete"
    text = run("harness", scorer, "--subject", "7", "--ollama-host", fake.base_url, dsn=dsn)
    assert text.returncode == 0, text.stderr
    for part in ("prompt (rendered):", "answer (raw):", "output (valid):", "tokens: prompt",
                 "saved: no"):
        assert part in text.stdout


def test_harness_runs_another_model_or_a_given_input(
        dsn: str, scorer: str, fake_ollama: Any) -> None:
    fake = fake_ollama(models=models())
    proc = run("harness", scorer, "--input", '{"title": "Nurse"}', "--model", LLAMA,
               "--ollama-host", fake.base_url, "--json", dsn=dsn)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["model"] == LLAMA and doc["call"]["model"] == LLAMA
    assert doc["input_source"] == "given" and doc["output"] == json.loads(KEEP)
    assert doc["call"]["prompt"] == "Classify the job Nurse (id harness)."


def test_harness_shows_a_refused_answer_with_the_runners_validation(
        dsn: str, scorer: str, fake_ollama: Any) -> None:
    bad = ModelSpec(name=QWEN, scripted=[(".", '{"label": "maybe", "confidence": 2}')])
    fake = fake_ollama(models=[bad])
    proc = run("harness", scorer, "--subject", "3", "--ollama-host", fake.base_url, "--json",
               dsn=dsn)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["valid"] is False and doc["result"] == "failed" and doc["retryable"] is True
    assert "violates output_schema" in doc["error"]
    assert doc["output"] == {"label": "maybe", "confidence": 2}, "what the refused answer was"


def test_harness_save_makes_a_ticket_claimed_run_and_reported_like_a_runners(
        dsn: str, conn: psycopg.Connection, scorer: str, fake_ollama: Any) -> None:
    fake = fake_ollama(models=models())
    proc = run("harness", scorer, "--subject", "9", "--save", "--ollama-host", fake.base_url,
               "--json", dsn=dsn)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["saved"] is True and doc["ticket_status"] == "completed"
    cur = conn.cursor(row_factory=dict_row)
    ticket = cur.execute("select status, subject_id, worker, output from turing.tickets "
                         "where ticket_id = %s",
                         (doc["ticket_id"],)).fetchone()
    assert ticket["status"] == "completed" and ticket["subject_id"] == "9"
    assert ticket["worker"].startswith("harness:") and ticket["output"] == doc["output"]
    assert cur.execute("select count(*) as n from turing.calls where ticket_id = %s",
                       (doc["ticket_id"],)).fetchone()["n"] == 1
    assert cur.execute("select status from public.jobs where id = 9").fetchone()["status"] \
        == "scored", "on_complete ran in the same transaction"
    runner = cur.execute("select status from turing.runners where worker = %s",
                         (ticket["worker"],)).fetchone()
    assert runner["status"] == "stopped"
    shown = run("tickets", "show", str(doc["ticket_id"]), dsn=dsn)
    assert "Classify the job job 9 (id 9)." in shown.stdout
    # the subject left the inbox: its input now comes from that ticket
    again = run("harness", scorer, "--subject", "9", "--ollama-host", fake.base_url, "--json",
                dsn=dsn)
    assert json.loads(again.stdout)["input_source"] == "ticket"


@pytest.mark.parametrize(("args", "code", "says"), [
    (("nope", "--subject", "1"), Exit.UNKNOWN, "turing actor list"),
    (("scorer", "--subject", "nope"), Exit.UNKNOWN, "unknown subject nope"),
    (("scorer", "--subject", "1", "--model", "nosuch:1b"), Exit.UNKNOWN, "unknown model"),
    (("scorer",), Exit.USAGE, "--subject S"),
    (("scorer", "--subject", "1", "--save", "--model", LLAMA), Exit.USAGE, "drop --model"),
    (("scorer", "--input", "[1]"), Exit.USAGE, "JSON object"),
    (("plain", "--subject", "1"), Exit.USAGE, "a person answers"),
])
def test_harness_bad_input_is_one_sentence_with_its_exit_code(
        dsn: str, turing: Turing, scorer: str, fake_ollama: Any, args: tuple[str, ...],
        code: Exit, says: str) -> None:
    turing.register_actor(dict(name="plain", kind="human", output_schema={"type": "object"}))
    fake = fake_ollama(models=models())
    proc = run("harness", *args, "--ollama-host", fake.base_url, dsn=dsn)
    assert proc.returncode == code, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr


# -- matrix ----------------------------------------------------------------------------------
def test_matrix_compares_models_on_the_same_inputs_and_draws_a_heatmap(
        dsn: str, conn: psycopg.Connection, scorer: str, fake_ollama: Any, tmp_path: Any
        ) -> None:
    fake = fake_ollama(models=models())
    before = counts(conn)
    png = tmp_path / "m.png"
    proc = run("matrix", scorer, "--models", f"{QWEN},{LLAMA},{GEMMA}", "--n", "6",
               "--seed", "3", "--png", str(png), "--ollama-host", fake.base_url, "--json",
               dsn=dsn)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["subjects"]) == 6 and doc["inputs"] == "random, seed 3"
    pairs = {(p["a"], p["b"]): p for p in doc["pairs"]}
    assert pairs[(LLAMA, GEMMA)]["agreement"] == 1.0 and pairs[(LLAMA, GEMMA)]["compared"] == 6
    keep = sum(o["output"]["label"] == "keep" for o in doc["outputs"][QWEN])
    assert pairs[(QWEN, LLAMA)]["agreed"] <= keep
    assert [m["model"] for m in doc["models"]] == [QWEN, LLAMA, GEMMA]
    assert all(m["n"] == 6 and m["failure_rate"] == 0 and m["output_tokens"] > 0
               for m in doc["models"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert counts(conn) == before, "nothing written"
    # the same seed draws the same subjects; a table in the terminal
    text = run("matrix", scorer, "--models", f"{LLAMA},{GEMMA}", "--n", "6", "--seed", "3",
               "--ollama-host", fake.base_url, dsn=dsn)
    assert text.returncode == 0, text.stderr
    assert "100%" in text.stdout and "failure_rate" in text.stdout, text.stdout
    first = run("matrix", scorer, "--models", LLAMA, "--n", "3", "--ollama-host",
                fake.base_url, "--json", dsn=dsn)
    assert json.loads(first.stdout)["subjects"] == ["1", "2", "3"]


@pytest.mark.parametrize(("args", "code", "says"), [
    (("nope", "--models", QWEN), Exit.UNKNOWN, "turing actor list"),
    (("scorer", "--models", "nosuch:1b"), Exit.UNKNOWN, "unknown model"),
    (("scorer", "--models", QWEN, "--n", "500"), Exit.USAGE, "ask for --n 200 or fewer"),
    (("cat", "--models", QWEN), Exit.USAGE, "has no model or prompt"),
    (("scorer", "--models", QWEN, "--png", "x.gif"), Exit.USAGE, "must end in .png"),
    (("scorer", "--models", " , "), Exit.USAGE, "--models A,B"),
])
def test_matrix_bad_input_is_one_sentence_with_its_exit_code(
        dsn: str, turing: Turing, scorer: str, fake_ollama: Any, args: tuple[str, ...],
        code: Exit, says: str) -> None:
    turing.register_actor(dict(name="cat", kind="script", script="cat"))
    fake = fake_ollama(models=models())
    proc = run("matrix", *args, "--ollama-host", fake.base_url, dsn=dsn)
    assert proc.returncode == code, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr


# -- the agreement rule ----------------------------------------------------------------------
def test_agreement_is_exact_for_enums_booleans_and_integers_close_for_text_and_numbers():
    schema = {"type": "object", "properties": {"label": {"enum": ["Keep", "keep"]}}}
    assert agree({"label": "keep"}, {"label": "keep"}, schema)
    assert not agree({"label": "Keep"}, {"label": "keep"}, schema)
    assert agree({"note": "A nurse, full time."}, {"note": "a nurse full time"})
    assert not agree({"note": "a nurse"}, {"note": "a welder"})
    assert agree({"x": 0.501}, {"x": 0.5}) and not agree({"x": 0.6}, {"x": 0.5})
    assert not agree({"n": 1}, {"n": 2}) and not agree(True, 1) and not agree(True, False)
    assert not agree([1, 2], [1, 2, 3]) and not agree({"a": 1}, {"b": 1})
    assert agree({"x": 0.6}, {"x": 0.5}, rule=Rule(tolerance=0.2))
    [p] = pairwise({"a": [(True, 1), (False, None), (True, 3)],
                    "b": [(True, 1), (True, 2), (True, 4)]})
    assert (p.agreed, p.compared, p.rate) == (1, 2, 0.5)


# -- chat ------------------------------------------------------------------------------------
EDITED = "Sort the job {title} (number {subject_id})."


def test_chat_edits_the_prompt_reruns_beside_the_previous_run_and_saves_a_version(
        dsn: str, conn: psycopg.Connection, scorer: str, fake_ollama: Any, tmp_path: Any
        ) -> None:
    fake = fake_ollama(models=models())
    editor = tmp_path / "edit.py"
    editor.write_text("import sys, pathlib\n"
                      f"pathlib.Path(sys.argv[1]).write_text({EDITED!r})\n")
    before = counts(conn)
    proc = run("chat", scorer, "--subject", "4", "--subject", "5", "--ollama-host",
               fake.base_url, dsn=dsn, env={"EDITOR": f"{sys.executable} {editor}"},
               stdin="e\ns\nq\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "run 1: actor scorer v1" in out and "run 2: actor scorer v1" in out
    assert "Classify the job {title}" in out and EDITED in out
    second = out[out.index("run 2:"):]
    assert "previous" in second and "changed" in second
    assert "saved: actor scorer is now version 2" in proc.stderr
    cur = conn.cursor(row_factory=dict_row)
    assert cur.execute("select prompt_template from turing.actors where name = 'scorer'"
                       ).fetchone()["prompt_template"] == EDITED
    assert counts(conn) == before, "runs write no ticket, call or domain row"
    # the JSON form, a rerun, and the end of the input quits
    again = run("chat", scorer, "--subject", "4", "--ollama-host", fake.base_url, "--json",
                dsn=dsn, stdin="r\n")
    assert again.returncode == 0, again.stderr
    runs = [json.loads(line) for line in again.stdout.splitlines()]
    assert [r["run"] for r in runs] == [1, 2] and runs[0]["prompt"] == EDITED
    assert runs[0]["trials"][0]["output"] == runs[1]["trials"][0]["output"]


@pytest.mark.parametrize(("args", "code", "says"), [
    (("nope",), Exit.UNKNOWN, "turing actor list"),
    (("scorer", "--subject", "nope"), Exit.UNKNOWN, "unknown subject nope"),
    (("scorer", "--model", "nosuch:1b"), Exit.UNKNOWN, "unknown model"),
    (("cat",), Exit.USAGE, "has no model or prompt"),
])
def test_chat_bad_input_is_one_sentence_with_its_exit_code(
        dsn: str, turing: Turing, scorer: str, fake_ollama: Any, args: tuple[str, ...],
        code: Exit, says: str) -> None:
    turing.register_actor(dict(name="cat", kind="script", script="cat"))
    fake = fake_ollama(models=models())
    proc = run("chat", *args, "--ollama-host", fake.base_url, dsn=dsn, stdin="q\n")
    assert proc.returncode == code, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr


def test_harness_runs_a_script_actor_through_the_script_executor(
        dsn: str, conn: psycopg.Connection, turing: Turing) -> None:
    turing.register_actor(dict(name="echo", kind="script", script="cat"))
    proc = run("harness", "echo", "--input", '{"a": 1}', "--json", dsn=dsn)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["result"] == "completed" and doc["call"] is None
    assert doc["output"]["input"] == {"a": 1} and doc["output"]["subject_id"] == "harness"
    assert conn.execute("select count(*) from turing.tickets").fetchone()[0] == 0
