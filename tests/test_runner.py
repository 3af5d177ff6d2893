"""The runner as a real process: it claims, runs LLM/script/SQL actors, reports, and stops well.

Every test starts its own `turing-runner` subprocesses against a fresh database and an
Ollama-compatible server on a free loopback port (runner/fake_ollama), and stops them."""

from __future__ import annotations

import signal
import time
from typing import Any

import psycopg
from conftest import wait_for

from turing_pg.db import Turing
from turing_pg.fake_ollama import ModelSpec

QWEN = "qwen2.5:7b"
LLAMA = "llama3.1:8b"
SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["keep", "drop"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["label", "confidence"],
}


def llm_actor(name: str, model: str, **kw: Any) -> dict[str, Any]:
    return dict(
        name=name, kind="llm", model=model,
        prompt_template="Classify the skill {skill} (seen {count} times).",
        output_schema=SCHEMA, timeout=kw.pop("timeout", "20 seconds"),
        max_attempts=kw.pop("max_attempts", 3), backoff_base=kw.pop("backoff_base", "0 seconds"),
        backoff_max=kw.pop("backoff_max", "0 seconds"), **kw,
    )


def submit_many(turing: Turing, actor: str, n: int, prefix: str = "s") -> None:
    for i in range(n):
        turing.submit(actor, f"{prefix}{i}", {"skill": f"skill number {i}", "count": i + 1})


def history(conn: psycopg.Connection, actor: str) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        "select h.ticket_id, h.subject_id, h.status, h.attempt, h.output, h.error, "
        "h.failure_kind, h.created_at, h.started_at, h.finished_at, h.worker "
        "from turing.ticket_history as h join turing.actors as a using (actor_id) "
        "where a.name = %s order by h.ticket_id", (actor,)
    ).fetchall()


def open_count(conn: psycopg.Connection, actor: str | None = None) -> int:
    return conn.execute(
        "select count(*) from turing.ticket_open as o join turing.actors as a using (actor_id) "
        "where %(a)s::text is null or a.name = %(a)s", {"a": actor}
    ).fetchone()[0]


def completed(conn: psycopg.Connection, actor: str) -> int:
    return sum(1 for r in history(conn, actor) if r["status"] == "completed")


def fake_models(**kw: Any) -> list[ModelSpec]:
    return [ModelSpec(name=QWEN, **kw), ModelSpec(name=LLAMA, family="llama", **kw)]


def test_runner_drains_an_llm_actor_and_saves_schema_valid_outputs(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    fake = fake_ollama(models=fake_models())
    turing.register_actor(llm_actor("classify", QWEN))
    submit_many(turing, "classify", 12)
    runner = start_runner("--model", QWEN, "--concurrency", "4", "--ollama-host", fake.base_url)
    wait_for(lambda: completed(conn, "classify") == 12, what="12 completed tickets")
    rows = history(conn, "classify")
    assert {r["status"] for r in rows} == {"completed"}
    for r in rows:
        assert r["output"]["label"] in ("keep", "drop")
        assert 0 <= r["output"]["confidence"] <= 1
        assert r["finished_at"] >= r["started_at"] >= r["created_at"]
    assert fake.stats()["completed"] == 12
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0
    start = runner.events("startup")[0]
    assert start["worker"] and any(s["actor"] == "classify" for s in start["state"])
    assert len(runner.events("finish")) == 12


def test_no_transaction_is_open_while_actors_run(
        turing: Turing, conn: psycopg.Connection, fake_ollama: Any, start_runner: Any) -> None:
    """Invariant 8: during slow calls the runner's connections are idle, never in a
    transaction (a pooled connection is borrowed per SQL call only)."""
    fake = fake_ollama(models=fake_models(decode_tok_s=2, load_s=0.0), time_scale=1.0,
                       num_parallel=4)
    turing.register_actor(llm_actor("classify", QWEN, timeout="30 seconds"))
    submit_many(turing, "classify", 4)
    runner = start_runner("--model", QWEN, "--concurrency", "4", "--ollama-host",
                          fake.base_url)
    runner.wait_event("start", count=4)
    samples = []
    for _ in range(20):  # two seconds of the ~5 s calls
        samples += conn.execute(
            "select state, xact_start is not null, now() - coalesce(xact_start, now()) "
            "from pg_stat_activity where application_name = 'turing' "
            "and datname = current_database() and pid <> pg_backend_pid()").fetchall()
        time.sleep(0.1)
    assert samples, "the runner's connections are visible"
    assert not [s for s in samples if s[0] == "idle in transaction"]
    # a statement may be caught mid-flight (a heartbeat), but none lasts
    assert all(s[2].total_seconds() < 0.5 for s in samples)
    assert completed(conn, "classify") == 0, "the calls were still running while sampled"
    wait_for(lambda: completed(conn, "classify") == 4, what="all four")
