"""Tests of the fake Ollama server through the real ``ollama`` client and raw HTTP.

Every test starts its own server (time_scale 0.01: 1 simulated second = 10 ms) and stops it.
No database, no GPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, Literal

import httpx
import jsonschema
import ollama
import pytest
from pydantic import BaseModel, Field

from turing_pg.fake_ollama import (
    BUSY_MESSAGE,
    FakeConfig,
    FakeOllama,
    FaultRule,
    ModelSpec,
    parse_go_duration,
    parse_keep_alive,
)

QWEN = "qwen2.5:7b"
LLAMA = "llama3.1:8b"
SCALE = 0.01
USER = [{"role": "user", "content": "Summarise the quarterly report."}]


def models(**overrides: Any) -> list[ModelSpec]:
    return [
        ModelSpec(name=QWEN, load_s=3.0, **overrides),
        ModelSpec(name=LLAMA, load_s=2.0, family="llama", **overrides),
    ]


@pytest.fixture
def start_fake() -> Iterator[Callable[..., FakeOllama]]:
    """Factory: start_fake(**FakeConfig fields) -> running server; all stopped at teardown."""
    started: list[FakeOllama] = []

    def factory(**kwargs: Any) -> FakeOllama:
        kwargs.setdefault("time_scale", SCALE)
        kwargs.setdefault("models", models())
        fake = FakeOllama(FakeConfig(**kwargs)).start()
        started.append(fake)
        return fake

    yield factory
    for fake in started:
        fake.stop()


_OPEN_CLIENTS: list[ollama.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


def client(fake: FakeOllama | str, read: float = 10.0) -> ollama.Client:
    """A sync client (closed after the test) with a finite timeout, as the runner will use."""
    host = fake if isinstance(fake, str) else fake.base_url
    c = ollama.Client(host=host, timeout=httpx.Timeout(10.0, read=read))
    _OPEN_CLIENTS.append(c)
    return c


def aclient(fake: FakeOllama) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=fake.base_url, timeout=10)


def model_stats(fake: FakeOllama, name: str = QWEN) -> dict[str, Any]:
    return fake.stats()["models"][name]


def wait_until(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


# --- protocol basics ----------------------------------------------------------------------------


def test_info_endpoints(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake(version="0.9.9")
    c = client(fake)
    root = httpx.get(fake.base_url + "/")
    assert root.status_code == 200 and root.text == "Ollama is running"
    assert httpx.head(fake.base_url + "/").status_code == 200
    assert httpx.get(fake.base_url + "/api/version").json() == {"version": "0.9.9"}
    assert {m.model for m in c.list().models} == {QWEN, LLAMA}
    shown = c.show(QWEN)
    assert shown.modelinfo is not None and shown.modelinfo["general.architecture"] == "qwen2"
    assert shown.capabilities == ["completion", "tools"]
    with pytest.raises(ollama.ResponseError) as err:
        c.show("nope:1b")
    assert err.value.status_code == 404 and err.value.error == "model 'nope:1b' not found"
    with pytest.raises(ollama.ResponseError) as err:
        c.chat("nope:1b", messages=USER)
    assert err.value.status_code == 404
    missing = httpx.get(fake.base_url + "/api/nothing")
    assert missing.status_code == 404 and missing.text == "404 page not found"
    assert httpx.get(fake.base_url + "/api/chat").status_code == 405
    empty = httpx.post(fake.base_url + "/api/generate", content=b"")
    assert empty.status_code == 400 and empty.json() == {"error": "missing request body"}
    assert c.ps().models == []


def test_raw_stream_wire_format(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    body = {"model": QWEN, "messages": USER, "stream": True}
    with httpx.Client(base_url=fake.base_url) as http:
        with http.stream("POST", "/api/chat", json=body) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/x-ndjson"
            assert r.headers["transfer-encoding"] == "chunked"
            assert r.headers["x-turing-simulated"] == "1"
            lines = list(r.iter_lines())
        # keep-alive: the same connection serves a second, non-streaming request
        again = http.post("/api/chat", json={**body, "stream": False})
    assert all(line.strip() for line in lines), "never a blank line in a stream"
    parts = [json.loads(line) for line in lines]
    *chunks, final = parts
    for chunk in chunks:
        assert chunk["done"] is False and chunk["message"]["role"] == "assistant"
        assert "done_reason" not in chunk and "eval_count" not in chunk  # omitted, not null
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["message"]["content"] == ""
    for key in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration"):
        assert isinstance(final[key], int)
    assert final["eval_count"] == len(chunks)
    text = "".join(c["message"]["content"] for c in chunks)
    assert text.startswith("[simulated] ")
    assert again.json()["message"]["content"] == text  # stream and buffered agree
    assert again.headers["content-type"] == "application/json; charset=utf-8"


def test_chat_and_generate_through_client(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    chat = c.chat(QWEN, messages=USER)
    assert chat.done and chat.done_reason == "stop"
    assert chat.message.content.startswith("[simulated] ")
    assert chat.load_duration is not None and chat.load_duration >= 0.03 * 1e9  # 3 s x 0.01
    gen = c.generate(QWEN, "Write a haiku")
    assert gen.response.startswith("[simulated] ") and gen.context
    streamed = list(c.generate(QWEN, "Write a haiku", stream=True))
    assert "".join(p.response for p in streamed) == gen.response
    assert streamed[-1].done_reason == "stop" and streamed[-1].context == gen.context


def test_async_client_streams(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()

    async def run() -> tuple[str, str]:
        async with aclient(fake) as ac:
            parts = [p async for p in await ac.chat(QWEN, messages=USER, stream=True)]
            whole = await ac.chat(QWEN, messages=USER)
        return "".join(p.message.content for p in parts), whole.message.content

    streamed, whole = asyncio.run(run())
    assert streamed == whole


def test_deterministic_outputs(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    a = c.chat(QWEN, messages=USER, options={"temperature": 0.9})
    b = c.chat(QWEN, messages=USER, options={"temperature": 0.1})  # temperature is ignored
    assert a.message.content == b.message.content
    other_seed = c.chat(QWEN, messages=USER, options={"seed": 7})
    other_prompt = c.chat(QWEN, messages=[{"role": "user", "content": "Something else"}])
    assert other_seed.message.content != a.message.content
    assert other_prompt.message.content != a.message.content
    # a second server instance produces the same text: outputs depend only on the request
    fake2 = start_fake()
    assert client(fake2).chat(QWEN, messages=USER).message.content == a.message.content


# --- structured outputs ----------------------------------------------------------------------


class Address(BaseModel):
    street: str = Field(min_length=3, max_length=40)
    zip_code: str | None = None


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    score: float = Field(gt=0, lt=1)
    label: Literal["yes", "no", "maybe"]
    tags: list[str] = Field(min_length=1, max_length=3)
    home: Address
    previous: list[Address] = []
    nickname: str | None = None
    active: bool


HANDWRITTEN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "point": {
            "type": "array",
            "prefixItems": [{"type": "number"}, {"type": "number"}],
            "items": False,
        },
        "shape": {
            "oneOf": [
                {"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "integer", "minimum": 1}}, "required": ["kind", "r"], "additionalProperties": False},  # noqa: E501
                {"type": "object", "properties": {"kind": {"const": "dot"}, "at": {"$ref": "#/$defs/point"}}, "required": ["kind", "at"], "additionalProperties": False},  # noqa: E501
            ]
        },
    },
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "when": {"type": "string", "format": "date-time"},
        "count": {"type": "integer", "minimum": 10, "maximum": 12},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
        "step": {"type": "integer", "multipleOf": 5, "minimum": 1, "maximum": 40},
        "flag": {"type": ["boolean", "null"]},
        "nothing": {"type": "null"},
        "shapes": {"type": "array", "items": {"$ref": "#/$defs/shape"}, "minItems": 2, "maxItems": 4},  # noqa: E501
        "merged": {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"b": {"enum": [1, "two", None]}}, "required": ["b"]}]},  # noqa: E501
        "either": {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "integer"}]},
        "short": {"type": "string", "minLength": 2, "maxLength": 3},
        "uniq": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "uniqueItems": True, "minItems": 2},  # noqa: E501
    },
    "required": ["id", "when", "count", "ratio", "step", "flag", "nothing", "shapes", "merged", "either", "short", "uniq"],  # noqa: E501
    "additionalProperties": False,
}  # fmt: skip


@pytest.mark.parametrize(
    "schema",
    [
        Person.model_json_schema(),
        HANDWRITTEN_SCHEMA,
        {"type": "array", "items": {"type": "integer"}},
    ],
    ids=["pydantic", "handwritten", "array-root"],
)
def test_structured_output_conforms(start_fake: Callable[..., FakeOllama], schema: dict) -> None:
    fake = start_fake()
    c = client(fake)
    validator = jsonschema.Draft202012Validator(schema)
    seen = set()
    for i in range(25):
        msgs = [{"role": "user", "content": f"record {i}"}]
        content = c.chat(
            QWEN, messages=msgs, format=schema, options={"temperature": 0}
        ).message.content
        validator.validate(json.loads(content))
        seen.add(content)
    assert len(seen) > 10  # varied, not one canned answer
    if schema is not HANDWRITTEN_SCHEMA:
        return
    streamed = list(c.generate(QWEN, "record 0", format=schema, stream=True))
    validator.validate(json.loads("".join(p.response for p in streamed)))


def test_pydantic_round_trip_and_json_mode(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    r = c.chat(QWEN, messages=USER, format=Person.model_json_schema())
    person = Person.model_validate_json(r.message.content)
    assert person.label in ("yes", "no", "maybe")
    r = c.generate(QWEN, "give json", format="json")
    assert r.headers if hasattr(r, "headers") else True
    value = json.loads(r.response)
    assert isinstance(value, dict) and value["answer"].startswith("[simulated]")
    with pytest.raises(ollama.ResponseError) as err:
        httpx_post(fake, "/api/generate", {"model": QWEN, "prompt": "x", "format": "yaml"})
    assert err.value.status_code == 500 and err.value.error.startswith("invalid format:")


def httpx_post(fake: FakeOllama, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Raw POST (stream false) that raises ResponseError like the client does."""
    r = httpx.post(fake.base_url + path, json={"stream": False, **body}, timeout=10)
    if r.status_code >= 400:
        raise ollama.ResponseError(r.text, r.status_code)
    return r.json()


def test_num_predict_truncates_json(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    schema = Person.model_json_schema()
    r = c.chat(QWEN, messages=USER, format=schema, options={"num_predict": 5})
    assert r.done_reason == "length" and r.eval_count == 5
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.message.content)
    full = c.chat(QWEN, messages=USER, format=schema)
    assert full.done_reason == "stop" and full.message.content.startswith(r.message.content)
    text = c.generate(QWEN, "story", options={"num_predict": 3})
    assert text.done_reason == "length" and text.eval_count == 3
    stopped = c.generate(QWEN, "story", options={"stop": [" "]})
    assert stopped.response == "[simulated]" and stopped.done_reason == "stop"


def test_scripted_and_thinking_models(start_fake: Callable[..., FakeOllama]) -> None:
    thinker = ModelSpec(name="qwen3:8b", load_s=1.0, capabilities=["completion", "thinking"])
    scripted = ModelSpec(name="tiny:1b", load_s=1.0, scripted=[(r"capital of France", "Paris")])
    fake = start_fake(models=[thinker, scripted])
    c = client(fake)
    assert c.generate("tiny:1b", "What is the capital of France?").response == "Paris"
    r = c.chat("qwen3:8b", messages=USER)
    assert r.message.thinking and r.message.content.startswith("[simulated] ")
    assert not c.chat("qwen3:8b", messages=USER, think=False).message.thinking
    with pytest.raises(ollama.ResponseError) as err:
        c.chat("tiny:1b", messages=USER, think=True)
    assert err.value.status_code == 400 and "does not support thinking" in err.value.error


# --- scheduler ---------------------------------------------------------------------------------


def test_load_counted_once_and_load_request(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    loaded = c.generate(QWEN)  # empty prompt = load only
    assert loaded.done_reason == "load" and loaded.response == "" and loaded.eval_count is None
    chat_load = c.chat(QWEN, messages=[])
    assert chat_load.done_reason == "load" and chat_load.total_duration is None
    for i in range(4):
        c.chat(QWEN, messages=[{"role": "user", "content": f"q{i}"}])
    s = model_stats(fake)
    assert s["loads"] == 1 and s["completed"] == 4
    assert s["requests"] == {"generate": {"200": 1}, "chat": {"200": 5}}
    stats = fake.stats()
    assert stats["resident_now"] == [QWEN] and stats["model_switches"] == 0
    assert stats["gpu_loading_seconds"] == pytest.approx(0.03, abs=0.02)
    assert 0 < stats["gpu_busy_seconds"] <= stats["wall_seconds"]
    assert 0 < stats["gpu_busy_fraction"] < 1


def test_cold_load_then_warm_load(start_fake: Callable[..., FakeOllama]) -> None:
    spec = ModelSpec(name=QWEN, load_s=1.0, cold_load_s=30.0)
    fake = start_fake(models=[spec])
    c = client(fake)
    first = c.generate(QWEN, keep_alive=0.0)  # the model is not resident: reply is "unload"
    assert first.done_reason == "unload"
    t = time.monotonic()
    c.generate(QWEN)
    cold = time.monotonic() - t
    c.generate(QWEN, keep_alive=0)
    wait_until(lambda: fake.stats()["resident_now"] == [])
    t = time.monotonic()
    c.generate(QWEN)
    warm = time.monotonic() - t
    assert cold >= 0.28 and warm < 0.2
    assert model_stats(fake)["unloads"]["explicit"] == 1


def test_model_switch_with_max_loaded_one(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake(max_loaded_models=1)
    c = client(fake)
    for name in (QWEN, LLAMA, QWEN):
        c.chat(name, messages=USER)
    stats = fake.stats()
    assert stats["loads"] == 3 and stats["model_switches"] == 2
    assert stats["evictions_for_other_model"] == 2
    assert stats["models"][QWEN]["unloads"]["evicted"] == 1
    assert stats["models"][LLAMA]["unloads"]["evicted"] == 1
    assert [m.model for m in client(fake).ps().models] == [QWEN]
    kinds = [
        (e["type"], e["model"]) for e in fake.events() if e["type"] in ("load_start", "unload")
    ]
    assert kinds == [
        ("load_start", QWEN),
        ("unload", QWEN),
        ("load_start", LLAMA),
        ("unload", LLAMA),
        ("load_start", QWEN),
    ]


def test_victim_is_shortest_session_not_lru(start_fake: Callable[..., FakeOllama]) -> None:
    third = ModelSpec(name="gemma3:4b", load_s=1.0)
    fake = start_fake(max_loaded_models=2, models=[*models(), third])
    c = client(fake)
    c.chat(LLAMA, messages=USER, keep_alive="10m")
    c.chat(QWEN, messages=USER, keep_alive=-1)  # forever sorts last
    c.chat(LLAMA, messages=USER)  # most recently used, still the shortest session
    c.chat("gemma3:4b", messages=USER)
    stats = fake.stats()
    assert stats["models"][LLAMA]["unloads"]["evicted"] == 1
    assert sorted(stats["resident_now"]) == ["gemma3:4b", QWEN]
    forever = next(m for m in c.ps().models if m.model == QWEN)
    assert forever.expires_at is not None and forever.expires_at.year > 2200


def test_keep_alive_zero_and_expiry(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    c.chat(QWEN, messages=USER, keep_alive=0)
    wait_until(lambda: fake.stats()["resident_now"] == [])
    assert model_stats(fake)["unloads"]["explicit"] == 1
    c.chat(QWEN, messages=USER, keep_alive="2s")  # Go duration string: 20 ms real
    ps = c.ps().models
    assert [m.model for m in ps] == [QWEN]
    assert ps[0].expires_at is not None
    assert ps[0].expires_at < datetime.now(timezone.utc).astimezone().replace(year=2100)
    wait_until(lambda: fake.stats()["resident_now"] == [])
    assert model_stats(fake)["unloads"]["expired"] == 1
    c.chat(QWEN, messages=USER, keep_alive=1.5)  # float seconds
    wait_until(lambda: model_stats(fake)["unloads"]["expired"] == 2)
    unload = c.generate(QWEN, keep_alive=0)
    assert unload.done_reason == "unload" and unload.total_duration is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10", 'time: missing unit in duration "10"'),
        ("-1", 'time: missing unit in duration "-1"'),
        ("5 minutes", 'time: unknown unit " minutes" in duration "5 minutes"'),
        (True, "Unsupported type: 'bool'"),
    ],
)
def test_bad_keep_alive_is_400(
    start_fake: Callable[..., FakeOllama], value: Any, message: str
) -> None:
    fake = start_fake()
    with pytest.raises(ollama.ResponseError) as err:
        httpx_post(fake, "/api/chat", {"model": QWEN, "messages": USER, "keep_alive": value})
    assert err.value.status_code == 400 and err.value.error == message
    if isinstance(value, str):  # the official client sends the string unchanged
        with pytest.raises(ollama.ResponseError) as err:
            client(fake).chat(QWEN, messages=USER, keep_alive=value)
        assert err.value.status_code == 400
    assert fake.stats()["loads"] == 0


def test_keep_alive_parsing_unit() -> None:
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("300ms") == pytest.approx(0.3)
    assert parse_go_duration("0") == 0  # Go special case
    assert parse_keep_alive(-1) == float("inf") and parse_keep_alive("-1m") == float("inf")
    assert parse_keep_alive(None) is None and parse_keep_alive(2.5) == 2.5


def test_reload_when_runner_options_change(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    c.chat(QWEN, messages=USER)
    c.chat(QWEN, messages=USER, options={"num_ctx": 4096})  # the default: same runner
    c.chat(QWEN, messages=USER, options={"temperature": 0.1, "seed": 3})  # sampling only
    assert model_stats(fake)["loads"] == 1
    c.chat(QWEN, messages=USER, options={"num_ctx": 8192})
    s = model_stats(fake)
    assert s["loads"] == 2 and s["unloads"]["reload"] == 1
    assert c.ps().models[0].context_length == 8192
    assert fake.stats()["model_switches"] == 0  # same model again is not a switch


def test_503_past_max_queue_while_loading(start_fake: Callable[..., FakeOllama]) -> None:
    slow = ModelSpec(name=QWEN, load_s=60.0)  # 0.6 s real
    fake = start_fake(max_queue=2, models=[slow, ModelSpec(name=LLAMA, load_s=1.0)])

    async def run() -> list[Any]:
        async with aclient(fake) as ac:

            async def chat(model: str, delay: float) -> Any:
                await asyncio.sleep(delay)
                return await ac.chat(model, messages=USER)

            # QWEN's load blocks the scheduler; two LLAMA requests fill the queue; 3rd is 503.
            tasks = [chat(QWEN, 0), chat(LLAMA, 0.1), chat(LLAMA, 0.1), chat(LLAMA, 0.3)]
            return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(run())
    assert [type(r).__name__ for r in results[:3]] == ["ChatResponse"] * 3
    err = results[3]
    assert isinstance(err, ollama.ResponseError)
    assert err.status_code == 503 and err.error == BUSY_MESSAGE
    assert str(err) == f"{BUSY_MESSAGE} (status code: 503)"
    stats = fake.stats()
    assert stats["rejected_503"] == 1 and stats["max_pending"] == 2
    assert stats["models"][LLAMA]["requests"]["chat"] == {"200": 2, "503": 1}


def test_no_503_for_resident_model_slot_queue_is_unbounded(
    start_fake: Callable[..., FakeOllama],
) -> None:
    fake = start_fake(max_queue=1)
    client(fake).generate(QWEN)  # resident now: requests take the fast path to the slot queue

    async def run() -> list[Any]:
        msgs = [[{"role": "user", "content": f"n{i}"}] for i in range(12)]
        async with aclient(fake) as ac:
            return await asyncio.gather(*(ac.chat(QWEN, messages=m) for m in msgs))

    assert len(asyncio.run(run())) == 12
    assert fake.stats()["rejected_503"] == 0


def test_cold_burst_loads_once(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake(models=[ModelSpec(name=QWEN, load_s=20.0)])  # 0.2 s real

    async def run() -> list[Any]:
        msgs = [[{"role": "user", "content": f"b{i}"}] for i in range(8)]
        async with aclient(fake) as ac:
            return await asyncio.gather(*(ac.chat(QWEN, messages=m) for m in msgs))

    results = asyncio.run(run())
    assert all(r.done_reason == "stop" for r in results)
    s = model_stats(fake)
    assert s["loads"] == 1 and s["completed"] == 8
    # every request waited for the same load, and load_duration reports that wait
    assert min(r.load_duration for r in results) > 0.15e9


def test_parallel_slots(start_fake: Callable[..., FakeOllama]) -> None:
    # 1 token/s simulated, 20 tokens => 0.2 s real per request; no slowdown for clean timing
    spec = ModelSpec(name=QWEN, load_s=1.0, decode_tok_s=1.0, parallel_slowdown=0.0)
    fake = start_fake(models=[spec], num_parallel=2)
    client(fake).generate(QWEN)

    async def run() -> list[float]:
        async with aclient(fake) as ac:
            t0 = time.monotonic()

            async def one(i: int) -> float:
                await asyncio.sleep(0.02 * i)  # fixed arrival order
                await ac.generate(QWEN, f"p{i}", options={"num_predict": 20})
                return time.monotonic() - t0

            return list(await asyncio.gather(*(one(i) for i in range(3))))

    t1, t2, t3 = asyncio.run(run())
    assert t1 < 0.35 and t2 < 0.4, "the first two overlap"
    assert t3 > t1 + 0.15, "the third waited for a free slot"
    s = model_stats(fake)
    assert s["max_active_slots"] == 2 and s["completed"] == 3
    events = [e for e in fake.events() if e["type"] in ("slot_acquire", "done")]
    order = [(e["type"], e["request_id"]) for e in events if e["request_id"] != 1]
    assert order[:2] == [("slot_acquire", 2), ("slot_acquire", 3)]
    assert order.index(("slot_acquire", 4)) > order.index(("done", 2))
    # gpu busy is the union of overlapping slot time, so it is below the slot-seconds sum
    assert s["busy_seconds"] < s["slot_seconds"]


def test_disconnect_during_load_aborts_it(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake(models=[ModelSpec(name=QWEN, load_s=50.0)])  # 0.5 s real
    with pytest.raises(httpx.ReadTimeout):
        client(fake, read=0.1).chat(QWEN, messages=USER)
    wait_until(lambda: model_stats(fake)["load_aborts"] == 1)
    s = model_stats(fake)
    assert s["canceled"]["loading"] == 1 and s["loads"] == 0
    assert fake.stats()["resident_now"] == []
    assert client(fake).chat(QWEN, messages=USER).done  # a patient client succeeds


# --- faults -------------------------------------------------------------------------------------


def test_fault_hang_and_release(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    fake.add_fault(FaultRule(action="hang", times=1))
    with pytest.raises(httpx.ReadTimeout):
        client(fake, read=0.3).chat(QWEN, messages=USER)
    assert client(fake).chat(QWEN, messages=USER).done  # times=1: the retry works
    fake.add_fault(FaultRule(action="hang", times=1))
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(client(fake).chat(QWEN, messages=USER)))
    worker.start()
    wait_until(lambda: fake.stats()["hung_now"] == 1)
    time.sleep(0.05)
    assert not result
    assert fake.release_hangs() == 1
    worker.join(5)
    assert result and result[0].done


@pytest.mark.parametrize("stream", [False, True])
def test_fault_http_error(start_fake: Callable[..., FakeOllama], stream: bool) -> None:
    fake = start_fake()
    fake.add_fault(FaultRule(action="http_error", status=500, message="llama runner exploded"))
    with pytest.raises(ollama.ResponseError) as err:
        result = client(fake).chat(QWEN, messages=USER, stream=stream)
        if stream:
            list(result)
    assert err.value.status_code == 500 and err.value.error == "llama runner exploded"
    assert fake.stats()["loads"] == 0  # before_load (default stage)


def test_fault_stream_error_and_crash(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    fake.add_fault(FaultRule(action="stream_error", after_chunks=3, times=1))
    got: list[Any] = []
    with pytest.raises(ollama.ResponseError) as err:
        for part in c.chat(QWEN, messages=USER, stream=True):
            got.append(part)
    assert err.value.status_code == -1 and len(got) == 3
    assert "unexpectedly stopped" in err.value.error
    fake.add_fault(FaultRule(action="crash_runner", after_chunks=2, times=1))
    with pytest.raises(ollama.ResponseError) as err:
        list(c.chat(QWEN, messages=USER, stream=True))
    assert err.value.status_code == -1
    c.chat(QWEN, messages=USER)  # the next request reloads the crashed model
    s = model_stats(fake)
    assert s["unloads"]["crash"] == 1 and s["loads"] == 2
    fake.add_fault(FaultRule(action="stream_error", message="boom", times=1))
    with pytest.raises(ollama.ResponseError) as err:
        c.chat(QWEN, messages=USER)  # stream=False: the error is a plain 500
    assert err.value.status_code == 500 and err.value.error == "boom"


def test_fault_drop(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    fake.add_fault(FaultRule(action="drop", times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        c.chat(QWEN, messages=USER)
    fake.add_fault(FaultRule(action="drop", after_chunks=2, times=1))
    got: list[Any] = []
    with pytest.raises(httpx.RemoteProtocolError):
        for part in c.chat(QWEN, messages=USER, stream=True):
            got.append(part)
    assert len(got) == 2
    assert c.chat(QWEN, messages=USER).done  # the client recovers on a new connection


def test_fault_malformed_ndjson(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    fake.add_fault(FaultRule(action="malformed_ndjson", after_chunks=1, times=2))
    with pytest.raises(json.JSONDecodeError):
        list(client(fake).chat(QWEN, messages=USER, stream=True))
    with pytest.raises(json.JSONDecodeError):
        client(fake).chat(QWEN, messages=USER)


@pytest.mark.parametrize(
    "kind",
    ["truncated_json", "not_json", "fenced_json", "empty", "empty_object", "schema_violation",
     "trailing_whitespace"],
)  # fmt: skip
def test_fault_bad_output(start_fake: Callable[..., FakeOllama], kind: str) -> None:
    fake = start_fake()
    schema = Person.model_json_schema()
    fake.add_fault(FaultRule(action="bad_output", kind=kind))
    r = client(fake).chat(QWEN, messages=USER, format=schema, options={"num_predict": 400})
    content = r.message.content
    if kind in ("truncated_json", "not_json", "fenced_json", "empty"):
        with pytest.raises(json.JSONDecodeError):
            json.loads(content)
    if kind == "fenced_json":
        assert content.startswith("```json\n") and content.endswith("\n```")
        jsonschema.validate(json.loads(content[8:-4]), schema)
    if kind == "empty":
        assert content == ""
    if kind in ("empty_object", "schema_violation"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(json.loads(content), schema)
    if kind == "trailing_whitespace":
        assert r.done_reason == "length" and r.eval_count == 400
        assert content.endswith("\n \n ")
        jsonschema.validate(json.loads(content), schema)  # still parses: whitespace is legal


def test_fault_load_faults_and_reject(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake(models=[ModelSpec(name=QWEN, load_s=1.0)])
    c = client(fake)
    fake.add_fault(FaultRule(action="load_fail", times=1))
    with pytest.raises(ollama.ResponseError) as err:
        c.chat(QWEN, messages=USER)
    assert err.value.status_code == 500
    assert err.value.error == "llama runner process has terminated: exit status 2"
    fake.add_fault(FaultRule(action="slow_load", seconds=30.0, times=1))  # 0.3 s instead of 0.01
    r = c.chat(QWEN, messages=USER)
    assert r.load_duration is not None and r.load_duration > 0.25e9
    s = model_stats(fake)
    assert s["load_failures"] == 1 and s["loads"] == 1
    fake.add_fault(FaultRule(action="reject_503", times=1))
    with pytest.raises(ollama.ResponseError) as err:
        c.chat(QWEN, messages=USER)
    assert err.value.status_code == 503 and err.value.error == BUSY_MESSAGE
    fake.set(load_timeout_s=5.0)
    fake.add_fault(FaultRule(action="load_stall", times=1))
    c.generate(QWEN, keep_alive=0)
    wait_until(lambda: fake.stats()["resident_now"] == [])
    with pytest.raises(ollama.ResponseError) as err:
        c.chat(QWEN, messages=USER)
    assert err.value.error.startswith("timed out waiting for llama runner to start")
    assert fake.stats()["faults_fired"] == {"1": 1, "2": 1, "3": 1, "4": 1}


def test_fault_timing_faults(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    c.generate(QWEN)
    fake.add_fault(FaultRule(action="stall", after_chunks=2, seconds=30.0, times=1))  # 0.3 s
    stamps = []
    for _part in c.generate(QWEN, "story", stream=True, options={"num_predict": 4}):
        stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) >= 0.25 and gaps.index(max(gaps)) == 1  # between chunk 2 and chunk 3
    fake.add_fault(FaultRule(action="slow_tokens", ms=2000.0, times=1))  # +20 ms per token
    t = time.monotonic()
    r = c.generate(QWEN, "story", options={"num_predict": 10})
    assert time.monotonic() - t >= 0.18 and r.eval_duration is not None
    fake.add_fault(FaultRule(action="runaway", times=1))
    r = c.generate(QWEN, "story", options={"num_predict": 300})
    assert r.done_reason == "length" and r.eval_count == 300


def test_request_validation_errors(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake(context_overflow="error400", default_num_ctx=64)
    c = client(fake)
    with pytest.raises(ollama.ResponseError) as err:
        c.chat(QWEN, messages=USER, options={"temperature": "hot"})
    assert err.value.status_code == 500
    assert err.value.error == 'option "temperature" must be of type float32'
    with pytest.raises(ollama.ResponseError) as err:
        c.chat(QWEN, messages=USER, options={"num_ctx": 64}, format={"type": 7})
    assert err.value.status_code == 500 and "invalid JSON schema" in err.value.error
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    assert c.chat(QWEN, messages=USER, tools=[tool]).done  # qwen has the tools capability
    fake2 = start_fake(models=[ModelSpec(name="tiny:1b", load_s=1.0, capabilities=["completion"])])
    with pytest.raises(ollama.ResponseError) as err:
        client(fake2).chat("tiny:1b", messages=USER, tools=[tool])
    assert err.value.status_code == 400 and err.value.error == "tiny:1b does not support tools"
    with pytest.raises(ollama.ResponseError) as err:
        c.generate(QWEN, "x" * 400)  # ~100 tokens > num_ctx 64
    assert err.value.status_code == 400 and err.value.error.startswith("the prompt is longer")
    bad_json = httpx.post(fake.base_url + "/api/chat", content=b"{nope")
    assert bad_json.status_code == 400
    assert bad_json.json()["error"] == "invalid character 'n' looking for beginning of value"


def test_fast_path_off_and_evict_now(start_fake: Callable[..., FakeOllama]) -> None:
    # pre-v0.11.5: even requests for a resident model go through the bounded pending queue
    spec = ModelSpec(name=QWEN, load_s=1.0, decode_tok_s=10.0)
    fake = start_fake(models=[spec], fast_path_for_loaded=False, max_queue=0)
    c = client(fake)
    with pytest.raises(ollama.ResponseError) as err:
        c.generate(QWEN)
    assert err.value.status_code == 503
    fake.set(max_queue=4)
    c.generate(QWEN, keep_alive=-1)
    assert fake.evict_now(QWEN) is True
    wait_until(lambda: fake.stats()["resident_now"] == [])
    assert model_stats(fake)["unloads"]["explicit"] == 1
    assert fake.evict_now(QWEN) is False
    with pytest.raises(ValueError):
        fake.set(no_such_knob=1)


def test_fault_matching_rules(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    fake.add_fault(FaultRule(action="http_error", status=418, model=LLAMA, nth=2))
    fake.add_fault(FaultRule(action="http_error", status=429, endpoint="generate", every_n=2))
    fake.add_fault(FaultRule(action="http_error", status=502, prompt_regex=r"^poison", times=1))

    def status(fn: Callable[[], Any]) -> int:
        try:
            fn()
        except ollama.ResponseError as exc:
            return exc.status_code
        return 200

    assert [status(lambda: c.chat(LLAMA, messages=USER)) for _ in range(3)] == [200, 418, 200]
    assert [status(lambda: c.generate(QWEN, "hi")) for _ in range(4)] == [200, 429, 200, 429]
    poison = [{"role": "user", "content": "poison pill"}]
    assert [status(lambda: c.chat(QWEN, messages=poison)) for _ in range(2)] == [502, 200]
    listed = fake.faults()
    assert [(f["matched"], f["fired"]) for f in listed] == [(3, 1), (4, 2), (2, 1)]
    assert fake.clear_faults() == 3
    assert status(lambda: c.generate(QWEN, "hi")) == 200


def test_http_control_endpoints(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    with httpx.Client(base_url=fake.base_url, timeout=10) as http:
        rid = http.post("/_fake/faults", json={"action": "http_error", "status": 500}).json()["id"]
        assert rid == 1
        bad = http.post("/_fake/faults", json={"action": "explode"})
        assert bad.status_code == 400 and "unknown fault action" in bad.json()["error"]
        assert http.post("/api/chat", json={"model": QWEN, "messages": USER}).status_code == 500
        assert http.delete("/_fake/faults").json() == {"cleared": 1}
        http.post("/_fake/faults", json={"action": "hang", "times": 1})
        with pytest.raises(httpx.ReadTimeout):
            http.post("/api/chat", json={"model": QWEN, "messages": USER}, timeout=0.3)
        http.post("/_fake/faults", json={"action": "hang", "stage": "queued", "times": 1})
        box: list[httpx.Response] = []
        body = {"model": QWEN, "messages": USER, "stream": False}
        t = threading.Thread(
            target=lambda: box.append(httpx.post(fake.base_url + "/api/chat", json=body))
        )
        t.start()
        wait_until(lambda: http.get("/_fake/faults").json()[-1]["fired"] == 1)
        assert http.post("/_fake/release_hangs").json() == {"released": 1}
        t.join(5)
        assert box and box[0].status_code == 200
        stats = http.get("/_fake/stats").json()
        assert stats["models"][QWEN]["canceled"]["generating"] == 1
        assert http.get("/_fake/events", params={"since": 3}).json()[0]["seq"] == 4
        assert http.post("/_fake/set", json={"num_parallel": 3}).json()["num_parallel"] == 3
        assert http.post("/_fake/reset", json={"unload": True}).json() == {"ok": True}
        stats = http.get("/_fake/stats").json()
        assert stats["loads"] == 0 and stats["resident_now"] == [] and stats["models"] == {}
        assert http.get("/_fake/events").json() == []


def test_reset_counters_keeps_residency(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    c = client(fake)
    c.chat(QWEN, messages=USER)
    fake.reset_counters()
    c.chat(QWEN, messages=USER)
    stats = fake.stats()
    assert stats["loads"] == 0 and stats["completed"] == 1 and stats["resident_now"] == [QWEN]
    assert stats["wall_seconds"] < 1.0


# --- process mode -------------------------------------------------------------------------------


def test_subprocess_mode(tmp_path: Any) -> None:
    cfg = {
        "time_scale": SCALE,
        "models": [{"name": QWEN, "load_s": 1.0}, "tiny:1b"],
        "faults": [{"action": "http_error", "status": 500, "nth": 2, "message": "second fails"}],
    }
    path = tmp_path / "fake.json"
    path.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "turing_pg.fake_ollama", "--port", "0", "--config", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _readline(proc, timeout=15)
        assert line.startswith("listening http://127.0.0.1:")
        url = line.split(" ", 1)[1].strip()
        c = client(url)
        assert c.chat(QWEN, messages=USER).message.content.startswith("[simulated] ")
        with pytest.raises(ollama.ResponseError) as err:
            c.chat(QWEN, messages=USER)
        assert err.value.error == "second fails"
        assert {m.model for m in c.list().models} == {QWEN, "tiny:1b"}
        assert httpx.get(url + "/_fake/stats").json()["models"][QWEN]["loads"] == 1
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        rest_out, rest_err = proc.communicate()
    assert rc == 0, rest_err
    assert rest_out == ""  # exactly one line on stdout


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(
        target=lambda: box.append(proc.stdout.readline() if proc.stdout else "")
    )
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    if not box:
        raise AssertionError("fake ollama did not print its listening line")
    return box[0]


def test_stop_cancels_inflight_and_frees_port(start_fake: Callable[..., FakeOllama]) -> None:
    fake = start_fake()
    fake.add_fault(FaultRule(action="hang"))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client(fake).chat(QWEN, messages=USER)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    wait_until(lambda: fake.faults()[0]["fired"] == 1)
    fake.stop()
    worker.join(5)
    assert not worker.is_alive() and errors
    with pytest.raises(ConnectionError):
        client(fake).chat(QWEN, messages=USER)
    with contextlib.suppress(Exception):
        fake.stop()  # idempotent


def test_context_manager_and_env_host(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOllama(FakeConfig(time_scale=SCALE, models=models())) as fake:
        monkeypatch.setenv("OLLAMA_HOST", fake.base_url)
        with ollama.Client(timeout=10) as env_client:  # host from $OLLAMA_HOST
            assert env_client.chat(QWEN, messages=USER).done
    with pytest.raises(ConnectionError):  # __exit__ stopped the server
        client(fake).chat(QWEN, messages=USER)
