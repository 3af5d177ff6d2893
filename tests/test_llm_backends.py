"""The llm kind on both model-server APIs: Ollama's and the OpenAI-compatible one (vLLM,
llama.cpp's server, LM Studio), through the official clients against the bundled server, which
answers both; and the Ollama options of an actor: think, a system prompt, the call timeout."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import psycopg
import pytest
import test_runner as rt
from conftest import wait_for
from test_runner import QWEN, SCHEMA, fake_models, llm_actor

from turing_pg.backends import ChatCall, TimedOut
from turing_pg.backends.ollama import OllamaBackend
from turing_pg.config import RunnerConfig
from turing_pg.db import Turing
from turing_pg.fake_ollama import FaultRule, ModelSpec


def settled(conn: psycopg.Connection, actor: str) -> bool:
    return rt.open_count(conn, actor) == 0 and bool(rt.history(conn, actor))


def openai_runner(start_runner: Any, fake: Any, *args: str, base_url: str | None = None) -> Any:
    return start_runner("--model", QWEN, "--backend", "openai", "--openai-base-url",
                        base_url or f"{fake.base_url}/v1", *args)


# -- the bundled server's OpenAI API ------------------------------------------------------------


def test_the_bundled_server_answers_openai_chat_completions_streamed_or_not(
        fake_ollama: Any) -> None:
    fake = fake_ollama(models=fake_models())
    client = openai.OpenAI(base_url=f"{fake.base_url}/v1", api_key="none", max_retries=0)
    assert sorted(m.id for m in client.models.list()) == ["llama3.1:8b", "qwen2.5:7b"]
    fmt = {"type": "json_schema", "json_schema": {"name": "out", "schema": SCHEMA}}
    messages = [{"role": "user", "content": "classify SQL"}]
    whole = client.chat.completions.create(model=QWEN, messages=messages, response_format=fmt,
                                           seed=7)
    answer = json.loads(whole.choices[0].message.content or "")
    assert answer["label"] in ("keep", "drop") and 0 <= answer["confidence"] <= 1
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and whole.usage.prompt_tokens > 0
    assert whole.usage.completion_tokens > 0
    stream = client.chat.completions.create(
        model=QWEN, messages=messages, response_format=fmt, seed=7, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == answer, "deterministic: the same answer streamed"
    assert [c.usage.completion_tokens for c in chunks if c.usage] == \
        [whole.usage.completion_tokens]
    cut = client.chat.completions.create(model=QWEN, messages=messages, response_format=fmt,
                                         max_tokens=2)
    assert cut.choices[0].finish_reason == "length"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope:1b", messages=messages)
    assert missing.value.body == {"message": "The model `nope:1b` does not exist.",
                                  "type": "NotFoundError", "param": None, "code": 404}
    with pytest.raises(openai.BadRequestError, match=r"json_schema\.schema"):
        client.chat.completions.create(model=QWEN, messages=messages,
                                       response_format={"type": "json_schema"})


# -- a runner with --backend openai ---------------------------------------------------------------


def test_a_runner_drains_llm_work_through_an_openai_compatible_server(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN))
    rt.submit_many(turing, "classify", 10)
    runner = openai_runner(start_runner, fake, "--concurrency", "4")
    wait_for(lambda: rt.completed(conn, "classify") == 10, what="10 completed tickets")
    for r in rt.history(conn, "classify"):
        assert r["output"]["label"] in ("keep", "drop")
    finishes = runner.events("finish")
    assert len(finishes) == 10
    assert all(f["prompt_tokens"] > 0 and f["output_tokens"] > 0 for f in finishes)
    counts = fake.stats()["models"][QWEN]
    assert counts["output_tokens"] == sum(f["output_tokens"] for f in finishes)
    [config] = runner.events("config")
    assert config["backend"] == "openai"


@pytest.mark.parametrize(("fault", "expect"), [
    (FaultRule("bad_output", kind="not_json", times=1), "is not JSON"),
    (FaultRule("bad_output", kind="schema_violation", times=1), "violates output_schema"),
    (FaultRule("http_error", status=500, message="CUDA error: illegal memory access",
               stage="after_load", times=1), "answered HTTP 500: CUDA error"),
    (FaultRule("stream_error", after_chunks=2, message="decode failed", times=1),
     "answered HTTP 500: decode failed"),
])
def test_a_bad_answer_from_an_openai_server_is_the_work_failure_and_retried(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any,
        fault: FaultRule, expect: str) -> None:
    fake = fake_ollama(models=fake_models(), faults=[fault])
    turing.register_actor(llm_actor("classify", QWEN, max_attempts=3))
    rt.submit_many(turing, "classify", 1)
    openai_runner(start_runner, fake)
    wait_for(lambda: rt.completed(conn, "classify") == 1, what="the retry to complete")
    rows = rt.history(conn, "classify")
    assert [(r["status"], r["attempt"]) for r in rows] == [("failed", 1), ("completed", 2)]
    assert expect in rows[0]["error"], rows[0]["error"]


def test_a_model_the_openai_server_lacks_is_dead_at_once_naming_what_it_serves(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=[ModelSpec(name="llama3.1:8b", family="llama")])
    turing.register_actor(llm_actor("classify", QWEN))
    rt.submit_many(turing, "classify", 1)
    openai_runner(start_runner, fake)
    wait_for(lambda: settled(conn, "classify"), what="the ticket to settle")
    [row] = rt.history(conn, "classify")
    assert row["status"] == "dead" and row["attempt"] == 1
    error = row["error"]
    assert f"the OpenAI-compatible server at {fake.base_url}/v1 does not have model" in error
    assert "it serves llama3.1:8b" in error and "ollama pull" not in error


def test_a_model_ollama_lacks_gets_the_ollama_hint(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=[ModelSpec(name="llama3.1:8b", family="llama")])
    turing.register_actor(llm_actor("classify", QWEN))
    rt.submit_many(turing, "classify", 1)
    start_runner("--model", QWEN, "--ollama-host", fake.base_url)
    wait_for(lambda: settled(conn, "classify"), what="the ticket to settle")
    [row] = rt.history(conn, "classify")
    assert row["status"] == "dead"
    assert f"Ollama at {fake.base_url} does not have model" in row["error"]
    assert f"run `ollama pull {QWEN}` there" in row["error"]


def test_an_unreachable_openai_server_charges_nothing_and_opens_the_breaker(
        turing: Turing, conn: psycopg.Connection, start_runner: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    turing.register_actor(llm_actor("classify", QWEN))
    rt.submit_many(turing, "classify", 3)
    runner = openai_runner(start_runner, None, base_url=f"http://127.0.0.1:{port}/v1")
    [opened] = runner.wait_event("breaker_open")
    assert f"127.0.0.1:{port}/v1" in json.dumps(opened)
    assert rt.history(conn, "classify") == [], "no attempt charged"
    assert rt.open_count(conn, "classify") == 3


def test_a_hanging_openai_call_times_out_locally_and_is_retried(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models(), faults=[
        FaultRule("hang", stage="before_headers", times=1)])
    turing.register_actor(llm_actor("classify", QWEN, timeout="2 seconds", lease="2 seconds"))
    rt.submit_many(turing, "classify", 1)
    openai_runner(start_runner, fake, "--reap-interval", "30")
    wait_for(lambda: rt.completed(conn, "classify") == 1, timeout=30, what="the retry")
    rows = rt.history(conn, "classify")
    assert [(r["status"], r["attempt"]) for r in rows] == [("timed_out", 1), ("completed", 2)]
    assert "(the call was cancelled)" in rows[0]["error"]


# -- think, the system prompt, the call's timeout ---------------------------------------------


def test_think_is_off_by_default_so_a_thinking_model_answers_within_num_predict(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=[ModelSpec(name=QWEN, capabilities=["completion", "thinking"])])
    turing.register_actor(llm_actor("quiet", QWEN, options={"num_predict": 25}))
    turing.register_actor(llm_actor("thinker", QWEN, options={"num_predict": 25},
                                    think=True, max_attempts=1))
    rt.submit_many(turing, "quiet", 2)
    rt.submit_many(turing, "thinker", 1, prefix="t")
    start_runner("--model", QWEN, "--ollama-host", fake.base_url)
    wait_for(lambda: rt.completed(conn, "quiet") == 2 and settled(conn, "thinker"),
             what="both actors settled")
    [thought] = rt.history(conn, "thinker")
    assert thought["status"] == "dead"
    assert "cut off at num_predict=25" in thought["error"]
    assert "the model thought first (think: true)" in thought["error"]


def test_a_bad_think_value_is_refused_at_registration(turing: Turing) -> None:
    from turing_pg.db import InvalidActor

    with pytest.raises(InvalidActor, match="field think must be false, true, low, medium or high"):
        turing.register_actor(llm_actor("x", QWEN, think="sometimes"))


def test_the_system_prompt_is_rendered_from_the_input_and_sent_first(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=[ModelSpec(name=QWEN, scripted=[
        ("You grade for team Alpha\n", '{"label": "keep", "confidence": 1}')])])
    turing.register_actor(llm_actor("graded", QWEN, system_prompt="You grade for team {team}",
                                    max_attempts=1))
    turing.submit("graded", "a", {"skill": "SQL", "count": 1, "team": "Alpha"})
    turing.submit("graded", "b", {"skill": "SQL", "count": 1})  # no team
    start_runner("--model", QWEN, "--ollama-host", fake.base_url)
    wait_for(lambda: rt.open_count(conn, "graded") == 0 and len(rt.history(conn, "graded")) == 2,
             what="both settled")
    by = {r["subject_id"]: r for r in rt.history(conn, "graded")}
    assert by["a"]["output"] == {"label": "keep", "confidence": 1}
    assert by["b"]["status"] == "dead" and "{team}" in by["b"]["error"]


def test_each_ollama_call_gets_the_time_left_on_a_reused_client(fake_ollama: Any) -> None:
    """The timeout goes through httpx's public API (a request hook), not the ollama client's
    private httpx client: a client built for a long call still gives a later call only its own
    time."""
    fake = fake_ollama(models=fake_models())
    backend = OllamaBackend(RunnerConfig(models=[QWEN], dsn="", ollama_host=fake.base_url))
    call = ChatCall(model=QWEN, messages=[{"role": "user", "content": "x"}], schema=SCHEMA,
                    options={"num_predict": 50}, think="false", keep_alive="5m")
    assert backend.chat(call, 30.0, lambda: True).content  # builds this thread's client
    fake.add_fault(FaultRule("hang", stage="before_headers", times=1))
    started = time.monotonic()
    with pytest.raises(TimedOut):
        backend.chat(call, 0.5, lambda: True)
    assert time.monotonic() - started < 3, "the call had 0.5 s, not the client's 30 s"
    fake.release_hangs()
