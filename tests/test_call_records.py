"""Every LLM call is recorded: the rendered prompt (each distinct text once), the raw answer,
the output it parsed to when that was not saved, model, options and the counts and durations
the model server returned, written by the transaction that ends the attempt and kept as long
as the ticket's history; `turing tickets show ID` tells one attempt's whole story.

Through real runners against the bundled Ollama-compatible server, and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import psycopg
import pytest
import test_runner as rt
from conftest import wait_for
from psycopg.rows import dict_row
from test_runner import QWEN, fake_models, llm_actor

from turing_pg.db import Turing
from turing_pg.exits import Exit
from turing_pg.fake_ollama import FaultRule

TURING = [sys.executable, "-m", "turing_pg.cli"]
COUNTERS = ("load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
            "eval_duration", "total_duration")
SYSTEM = "You classify skills for the team {team}."


def run(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TURING, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TURING_DSN": dsn, "COLUMNS": "200"})


def calls(conn: psycopg.Connection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        "select c.*, p.text as prompt, s.text as system, h.status, h.output as saved, "
        "h.error from turing.calls as c join turing.prompts as p on p.prompt_id = c.prompt_id "
        "left join turing.prompts as s on s.prompt_id = c.system_prompt_id "
        "join turing.ticket_history as h using (ticket_id) order by c.ticket_id").fetchall()


def drain(turing: Turing, conn: psycopg.Connection, start_runner: Any, fake: Any,
          inputs: list[dict[str, Any]], *runner_args: str, **actor: Any) -> Any:
    """Register `classify` (with a system prompt), submit one ticket per input, run a runner
    until nothing is open."""
    turing.register_actor(llm_actor("classify", QWEN, system_prompt=SYSTEM, **actor))
    for i, values in enumerate(inputs):
        turing.submit("classify", f"s{i}", values)
    runner = start_runner("--model", QWEN, "--ollama-host", fake.base_url, *runner_args)
    wait_for(lambda: rt.open_count(conn, "classify") == 0, what="every ticket to end")
    return runner


def inputs(n: int) -> list[dict[str, Any]]:
    return [{"skill": f"skill {i}", "count": i, "team": "data"} for i in range(n)]


def test_a_completed_attempt_keeps_prompt_answer_model_options_and_the_servers_counters(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    drain(turing, conn, start_runner, fake, inputs(3), options={"temperature": 0.2})
    rows = calls(conn)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"completed"}
    for i, r in enumerate(sorted(rows, key=lambda r: r["prompt"])):
        assert r["prompt"] == f"Classify the skill skill {i} (seen {i} times)."
        assert r["system"] == "You classify skills for the team data."
        assert json.loads(r["answer"]) == r["saved"], "the raw answer is what was saved"
        assert r["output"] is None, "a saved output is the ticket's, not stored twice"
        assert r["model"] == QWEN
        assert r["options"]["temperature"] == 0.2 and "num_predict" in r["options"]
        assert r["options"]["think"] == "false"
        assert all(r[c] is not None for c in COUNTERS), r
        assert r["eval_count"] > 0 and r["prompt_eval_count"] > 0
        assert r["total_duration"] >= r["eval_duration"] > 0
    assert sum(r["eval_count"] for r in rows) == fake.stats()["models"][QWEN]["output_tokens"]


@pytest.mark.parametrize(("kind", "parsed"), [("not_json", False), ("schema_violation", True)])
def test_a_failed_attempt_keeps_the_raw_answer_that_failed(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any,
        kind: str, parsed: bool) -> None:
    fake = fake_ollama(models=fake_models(),
                       faults=[FaultRule("bad_output", kind=kind, times=1)])
    drain(turing, conn, start_runner, fake, inputs(1))
    failed, retried = calls(conn)
    assert (failed["status"], retried["status"]) == ("failed", "completed")
    assert failed["answer"], "the answer that failed is kept"
    assert failed["answer"] != retried["answer"]
    assert failed["saved"] is None
    if parsed:  # JSON against the schema: what it parsed to is kept too
        assert failed["output"] == json.loads(failed["answer"])
        assert "violates output_schema" in failed["error"]
    else:
        assert failed["output"] is None
        assert "is not JSON" in failed["error"]
    assert failed["eval_count"] > 0
    assert failed["prompt_id"] == retried["prompt_id"], "the retry sent the same prompt"


def test_an_equal_prompt_text_is_stored_once(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    same = {"skill": "sql", "count": 1, "team": "data"}
    drain(turing, conn, start_runner, fake, [same, same, same, *inputs(2)],
          "--concurrency", "4")
    rows = calls(conn)
    assert len(rows) == 5
    # 3 distinct prompts (one of them sent 3 times) and one system prompt shared by all
    assert len({r["prompt_id"] for r in rows}) == 3
    assert len({r["system_prompt_id"] for r in rows}) == 1
    assert conn.execute("select count(*) from turing.prompts").fetchone()[0] == 4


def test_the_late_call_of_a_reaped_attempt_is_not_recorded(
        turing: Turing, jobs: int, conn: psycopg.Connection) -> None:
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", max_attempts=2,
        work_query="select id as subject_id from public.jobs where status = 'new'"))
    turing.register_runner("w", ["cpu"])
    turing.submit("scorer", "1")
    [t] = turing.claim_batch("cpu", "w", 1, discover=False)
    record = {"ticket_id": t.ticket_id, "model": "m", "options": {}, "prompt": "p",
              "answer": "{}"}
    [forged] = turing.complete_batch([(t.ticket_id, uuid.uuid4(), {"a": 1})], [record])
    assert not forged.accepted
    assert conn.execute("select count(*) from turing.calls").fetchone()[0] == 0
    # the attempt ends (as reap would end it) before its answer comes: the answer and its
    # call are discarded, although the ticket is in the history now
    assert turing.fail_ticket(t.ticket_id, t.lease_token, "lease expired", kind="timed_out")
    [late] = turing.complete_batch([(t.ticket_id, t.lease_token, {"a": 1})], [record])
    assert not late.accepted
    assert conn.execute("select count(*) from turing.calls").fetchone()[0] == 0
    conn.execute("update turing.ticket_open set run_after = '-infinity'")
    [retry] = turing.claim_batch("cpu", "w", 1, discover=False)
    [ok] = turing.complete_batch([(retry.ticket_id, retry.lease_token, {"a": 1})],
                                 [{**record, "ticket_id": retry.ticket_id}])
    assert ok.accepted
    assert conn.execute("select ticket_id from turing.calls").fetchall() == [
        (retry.ticket_id,)]


def test_calls_are_pruned_with_their_tickets_and_unused_prompts_after_them(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models(),
                       faults=[FaultRule("bad_output", kind="not_json", times=1)])
    runner = drain(turing, conn, start_runner, fake, inputs(3))
    runner.stop()
    assert len(calls(conn)) == 4  # one failed attempt, three completed
    failed = conn.execute(
        "select ticket_id, prompt_id from turing.calls join turing.ticket_history "
        "using (ticket_id) where status = 'failed'").fetchone()
    # completed history expires now; the failed attempt is kept (and with it its prompts)
    conn.execute("update turing.retention set keep = '0 seconds' where status = 'completed'")
    conn.execute("update turing.retention set keep = null where status = 'failed'")
    conn.execute("select turing.prune_history()")
    left = conn.execute("select ticket_id, prompt_id from turing.calls").fetchall()
    assert left == [failed]
    kept = {r[0] for r in conn.execute("select prompt_id from turing.prompts")}
    system = conn.execute("select system_prompt_id from turing.calls").fetchone()[0]
    assert kept == {failed[1], system}, "prompts no call uses are gone, used ones stay"


def test_views_show_tokens_and_tokens_per_second_per_model_hour_and_actor(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    drain(turing, conn, start_runner, fake, inputs(4))
    cur = conn.cursor(row_factory=dict_row)
    [hour] = cur.execute("select * from turing.v_tokens_hourly").fetchall()
    totals = cur.execute(
        "select count(*) as n, sum(eval_count) as out, sum(prompt_eval_count) as inp, "
        "sum(eval_duration) as ns from turing.calls").fetchone()
    assert (hour["model"], hour["calls"], hour["output_tokens"], hour["prompt_tokens"]) == (
        QWEN, totals["n"], totals["out"], totals["inp"])
    assert float(hour["tokens_per_s"]) == pytest.approx(
        float(totals["out"]) / (float(totals["ns"]) / 1e9), rel=0.01)
    [dash] = cur.execute(
        "select tokens_per_s from turing.v_dashboard where actor = 'classify'").fetchall()
    assert float(dash["tokens_per_s"]) == pytest.approx(float(hour["tokens_per_s"]), rel=0.01)


def test_turing_tickets_show_tells_one_attempts_whole_story(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any,
        dsn: str) -> None:
    fake = fake_ollama(models=fake_models(),
                       faults=[FaultRule("bad_output", kind="schema_violation", times=1)])
    drain(turing, conn, start_runner, fake, inputs(1))
    failed, done = calls(conn)

    proc = run("tickets", "show", str(failed["ticket_id"]), "--json", dsn=dsn)
    assert proc.returncode == 0, proc.stderr
    story = json.loads(proc.stdout)
    assert (story["status"], story["retry_ticket_id"]) == ("failed", done["ticket_id"])
    assert story["input"] == {"skill": "skill 0", "count": 0, "team": "data"}
    call = story["call"]
    assert call["prompt"] == failed["prompt"] and call["system_prompt"] == failed["system"]
    assert call["answer"] == failed["answer"] and call["saved"] is False
    assert call["output"] == json.loads(failed["answer"])
    assert call["counters"] == {c: failed[c] for c in COUNTERS}
    assert call["tokens"]["output"] == failed["eval_count"] and call["tokens"]["per_s"] > 0
    assert "violates output_schema" in story["error"]
    events = [e["event"] for e in story["lease"]]
    assert events[:3] == ["created", "claimed", "started"] and events[-2:] == [
        "finished", "retried"]

    text = run("tickets", "show", str(done["ticket_id"]), dsn=dsn)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert out.startswith(f"ticket {done['ticket_id']}: actor classify (model {QWEN})")
    for expected in ("system prompt:\n  You classify skills for the team data.",
                     "prompt (sha256 ", f"  {done['prompt']}", "answer (raw):",
                     "output (saved):", f"tokens: prompt {done['prompt_eval_count']}, output "
                     f"{done['eval_count']}", "timings (ms): load ", "error: (none)",
                     "lease:", "claimed (worker ", "finished (status completed"):
        assert expected in out, (expected, out)
    # the list keeps working beside `show`
    listing = run("tickets", "--actor", "classify", "--json", dsn=dsn)
    assert listing.returncode == 0, listing.stderr
    assert len(json.loads(listing.stdout)) == 2


def test_turing_tickets_show_of_an_unknown_id_is_one_sentence(dsn: str) -> None:
    proc = run("tickets", "show", "987654321", dsn=dsn)
    assert proc.returncode == Exit.UNKNOWN
    assert "no ticket has id 987654321" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    bad = run("tickets", "show", "twelve", dsn=dsn)
    assert bad.returncode == Exit.USAGE and "Traceback" not in bad.stderr


def test_an_openai_compatible_server_reports_tokens_and_the_runners_own_call_time(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN, system_prompt=SYSTEM))
    for i, values in enumerate(inputs(2)):
        turing.submit("classify", f"s{i}", values)
    start_runner("--model", QWEN, "--backend", "openai", "--openai-base-url",
                 f"{fake.base_url}/v1")
    wait_for(lambda: rt.open_count(conn, "classify") == 0, what="every ticket to end")
    for r in calls(conn):
        assert r["prompt_eval_count"] > 0 and r["eval_count"] > 0
        assert r["total_duration"] > 0
        assert (r["load_duration"], r["prompt_eval_duration"], r["eval_duration"]) == (
            None, None, None)


def test_a_failed_answer_with_a_nul_character_is_still_recorded(
        turing: Turing, jobs: int, conn: psycopg.Connection) -> None:
    from turing_pg.backends import Answer, ChatCall
    from turing_pg.executors.llm import LlmExecutor

    turing.register_actor(llm_actor("classify", QWEN))
    turing.register_runner("w", [QWEN])
    turing.submit("classify", "1", {"skill": "sql", "count": 1})
    [t] = turing.claim_batch(QWEN, "w", 1, discover=False)
    call = ChatCall(model=QWEN, messages=[{"role": "user", "content": "p"}], schema=None,
                    options={}, think="false", keep_alive="5m")
    result = LlmExecutor.check(Answer(content="not json \x00 at all"), call, "here")
    assert result.kind == "failed" and result.call is not None
    [out] = turing.fail_batch([(t.ticket_id, t.lease_token, result.error or "", "failed", True)],
                              [result.call.as_json(t.ticket_id)])
    assert out.accepted
    assert conn.execute("select answer from turing.calls").fetchone()[0] == \
        "not json \N{REPLACEMENT CHARACTER} at all"
