"""What the runner does with each kind of actor and each way a call can go wrong, and how it
schedules models: real runner processes, real HTTP, real subprocesses, real PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import wait_for
from test_runner import (
    LLAMA,
    QWEN,
    completed,
    fake_models,
    history,
    llm_actor,
    open_count,
    submit_many,
)

from turing_pg.db import Turing
from turing_pg.fake_ollama import FaultRule, ModelSpec
from turing_pg.prompt import PromptError, render, variables


def statuses(conn: psycopg.Connection, actor: str) -> list[tuple[str, int, str | None]]:
    return [(r["status"], r["attempt"], r["error"]) for r in history(conn, actor)]


def settled(conn: psycopg.Connection, actor: str) -> bool:
    return open_count(conn, actor) == 0 and bool(history(conn, actor))


# -- prompts ------------------------------------------------------------------------------------


def test_prompt_rendering_is_strict() -> None:
    tpl = 'Skill {skill} in {posting.title}; answer like {{"a": 1}} or {"b": 2}.'
    assert variables(tpl) == ["skill", "posting.title"]
    assert render(tpl, {"skill": "SQL", "posting": {"title": "DBA"}}) == \
        'Skill SQL in DBA; answer like {"a": 1} or {"b": 2}.'
    assert render("{n} {xs}", {"n": 3, "xs": [1, 2]}) == "3 [1, 2]"
    with pytest.raises(PromptError, match=r"\{skill\}.*no key 'skill'"):
        render(tpl, {"posting": {"title": "x"}})
    with pytest.raises(PromptError, match=r"\{posting.title\} is NULL"):
        render(tpl, {"skill": "x", "posting": {"title": None}})


def test_missing_prompt_variable_fails_the_ticket_and_nothing_reaches_the_model(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN))
    turing.submit("classify", "x1", {"skill": "SQL"})  # no "count"
    start_runner("--model", QWEN, "--ollama-host", fake.base_url)
    wait_for(lambda: settled(conn, "classify"), what="the ticket to settle")
    [(status, attempt, error)] = statuses(conn, "classify")
    assert status == "dead" or status == "failed"
    assert "{count}" in error and "nothing was sent to the model" in error
    assert attempt == 1, "not retried: the same input renders the same way"
    assert fake.stats()["completed"] == 0


# -- LLM faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "expect"), [
    (FaultRule("bad_output", kind="not_json", times=1), "is not JSON"),
    (FaultRule("bad_output", kind="schema_violation", times=1), "violates output_schema"),
    (FaultRule("http_error", status=500, message="CUDA error: illegal memory access",
               stage="after_load", times=1), "HTTP 500: CUDA error"),
    (FaultRule("bad_output", kind="truncated_json", times=1), "is not JSON"),
])
def test_bad_answers_fail_the_attempt_with_a_clear_error_and_are_retried(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any,
        fault: FaultRule, expect: str) -> None:
    fake = fake_ollama(models=fake_models(), faults=[fault])
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=3))
    submit_many(turing, "classify", 1)
    start_runner("--model", QWEN, "--ollama-host", fake.base_url)
    wait_for(lambda: completed(conn, "classify") == 1, what="the retry to complete")
    rows = statuses(conn, "classify")
    assert [r[:2] for r in rows] == [("failed", 1), ("completed", 2)]
    assert expect in rows[0][2] and "actor classify, model qwen2.5:7b" in rows[0][2]
    assert history(conn, "classify")[-1]["output"]["label"] in ("keep", "drop")


def test_answer_cut_off_at_num_predict_is_a_failure(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=1,
                                    options={"num_predict": 3}))
    submit_many(turing, "classify", 1)
    start_runner("--model", QWEN, "--ollama-host", fake.base_url)
    wait_for(lambda: settled(conn, "classify"), what="the ticket to settle")
    [(status, _, error)] = statuses(conn, "classify")
    assert status == "dead"
    assert "cut off at num_predict=3" in error and "done_reason=length" in error


def test_503_is_retried_by_the_runner_within_the_same_attempt(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models(),
                       faults=[FaultRule("http_error", status=503, stage="before_load", times=2,
                                         message="server busy, please try again.  maximum "
                                                 "pending requests exceeded")])
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=1))
    submit_many(turing, "classify", 1)
    runner = start_runner("--model", QWEN, "--ollama-host", fake.base_url)
    wait_for(lambda: completed(conn, "classify") == 1, what="completion after two 503s")
    assert statuses(conn, "classify")[0][:2] == ("completed", 1)
    assert [e["reason"][:8] for e in runner.events("llm_retry")] == ["HTTP 503"] * 2


def test_a_hanging_call_times_out_locally_and_is_retried(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models(), faults=[FaultRule("hang", stage="before_headers",
                                                               times=1)])
    turing.register_actor(llm_actor("classify", QWEN, timeout="2 seconds", lease="2 seconds"))
    submit_many(turing, "classify", 1)
    start_runner("--model", QWEN, "--ollama-host", fake.base_url, "--reap-interval", "30")
    wait_for(lambda: completed(conn, "classify") == 1, timeout=30, what="the retry")
    rows = statuses(conn, "classify")
    assert [r[:2] for r in rows] == [("timed_out", 1), ("completed", 2)]
    assert "timeout of 2s" in rows[0][2] and "(the call was cancelled)" in rows[0][2]


def test_unreachable_ollama_charges_nothing_and_raises_backend_down(
        turing: Turing, conn: psycopg.Connection, start_runner: Any) -> None:
    """An infrastructure fault: the tickets stay pending with no attempt charged, the breaker
    opens after a few faults and the alert names the host and the last error."""
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=1, timeout="10 seconds"))
    submit_many(turing, "classify", 6)
    runner = start_runner("--model", QWEN, "--ollama-host", "http://u:secret@127.0.0.1:9")
    runner.wait_event("breaker_open", timeout=30)
    wait_for(lambda: alerts(conn, "backend_down"), what="the backend_down alert")
    [alert] = alerts(conn, "backend_down")
    assert "127.0.0.1:9" in alert and "cannot connect" in alert and "secret" not in alert
    assert history(conn, "classify") == [], "no attempt ended"
    assert conn.execute("select count(*) from turing.ticket_open where attempt <> 1 "
                        "and status = 'pending'").fetchone()[0] == 0, "no attempt charged"
    assert open_count(conn, "classify") == 6


def test_a_runner_setting_refused_on_every_call_trips_the_breaker_naming_it(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models(),
                       faults=[FaultRule("http_error", status=400, stage="before_load",
                                         message='invalid keep_alive value "xyz"')])
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=1))
    submit_many(turing, "classify", 5)
    start_runner("--model", QWEN, "--ollama-host", fake.base_url)
    wait_for(lambda: alerts(conn, "backend_down"), what="the backend_down alert")
    [alert] = alerts(conn, "backend_down")
    assert "--keep-alive" in alert
    assert history(conn, "classify") == [] and open_count(conn, "classify") == 5


@pytest.mark.parametrize("keep_alive", ["-1", "300", "1h30m", "0.5"])
def test_every_documented_keep_alive_form_reaches_ollama_in_a_form_it_accepts(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any,
        keep_alive: str) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=1))
    submit_many(turing, "classify", 2)
    start_runner("--model", QWEN, "--ollama-host", fake.base_url, "--keep-alive", keep_alive)
    wait_for(lambda: completed(conn, "classify") == 2, what="both completed")


def test_definition_errors_are_dead_at_once_and_never_retried(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    """No retry can fix these: an output_schema that is not a JSON Schema (refused by the
    client at registration; one registered through SQL fails its tickets) and a model the
    server does not have."""
    from turing_pg.db import InvalidActor

    bad_schema = {"type": "nonsense"}
    with pytest.raises(InvalidActor, match="output_schema is not a valid JSON Schema"):
        turing.register_actor({**llm_actor("bad", QWEN), "output_schema": bad_schema})
    conn.execute("select turing.register_actor(%s::jsonb)",
                 (json.dumps({**llm_actor("bad", QWEN), "output_schema": bad_schema}),))
    turing.register_actor(llm_actor("missing", "nope:1b", max_attempts=3))
    fake = fake_ollama(models=fake_models())
    turing.submit("bad", "b1", {"skill": "x", "count": 1})
    turing.submit("missing", "m1", {"skill": "x", "count": 1})
    start_runner("--models", f"{QWEN},nope:1b", "--ollama-host", fake.base_url)
    wait_for(lambda: settled(conn, "bad") and settled(conn, "missing"), timeout=60,
             what="both settled")
    [(status, attempt, error)] = statuses(conn, "bad")
    assert (status, attempt) == ("dead", 1) and "not a valid JSON Schema" in error
    [(status, attempt, error)] = statuses(conn, "missing")
    assert (status, attempt) == ("dead", 1) and "does not have model 'nope:1b'" in error


def alerts(conn: psycopg.Connection, kind: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "select message from turing.v_alerts where alert = %s", (kind,)).fetchall()]


# -- scripts ------------------------------------------------------------------------------------


def script_actor(name: str, tmp_path: Path, body: str, **kw: Any) -> dict[str, Any]:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return dict(name=name, kind="script", script=f"python {path}",
                           timeout=kw.pop("timeout", "10 seconds"),
                           max_attempts=kw.pop("max_attempts", 1),
                           backoff_base="0 seconds", **kw)


def test_script_actor_gets_json_on_stdin_and_its_stdout_is_the_output(
        turing: Turing, conn: psycopg.Connection, start_runner: Any, tmp_path: Path) -> None:
    turing.register_actor(script_actor("upper", tmp_path, """
        import json, sys
        job = json.load(sys.stdin)
        print("working", file=sys.stderr)
        print(json.dumps({"name": job["input"]["name"].upper(), "subject": job["subject_id"]}))
    """))
    turing.submit("upper", "a", {"name": "sql"})
    turing.submit("upper", "b", {"name": "excel"})
    start_runner("--model", "cpu")
    wait_for(lambda: completed(conn, "upper") == 2, what="both completed")
    outputs = sorted((r["output"]["subject"], r["output"]["name"])
                     for r in history(conn, "upper"))
    assert outputs == [("a", "SQL"), ("b", "EXCEL")]


@pytest.mark.parametrize(("body", "expect"), [
    ("import sys\nprint('bad input: no name', file=sys.stderr)\nsys.exit(1)\n",
     "exited with status 1; stderr tail: bad input: no name"),
    ("print('hello, not json')\n", "stdout is not JSON"),
    ("print(42)\n", "produced a JSON int, not an object or array"),
])
def test_failing_scripts_fail_with_the_reason(
        turing: Turing, conn: psycopg.Connection, start_runner: Any, tmp_path: Path,
        body: str, expect: str) -> None:
    turing.register_actor(script_actor("broken", tmp_path, body))
    turing.submit("broken", "a", {})
    start_runner("--model", "cpu")
    wait_for(lambda: settled(conn, "broken"), what="the ticket to settle")
    [(status, _, error)] = statuses(conn, "broken")
    assert status == "dead"
    assert expect in error and "actor broken, script" in error


def test_script_past_its_timeout_is_killed_with_its_children(
        turing: Turing, conn: psycopg.Connection, start_runner: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    turing.register_actor(script_actor("sleepy", tmp_path, f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(120)
    """, timeout="2 seconds", lease="2 seconds"))
    turing.submit("sleepy", "a", {})
    start_runner("--model", "cpu", "--reap-interval", "30")
    wait_for(lambda: settled(conn, "sleepy"), timeout=20, what="the ticket to settle")
    [(status, _, error)] = statuses(conn, "sleepy")
    assert status == "dead" and "killed (with its process group)" in error
    child = int(pidfile.read_text())

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        # a zombie waiting for its (dead) parent's reaper counts as gone
        state = Path(f"/proc/{child}/stat").read_text().split()[2]
        return state == "Z"

    wait_for(gone, timeout=5, what="the script's child to be killed")


def test_a_script_whose_lease_is_lost_is_killed_at_once(
        turing: Turing, conn: psycopg.Connection, start_runner: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    turing.register_actor(script_actor("sleeper", tmp_path, f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        time.sleep(120)
    """, timeout="5 minutes", lease="3 seconds"))
    turing.submit("sleeper", "s", {})
    runner = start_runner("--model", "cpu")
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the script to start")
    pid = int(pid_file.read_text())
    [ticket_id] = [r[0] for r in conn.execute("select ticket_id from turing.ticket_open")]
    assert turing.cancel_ticket(ticket_id, "operator")
    cancelled = time.monotonic()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, timeout=10, what="the script to be killed")
    assert time.monotonic() - cancelled < 5, "killed within a heartbeat, not at the timeout"
    runner.wait_event("lease_lost")


# -- sql actors ---------------------------------------------------------------------------------


def test_sql_actor_runs_in_the_database_and_a_raising_function_fails_the_attempt(
        turing: Turing, conn: psycopg.Connection, start_runner: Any) -> None:
    conn.execute("""
        create function public.double_it(p_subject_id text, p_input jsonb) returns jsonb
        language plpgsql as $$
        begin
            if (p_input ->> 'n')::int < 0 then
                raise exception 'negative n for %', p_subject_id;
            end if;
            return jsonb_build_object('n2', (p_input ->> 'n')::int * 2);
        end $$;
    """)
    turing.register_actor(dict(name="doubler", kind="sql",
                                          sql_function="public.double_it", max_attempts=1))
    turing.submit("doubler", "ok", {"n": 21})
    turing.submit("doubler", "bad", {"n": -1})
    start_runner("--model", "cpu")
    wait_for(lambda: open_count(conn, "doubler") == 0 and len(history(conn, "doubler")) == 2,
             what="both settled")
    by_subject = {r["subject_id"]: r for r in history(conn, "doubler")}
    assert by_subject["ok"]["status"] == "completed" and by_subject["ok"]["output"] == {"n2": 42}
    assert by_subject["bad"]["status"] == "dead"
    assert "raised: negative n for bad" in by_subject["bad"]["error"]


def test_what_the_runner_logs_and_counts_is_what_happened(
        turing: Turing, conn: psycopg.Connection, start_runner: Any) -> None:
    """A sql ticket whose on_complete raised is logged as a failure with its reason, and the
    stop line counts it among the failed, not the completed."""
    conn.execute("""
        create function public.echo(p_subject_id text, p_input jsonb) returns jsonb
        language sql as $$ select p_input $$;
        create function public.refuse(bigint, text, jsonb, jsonb) returns void
        language plpgsql as $$ begin raise exception 'outbox table is read-only'; end $$;
    """)
    turing.register_actor(dict(name="echo", kind="sql", sql_function="public.echo",
                               on_complete="public.refuse", max_attempts=1))
    turing.submit("echo", "s1", {"n": 1})
    runner = start_runner("--model", "cpu", "--exit-when-idle", "1")
    assert runner.wait(timeout=30) == 0
    [fail] = runner.events("fail")
    assert fail["status"] == "dead" and "outbox table is read-only" in fail["error"]
    assert not runner.events("finish")
    [stopped] = runner.events("stopped")
    assert stopped.get("failed") == 1 and not stopped.get("completed")
    assert statuses(conn, "echo")[0][0] == "dead"


# -- scheduling ---------------------------------------------------------------------------------

PIPELINE_DDL = """
create table public.items (id int primary key, status text not null default 'new');
create index items_status on public.items (status);
insert into public.items (id) select g from generate_series(1, 12) as g;
create function public.set_status(p_ticket_id bigint, p_subject_id text, p_input jsonb,
                                  p_output jsonb, p_status text)
returns void language sql as $$
    update public.items set status = p_status where id = p_subject_id::int
$$;
create function public.after_a1(bigint, text, jsonb, jsonb) returns void language sql as
    $$ select public.set_status($1, $2, $3, $4, 'a1_done') $$;
create function public.after_b(bigint, text, jsonb, jsonb) returns void language sql as
    $$ select public.set_status($1, $2, $3, $4, 'b_done') $$;
create function public.after_a2(bigint, text, jsonb, jsonb) returns void language sql as
    $$ select public.set_status($1, $2, $3, $4, 'done') $$;
"""


def pipeline_actor(name: str, model: str, inbox: str, after: str) -> dict[str, Any]:
    return llm_actor(
        name, model, on_complete=after, inbox=[inbox],
        work_query=f"select id as subject_id, 'item ' || id as skill, id as count "
                   f"from public.items where status = '{inbox}'",
    )


def test_two_runners_drain_a_two_model_pipeline_in_parallel(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    conn.execute(PIPELINE_DDL)
    fake = fake_ollama(models=fake_models(decode_tok_s=20, load_s=0.0), time_scale=1.0,
                       num_parallel=2)
    turing.register_actor(pipeline_actor("a1", QWEN, "new", "public.after_a1"))
    turing.register_actor(pipeline_actor("b", LLAMA, "a1_done", "public.after_b"))
    turing.register_actor(pipeline_actor("a2", QWEN, "b_done", "public.after_a2"))
    qwen = start_runner("--model", QWEN, "--concurrency", "2", "--ollama-host", fake.base_url)
    llama = start_runner("--model", LLAMA, "--concurrency", "2", "--ollama-host",
                         fake.base_url)
    wait_for(lambda: conn.execute(
        "select count(*) from public.items where status = 'done'").fetchone()[0] == 12,
        timeout=60, what="every item through a1 -> b -> a2")
    spans = {
        r[0]: (r[1], r[2]) for r in conn.execute(
            "select a.name, min(h.started_at), max(h.finished_at) from turing.ticket_history h "
            "join turing.actors a using (actor_id) where h.status = 'completed' group by 1")
    }
    # b (llama) started while a1 (qwen) still had work: the two models ran at the same time
    assert spans["b"][0] < spans["a1"][1]
    # the qwen runner moved on from a1 to a2 by itself
    assert {e["ticket"] for e in qwen.events("finish")} >= {
        r[0] for r in conn.execute(
            "select h.ticket_id from turing.ticket_history h join turing.actors a "
            "using (actor_id) where a.name = 'a2'")}
    assert llama.events("finish")


def test_one_gpu_runner_with_two_models_loads_each_model_once(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=[ModelSpec(name=QWEN, load_s=0.5),
                               ModelSpec(name=LLAMA, family="llama", load_s=0.5)],
                       max_loaded_models=1, time_scale=0.05)
    turing.register_actor(llm_actor("on_qwen", QWEN))
    turing.register_actor(llm_actor("on_llama", LLAMA))
    submit_many(turing, "on_qwen", 20, "q")
    submit_many(turing, "on_llama", 12, "l")
    runner = start_runner("--models", f"{QWEN},{LLAMA}", "--concurrency", "4",
                          "--ollama-host", fake.base_url)
    wait_for(lambda: completed(conn, "on_qwen") + completed(conn, "on_llama") == 32,
             timeout=60, what="32 completed")
    stats = fake.stats()["models"]
    assert stats[QWEN]["loads"] == 1 and stats[LLAMA]["loads"] == 1
    assert [(e["from"], e["to"]) for e in runner.events("switch")] == [(QWEN, LLAMA)]
    # model-first: every qwen ticket finished before the first llama ticket started
    last_qwen, first_llama = conn.execute(
        "select (select max(finished_at) from turing.ticket_history h join turing.actors a "
        "using (actor_id) where a.name = 'on_qwen'), (select min(started_at) from "
        "turing.ticket_history h join turing.actors a using (actor_id) "
        "where a.name = 'on_llama')").fetchone()
    assert last_qwen <= first_llama


# -- wake-up and configuration ------------------------------------------------------------------


def test_a_domain_insert_announced_by_trigger_wakes_an_idle_runner(
        turing: Turing, conn: psycopg.Connection, start_runner: Any, tmp_path: Path) -> None:
    conn.execute("create table public.inbox (id int primary key, done boolean default false)")
    conn.execute("""
        create function public.mark_done(bigint, text, jsonb, jsonb) returns void language sql
        as $$ update public.inbox set done = true where id = $2::int $$""")
    actor = script_actor("echo", tmp_path, "import sys\nprint(sys.stdin.read())\n",
                         on_complete="public.mark_done",
                         work_query="select id as subject_id from public.inbox where not done")
    turing.register_actor(actor)
    conn.execute("create trigger inbox_announce after insert on public.inbox for each statement "
                 "execute function turing.announce_work('echo')")
    # polling alone would take 30 s: only the NOTIFY path can make this fast
    runner = start_runner("--model", "cpu", env={"TURING_POLL_INTERVAL": "30"})
    runner.wait_event("startup")
    time.sleep(1.0)  # let the first (empty) discover mark the inbox exhausted
    inserted = time.monotonic()
    conn.execute("insert into public.inbox (id) values (1)")
    wait_for(lambda: runner.events("claim"), timeout=5, interval=0.01, what="the claim")
    assert time.monotonic() - inserted < 3.0


def test_options_come_from_the_environment_and_secrets_are_masked(
        dsn: str, tmp_path: Path, turing: Turing) -> None:
    turing.register_actor(llm_actor("classify", QWEN))
    with_password = dsn.replace("postgresql://postgres@", "postgresql://postgres:s3cret@") \
        if "postgres@" in dsn else dsn + " password=s3cret"
    env = {**os.environ, "TURING_MODEL": QWEN, "TURING_CONCURRENCY": "3",
           "TURING_DSN": with_password, "TURING_EXIT_WHEN_IDLE": "0.5",
           "TURING_OLLAMA_HOST": "http://127.0.0.1:9", "TURING_LOG_FORMAT": "json"}
    out = subprocess.run([sys.executable, "-m", "turing_pg.cli.runner"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert '"concurrency": 3' in out.stderr and '"event": "idle_exit"' in out.stderr
    assert "s3cret" not in out.stderr and "***" in out.stderr


def test_unknown_model_is_refused_with_the_known_ones(dsn: str, turing: Turing) -> None:
    turing.register_actor(llm_actor("classify", QWEN))
    out = subprocess.run(
        [sys.executable, "-m", "turing_pg.cli.runner", "--model", "nope:1b", "--dsn", dsn],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 4
    assert 'unknown model(s): nope:1b' in out.stderr and QWEN in out.stderr


def test_sigterm_while_idle_exits_zero_and_marks_the_runner_stopped(
        turing: Turing, conn: psycopg.Connection, start_runner: Any) -> None:
    turing.register_actor(llm_actor("classify", QWEN))
    runner = start_runner("--model", QWEN)
    runner.wait_event("startup")
    runner.signal(signal.SIGTERM)
    assert runner.wait(timeout=20) == 0
    assert conn.execute("select status from turing.runners").fetchone()[0] == "stopped"


def test_sigterm_while_waiting_for_an_unreachable_database_exits_zero(start_runner: Any) -> None:
    """A runner waits for its database instead of giving up (there is no exit 7 for it); being
    stopped while it waits is an ordinary stop."""
    runner = start_runner("--model", QWEN,
                          "--dsn", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    runner.wait_event("db_unavailable")
    runner.signal(signal.SIGTERM)
    assert runner.wait(timeout=20) == 0


def test_two_gpus_serving_the_same_models_start_on_different_ones(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    # why: slow enough that the first GPU cannot drain its model (16 calls, 4 at a time) before
    # the second one has started, however loaded the machine is; otherwise the second one
    # rightly finds only the other model's work and the test proves nothing.
    gpus = [fake_ollama(models=fake_models(load_s=0.5), max_loaded_models=1, time_scale=0.5)
            for _ in range(2)]
    turing.register_actor(llm_actor("on_qwen", QWEN))
    turing.register_actor(llm_actor("on_llama", LLAMA))
    submit_many(turing, "on_qwen", 16, "q")
    submit_many(turing, "on_llama", 16, "l")
    runners = [start_runner("--models", f"{QWEN},{LLAMA}", "--ollama-host", gpu.base_url)
               for gpu in gpus]
    firsts = {r.wait_event("claim")[0]["model"] for r in runners}
    assert firsts == {QWEN, LLAMA}, "the second GPU took the model nobody served"
    wait_for(lambda: completed(conn, "on_qwen") + completed(conn, "on_llama") == 32,
             timeout=60, what="32 completed")


def test_two_idle_gpus_choose_apart_when_work_appears(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    """Both runners are up and idle (on the first model listed) before any work exists; work
    for both models then appears in one commit. Each GPU must take a different model."""
    gpus = [fake_ollama(models=fake_models(load_s=0.5), max_loaded_models=1, time_scale=0.05)
            for _ in range(2)]
    turing.register_actor(llm_actor("on_qwen", QWEN))
    turing.register_actor(llm_actor("on_llama", LLAMA))
    runners = [start_runner("--models", f"{QWEN},{LLAMA}", "--ollama-host", gpu.base_url,
                            "--poll-interval", "0.2")
               for gpu in gpus]
    for r in runners:
        r.wait_event("startup")
    time.sleep(0.6)  # a few idle polls each: both runners now sit on the first model listed
    with conn.transaction():
        for i in range(16):
            for actor, prefix in (("on_qwen", "q"), ("on_llama", "l")):
                conn.execute("select turing.submit(%s, %s, %s::jsonb)",
                             (actor, f"{prefix}{i}", '{"skill": "x", "count": 1}'))
    firsts = {r.wait_event("claim")[0]["model"] for r in runners}
    assert firsts == {QWEN, LLAMA}, "both idle GPUs took the same model"
    wait_for(lambda: completed(conn, "on_qwen") + completed(conn, "on_llama") == 32,
             timeout=60, what="32 completed")
