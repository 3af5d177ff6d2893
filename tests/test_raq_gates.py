"""Stages with gates (RAQ): a new actor version starts in develop; production runners run only
production versions (the last promoted one while a newer one climbs); `turing actor promote`
checks the evidence of each gate for the current version (a raq run at or above raq_threshold
to leave stabilize, a passing QA sample to leave qa) and refuses with what is missing; `turing
raq` runs the same recorded inputs several times through the ticket machinery without
on_complete; `turing qa` asks a person about a sample at the terminal. All through the real CLI,
real runner subprocesses and the bundled Ollama-compatible server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import psycopg
from conftest import wait_for
from test_runner import LLAMA, QWEN, fake_models, llm_actor, submit_many

from turing_pg.db import Turing
from turing_pg.exits import Exit
from turing_pg.fake_ollama.config import FaultRule

TURING = [sys.executable, "-m", "turing_pg.cli"]


def run(*args: str, dsn: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TURING, *args], capture_output=True, text=True, timeout=180,
                          input=stdin, env={**os.environ, "TURING_DSN": dsn, "COLUMNS": "200"})


def one(conn: psycopg.Connection, query: str, *params: Any) -> Any:
    return conn.execute(query, params).fetchone()[0]


def stage(dsn: str, actor: str) -> list[tuple[int, str, bool, bool]]:
    res = run("actor", "stage", actor, "--json", dsn=dsn)
    assert res.returncode == 0, res.stderr
    return [(r["version"], r["stage"], r["is_current"], r["in_production"])
            for r in json.loads(res.stdout)]


def logged_actor(conn: psycopg.Connection) -> None:
    """An on_complete that leaves a trace: raq tickets must never run it."""
    conn.execute("create table public.done_log (ticket_id bigint, subject_id text)")
    conn.execute("""
        create function public.log_done(bigint, text, jsonb, jsonb) returns void language sql
        as $$ insert into public.done_log values ($1, $2) $$""")


def ordinary_completed(conn: psycopg.Connection, actor: str) -> list[tuple[str, int]]:
    return conn.execute(
        "select h.subject_id, h.actor_version from turing.ticket_history as h "
        "join turing.actors as a using (actor_id) where a.name = %s and h.status = 'completed' "
        "and h.raq_run_id is null order by h.ticket_id", (actor,)).fetchall()


def test_an_actor_climbs_from_develop_to_production_through_every_gate(
        dsn: str, turing: Turing, conn: psycopg.Connection, fake_ollama: Any,
        start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    logged_actor(conn)
    turing.register_actor(llm_actor("classify", QWEN, on_complete="public.log_done",
                                    outbox=["classified"]))
    # a next step reading classify's outbox: an ordinary completion hands its subject on
    turing.register_actor(dict(name="reviewer", kind="script", script="cat",
                               inbox=["classified"]))
    submit_many(turing, "classify", 20)
    assert stage(dsn, "classify") == [(1, "develop", True, False)]

    # a production runner leaves a develop actor alone, and says why, once
    runner = start_runner("--model", QWEN, "--ollama-host", fake.base_url,
                          env={"TURING_STAGE": "production"})
    [said] = runner.wait_event("held_back")
    assert said["actor"] == "classify" and said["stage"] == "develop"
    assert "turing actor promote classify" in said["message"]
    assert "--stage develop" in said["message"]
    time.sleep(1.0)
    assert ordinary_completed(conn, "classify") == []
    assert len(runner.events("held_back")) == 1

    assert run("actor", "promote", "classify", dsn=dsn).returncode == 0  # -> stabilize
    refused = run("actor", "promote", "classify", dsn=dsn)
    assert refused.returncode == Exit.REFUSED
    assert "cannot leave stabilize: no raq run of this version" in refused.stderr
    assert "Traceback" not in refused.stderr

    # bad raq input: one sentence, the documented exit code
    too_many = run("raq", "classify", "--n", "50", dsn=dsn)
    assert too_many.returncode == Exit.REFUSED
    assert "has 20 inputs to sample" in too_many.stderr and "--n 20" in too_many.stderr
    assert run("raq", "nosuch", dsn=dsn).returncode == Exit.UNKNOWN
    no_model = run("raq", "classify", "--model", "nosuch:1b", dsn=dsn)
    assert no_model.returncode == Exit.UNKNOWN and "nosuch:1b" in no_model.stderr

    # the production runner runs the raq tickets (any stage), without on_complete
    started = time.monotonic()
    res = run("raq", "classify", "--n", "20", "--runs", "3", "--json", dsn=dsn)
    took = time.monotonic() - started
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["passed"] is True and result["agreement"] == 1.0
    assert result["failure_rate"] == 0.0 and result["p95_ms"] >= result["p50_ms"] > 0
    assert {f["field"]: f["compared_as"] for f in result["fields"]} == {
        "label": "exact", "confidence": "number"}
    assert took < 30, f"a raq run of 3 x 20 took {took:.1f} s"
    print(f"raq 3 x 20 on the bundled server: {took:.1f} s (command {result['seconds']} s)")
    assert one(conn, "select count(*) from public.done_log") == 0
    assert one(conn, "select count(*) from turing.hand_offs") == 0
    assert one(conn, "select count(*) from turing.ticket_history where raq_run_id is not null "
                     "and status = 'completed' and actor_version = 1") == 60
    assert one(conn, "select count(*) from turing.raq_fields") == 2
    assert ordinary_completed(conn, "classify") == []

    assert run("actor", "promote", "classify", dsn=dsn).returncode == 0  # -> prove
    assert run("actor", "promote", "classify", dsn=dsn).returncode == 0  # -> qa
    refused = run("actor", "promote", "classify", dsn=dsn)
    assert refused.returncode == Exit.REFUSED
    assert "cannot leave qa: 0 decided QA reviews of this version, 20 needed" in refused.stderr

    # a person reviews 20 answers; an answer that is not one of the choices is asked again
    answers = "maybe\n" + "r\nlooks fine\n" + "r\n\n" * 19
    qa = run("qa", "classify", "--sample", "20", dsn=dsn, stdin=answers)
    assert qa.returncode == 0, qa.stderr
    assert "'maybe' is not an answer: write r (right), w (wrong) or u (unsure)" in qa.stdout
    assert "instructions (prompt template):\nClassify the skill" in qa.stdout
    assert "20 right, 0 wrong, 0 unsure; pass rate 1.000 (Wilson 95 % 0.839 .. 1.000)" \
        in qa.stdout
    assert one(conn, "select count(*) from turing.qa_reviews where note = 'looks fine'") == 1

    assert run("actor", "promote", "classify", "--to", "bogus", dsn=dsn).returncode == Exit.USAGE
    promoted = run("actor", "promote", "classify", "--note", "ready", "--json", dsn=dsn)
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["to_stage"] == "production"
    evidence = conn.execute(
        "select evidence from turing.promotions where to_stage = 'production'").fetchone()[0]
    assert evidence["qa"]["right_n"] == 20 and "raq" not in evidence
    assert conn.execute("select evidence -> 'raq' ->> 'agreement' from turing.promotions "
                        "where to_stage = 'prove'").fetchone()[0] == "1"
    assert stage(dsn, "classify") == [(1, "production", True, True)]

    # now the production runner runs it, on_complete included
    wait_for(lambda: len(ordinary_completed(conn, "classify")) == 20, timeout=30,
             what="20 ordinary completions")
    assert one(conn, "select count(*) from public.done_log") == 20
    assert one(conn, "select count(*) from turing.hand_offs") == 20


def test_production_runs_the_last_promoted_version_while_a_new_one_climbs(
        dsn: str, turing: Turing, conn: psycopg.Connection, fake_ollama: Any,
        start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN, qa_sample=1, qa_lower_bound=0))
    submit_many(turing, "classify", 2, prefix="a")
    prod = start_runner("--model", QWEN, "--ollama-host", fake.base_url,
                        env={"TURING_STAGE": "production"})
    assert run("actor", "promote", "classify", dsn=dsn).returncode == 0
    assert run("raq", "classify", "--n", "2", "--runs", "2", dsn=dsn).returncode == 0
    assert run("qa", "classify", "--sample", "1", dsn=dsn, stdin="r\n\n").returncode == 0
    res = run("actor", "promote", "classify", "--to", "production", dsn=dsn)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: len(ordinary_completed(conn, "classify")) == 2, what="version 1 runs")

    turing.set_actor("classify", {"prompt_template": "Version two: {skill} ({count})."})
    assert stage(dsn, "classify") == [(1, "production", False, True), (2, "develop", True, False)]
    submit_many(turing, "classify", 3, prefix="b")
    wait_for(lambda: len(ordinary_completed(conn, "classify")) == 5, what="b runs as version 1")
    assert [v for s, v in ordinary_completed(conn, "classify")] == [1, 1, 1, 1, 1]
    # the prompt sent was version 1's: the definition matches the version number recorded
    prompts = conn.execute(
        "select p.text from turing.calls as c join turing.prompts as p using (prompt_id) "
        "join turing.ticket_history as h using (ticket_id) where h.subject_id like 'b%'"
    ).fetchall()
    assert len(prompts) == 3 and all(p.startswith("Classify the skill") for (p,) in prompts)
    prod.stop()

    # a developer's runner runs the current version
    dev = start_runner("--model", QWEN, "--ollama-host", fake.base_url,
                       env={"TURING_STAGE": "develop"})
    submit_many(turing, "classify", 1, prefix="c")
    wait_for(lambda: len(ordinary_completed(conn, "classify")) == 6, what="c runs as version 2")
    assert ordinary_completed(conn, "classify")[-1] == ("c0", 2)
    assert one(conn, "select p.text from turing.calls as c join turing.prompts as p "
                     "using (prompt_id) join turing.ticket_history as h using (ticket_id) "
                     "where h.subject_id = 'c0'").startswith("Version two")
    dev.stop()

    # demoting the production version leaves production nothing to run
    res = run("actor", "demote", "classify", "--to", "develop", dsn=dsn)
    assert res.returncode == Exit.REFUSED  # the current version (2) is at develop already
    assert "demote moves it down" in res.stderr


def test_a_failing_raq_run_keeps_the_gate_shut(
        dsn: str, turing: Turing, conn: psycopg.Connection, fake_ollama: Any,
        start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=1))
    submit_many(turing, "classify", 4)
    start_runner("--model", QWEN, "--ollama-host", fake.base_url)  # the fixture's: develop
    wait_for(lambda: len(ordinary_completed(conn, "classify")) == 4, what="4 completions")
    # the fake server answers with text that is not JSON for 6 calls: those answers fail
    fake.add_fault(FaultRule(action="bad_output", kind="not_json", times=6))
    assert run("actor", "promote", "classify", dsn=dsn).returncode == 0
    res = run("raq", "classify", "--n", "4", "--runs", "3", "--json", dsn=dsn)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["passed"] is False and result["failure_rate"] == 0.5
    refused = run("actor", "promote", "classify", dsn=dsn)
    assert refused.returncode == Exit.REFUSED
    assert "below the threshold 0.9" in refused.stderr


def test_a_taxonomy_actor_goes_from_develop_to_production_in_the_running_pipeline(
        dsn: str, turing: Turing, conn: psycopg.Connection, fake_ollama: Any,
        start_runner: Any) -> None:
    from turing_pg.actors.taxonomy import loader

    fake = fake_ollama(models=fake_models())
    actors = loader.load_pipeline(turing, conn, limit=30)
    assert "classify_qwen" in actors
    # scripts and SQL on a developer's runner; the GPU runner is a production one
    start_runner("--model", "cpu", "--concurrency", "4")
    gpu = start_runner("--model", QWEN, "--ollama-host", fake.base_url,
                       env={"TURING_STAGE": "production"})
    said = gpu.wait_event("held_back", timeout=60, count=1)
    wait_for(lambda: any(e["actor"] == "classify_qwen" for e in gpu.events("held_back")),
             timeout=60, what="the runner to say classify_qwen is held back")
    assert any("stage develop" in e["message"] for e in said)

    def pending() -> int:
        return one(conn, "select count(*) from turing.tickets where actor = 'classify_qwen' "
                         "and status = 'pending'")
    wait_for(lambda: pending() >= 3, timeout=60, what="classify_qwen's inbox")
    n = str(min(pending(), 5))
    # the raq run's 3 x n answers are the version's too: a person reviews them all (with 15
    # right of 15 the Wilson lower bound is 0.80; 5 of 5 would stay below 0.65)
    reviews = 3 * int(n)
    assert run("actor", "set", "classify_qwen", f"qa_sample={reviews}",
               dsn=dsn).returncode == 0
    assert run("actor", "promote", "classify_qwen", dsn=dsn).returncode == 0
    res = run("raq", "classify_qwen", "--n", n, "--runs", "3", "--json", dsn=dsn)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["passed"] is True
    assert run("actor", "promote", "classify_qwen", "--to", "qa", dsn=dsn).returncode == 0
    qa = run("qa", "classify_qwen", "--sample", str(reviews), dsn=dsn, stdin="r\n\n" * reviews)
    assert qa.returncode == 0, qa.stderr
    res = run("actor", "promote", "classify_qwen", "--note", "demo", dsn=dsn)
    assert res.returncode == 0, res.stderr
    assert "qa -> production" in res.stdout
    # the production runner now classifies the pipeline's entities, on_complete and all
    wait_for(lambda: one(conn, "select count(*) from turing.ticket_history as h join "
                               "turing.actors as a using (actor_id) where a.name = "
                               "'classify_qwen' and h.raq_run_id is null and h.status = "
                               "'completed'") >= int(n), timeout=60,
             what="classify_qwen running in production")
    assert [s for _, s, *_ in stage(dsn, "classify_qwen")] == ["production"]


def test_actors_in_use_before_stages_are_grandfathered_into_production(empty_dsn: str) -> None:
    """An upgrade makes the actors it finds production (their current version, or the first
    version maintain gives an actor that had none), so their runners go on as before (a new
    actor starts in develop: the tests above)."""
    from turing_pg import schema

    schema.upgrade(empty_dsn, up_to=25, reapply=False)
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        c.execute("insert into turing.actors (name, kind, model, script) values "
                  "('unversioned', 'script', 'cpu', 'cat'), ('versioned', 'script', 'cpu', 'cat')")
        c.execute("insert into turing.actor_versions (actor_id, version, hash, definition) "
                  "select actor_id, 1, 'h', '{}' from turing.actors where name = 'versioned'")
        c.execute("update turing.actors set version = 1 where name = 'versioned'")
    schema.upgrade(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        c.execute("select turing.maintain()")
        t = Turing(empty_dsn)
        try:
            for name in ("unversioned", "versioned"):
                row = t.actor_stages(name)[0]
                assert (row["version"], row["stage"], row["in_production"]) == (
                    1, "production", True), name
                assert row["evidence"] == {"grandfathered": True}
            # (the hand-made hash of "versioned" is not its real one: maintain made version 2,
            # in develop, while production goes on with version 1)
            assert [(r["version"], r["stage"]) for r in t.actor_stages("versioned")] == [
                (1, "production"), (2, "develop")]
        finally:
            t.close()
        assert c.execute("select count(*) from turing.stage_grandfathered").fetchone()[0] == 0


def test_a_production_runner_sees_no_ready_work_of_a_develop_actor(
        turing: Turing, conn: psycopg.Connection) -> None:
    """model_backlog counts as ready what the runner's claim would take, so a multi-model GPU
    runner never loads a model whose only work its stage leaves alone."""
    turing.register_actor(llm_actor("classify", QWEN))
    submit_many(turing, "classify", 3)
    [prod] = turing.model_backlog([QWEN], stage="production")
    [dev] = turing.model_backlog([QWEN], stage="develop")
    assert (prod["pending"], prod["ready"]) == (3, 0)
    assert (dev["pending"], dev["ready"]) == (3, 3)
    assert turing.claim_batch(QWEN, "w", 10, stage="production") == []
    assert [r["actor"] for r in turing.held_back(QWEN, "production")] == ["classify"]
    assert turing.held_back(QWEN, "develop") == []


def test_raq_on_another_model_runs_the_same_sample_there(
        dsn: str, turing: Turing, conn: psycopg.Connection, fake_ollama: Any,
        start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN))
    turing.register_actor(llm_actor("other", LLAMA))  # a model some actor uses
    submit_many(turing, "classify", 3)
    start_runner("--model", LLAMA, "--ollama-host", fake.base_url,
                 env={"TURING_STAGE": "production"})
    res = run("raq", "classify", "--n", "3", "--runs", "2", "--model", LLAMA, "--json",
              dsn=dsn)
    assert res.returncode == 0, res.stderr
    run_id = json.loads(res.stdout)["raq_run_id"]
    assert conn.execute("select model, version from turing.raq_runs where raq_run_id = %s",
                        (run_id,)).fetchone() == (LLAMA, 1)
    # the calls went to the other model, and the sample is the one recorded for classify
    assert {m for (m,) in conn.execute(
        "select c.model from turing.calls as c join turing.ticket_history as h "
        "using (ticket_id) where h.raq_run_id = %s", (run_id,))} == {LLAMA}
    sample = conn.execute("select subject_id from turing.raq_samples order by item").fetchall()
    again = run("raq", "classify", "--n", "3", "--runs", "2", "--model", LLAMA, dsn=dsn)
    assert again.returncode == 0, again.stderr
    assert conn.execute("select subject_id from turing.raq_samples order by item"
                        ).fetchall() == sample
    # the actor's own tickets stay pending: a production runner of its model is not up
    assert one(conn, "select count(*) from turing.ticket_open as o join turing.actors as a "
                     "using (actor_id) where a.name = 'classify' and o.raq_run_id is null "
                     "and o.status = 'pending'") == 3
