"""`turing-runner --metrics-port P`: a real runner process serves Prometheus metrics whose counts
agree with the database and with the model server, and the Grafana dashboard in docs/ only
asks for metrics a runner serves.

Every test scrapes http://127.0.0.1:P/metrics with urllib and parses it with
prometheus_client's own parser, as Prometheus would read it."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import wait_for
from prometheus_client.parser import text_string_to_metric_families
from test_runner import LLAMA, QWEN, fake_models, history, llm_actor, open_count, submit_many

from turing_pg.db import Turing
from turing_pg.fake_ollama import FaultRule

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana-turing.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Scrape:
    """One scrape: every sample, by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [s for family in text_string_to_metric_families(text)
                        for s in family.samples]

    @classmethod
    def of(cls, port: int) -> Scrape:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.status == 200
            return cls(answer.read().decode())

    def names(self) -> set[str]:
        return {s.name for s in self.samples}

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        found = [s.value for s in self.samples if s.name == name
                 and all(s.labels.get(k) == v for k, v in labels.items())]
        assert found, f"no sample {name} {labels} in the scrape:\n{self.text}"
        return sum(found)


def settled(conn: psycopg.Connection) -> bool:
    return open_count(conn) == 0


@pytest.fixture
def busy_runner(turing: Turing, conn: psycopg.Connection, fake_ollama: Any,
                start_runner: Any) -> Iterator[tuple[Any, Any, int]]:
    """A two-model runner on one GPU that drained work with one of each class of failure:
    a bad answer (the work's failure, retried), a missing prompt variable (a definition error,
    dead at once) and a crashed model runner (an infrastructure fault, no attempt charged)."""
    fake = fake_ollama(models=fake_models(), faults=[
        FaultRule("bad_output", kind="not_json", model=QWEN, endpoint="chat", times=1),
        FaultRule("crash_runner", model=LLAMA, endpoint="chat", times=1),
    ])
    turing.register_actor(llm_actor("classify", QWEN))
    turing.register_actor(llm_actor("summarise", LLAMA))
    submit_many(turing, "classify", 5, prefix="c")
    submit_many(turing, "summarise", 4, prefix="s")
    turing.submit("classify", "no-count", {"skill": "SQL"})  # {count} is missing
    port = free_port()
    runner = start_runner("--models", f"{QWEN},{LLAMA}", "--concurrency", "2",
                          "--ollama-host", fake.base_url, "--metrics-port", str(port))
    wait_for(lambda: settled(conn), timeout=60, what="every ticket settled")
    yield runner, fake, port


def test_metrics_count_what_the_database_and_the_model_server_saw(
        conn: psycopg.Connection, busy_runner: tuple[Any, Any, int]) -> None:
    runner, fake, port = busy_runner
    [served] = runner.events("metrics")
    assert served["url"] == f"http://127.0.0.1:{port}/metrics"
    # why: a result is counted in the loop right after the database accepted it
    wait_for(lambda: Scrape.of(port).value("turing_runner_completed_total") == 9
             and Scrape.of(port).value("turing_runner_failures_total", actor="classify") == 2,
             what="nine completions and two failures counted")
    m = Scrape.of(port)
    rows = {actor: history(conn, actor) for actor in ("classify", "summarise")}
    for actor, model in (("classify", QWEN), ("summarise", LLAMA)):
        done = sum(1 for r in rows[actor] if r["status"] == "completed")
        assert m.value("turing_runner_completed_total", actor=actor, model=model) == done
    # one of each class, each where it happened
    assert [r["status"] for r in rows["classify"] if r["status"] != "completed"] \
        == ["failed", "dead"]
    assert m.value("turing_runner_failures_total", actor="classify", **{"class": "failure"}) == 1
    assert m.value("turing_runner_failures_total", actor="classify",
                   **{"class": "definition"}) == 1
    # why: a crashed model runner takes down every call in flight on it (one or both slots)
    faults = len(runner.events("fault"))
    assert faults >= 1
    assert m.value("turing_runner_failures_total", actor="summarise",
                   **{"class": "fault"}) == faults
    assert m.value("turing_runner_failures_total", actor="classify", **{"class": "fault"}) == 0
    assert m.value("turing_runner_failures_total", actor="summarise",
                   **{"class": "failure"}) == 0
    # every attempt in the history was claimed once, a faulted one once more (it went back)
    attempts = sum(len(r) for r in rows.values())
    assert m.value("turing_runner_claimed_tickets_total") == attempts + faults
    # a latency observation per call, per actor, by how it ended
    calls = m.value("turing_runner_call_seconds_count")
    assert calls == attempts + faults
    assert m.value("turing_runner_call_seconds_count", actor="classify") == len(rows["classify"])
    assert m.value("turing_runner_call_seconds_count", actor="summarise", outcome="fault") == faults
    assert m.value("turing_runner_call_seconds_bucket", actor="summarise", le="+Inf") \
        == len(rows["summarise"]) + faults
    assert m.value("turing_runner_call_seconds_sum", actor="classify") > 0
    # tokens as the model server counted them
    stats = fake.stats()["models"]
    for model in (QWEN, LLAMA):
        for kind in ("prompt", "output"):
            counted = m.value("turing_runner_tokens_total", model=model, type=kind)
            assert counted == stats[model][f"{kind}_tokens"] > 0, (model, kind)
    # both models loaded by this runner, the GPU switched at least once between them
    for model in (QWEN, LLAMA):
        assert m.value("turing_runner_model_loads_total", model=model) >= 1
        assert m.value("turing_runner_model_load_seconds_count", model=model) \
            == m.value("turing_runner_model_loads_total", model=model)
    switches = m.value("turing_runner_model_switches_total")
    assert switches >= 1
    assert switches == max(e["switches"] for e in runner.events("switch"))
    # gauges: nothing left in flight, the breakers closed, the database up
    assert m.value("turing_runner_calls_in_flight") == 0
    assert m.value("turing_runner_tickets_queued") == 0
    assert m.value("turing_runner_breaker_state", model=QWEN) == 0
    assert m.value("turing_runner_breaker_state", model=LLAMA) == 0
    assert m.value("turing_runner_database_up") == 1
    assert m.value("turing_runner_concurrency") == 2
    assert m.value("turing_runner_info", models=f"{QWEN},{LLAMA}") == 1


def test_an_open_breaker_shows_in_its_gauge(
        turing: Turing, conn: psycopg.Connection, start_runner: Any) -> None:
    turing.register_actor(llm_actor("classify", QWEN, timeout="10 seconds"))
    submit_many(turing, "classify", 6)
    port = free_port()
    runner = start_runner("--model", QWEN, "--ollama-host", "http://127.0.0.1:9",
                          "--metrics-port", str(port))
    runner.wait_event("breaker_open", timeout=30)
    m = Scrape.of(port)
    assert m.value("turing_runner_breaker_state", model=QWEN) in (1, 2)
    assert m.value("turing_runner_failures_total", model=QWEN, **{"class": "fault"}) >= 3
    assert m.value("turing_runner_completed_total") == 0
    assert history(conn, "classify") == []


def test_metrics_are_served_while_the_database_is_away(start_runner: Any) -> None:
    """From before the first connection: a runner waiting for its database is seen waiting."""
    port = free_port()
    runner = start_runner("--model", QWEN, "--metrics-port", str(port),
                          env={"TURING_DSN": "postgresql://nobody@127.0.0.1:9/none"})
    runner.wait_event("db_unavailable")
    wait_for(lambda: Scrape.of(port).value("turing_runner_database_up") == 0,
             what="database_up 0")
    assert Scrape.of(port).value("turing_runner_breaker_state", model=QWEN) == 0


def test_a_taken_metrics_port_is_refused_with_a_sentence(start_runner: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runner = start_runner("--model", QWEN, "--metrics-port", str(port))
        assert runner.wait() == 2
    log = runner.log_path.read_text()
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}" in log
    assert "give a free port" in log and "Traceback" not in log


def test_port_zero_picks_a_free_port_and_logs_it(start_runner: Any) -> None:
    runner = start_runner("--model", QWEN, "--metrics-port", "0",
                          env={"TURING_DSN": "postgresql://nobody@127.0.0.1:9/none"})
    [served] = runner.wait_event("metrics")
    assert served["port"] > 0
    assert "turing_runner_database_up" in Scrape.of(served["port"]).names()


def test_without_metrics_port_nothing_listens(start_runner: Any) -> None:
    runner = start_runner("--model", QWEN,
                          env={"TURING_DSN": "postgresql://nobody@127.0.0.1:9/none"})
    runner.wait_event("db_unavailable")
    assert runner.events("metrics") == []


# -- the Grafana dashboard ----------------------------------------------------------------------


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_the_dashboard_is_grafana_json_with_a_panel_per_metric() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["title"] and board["uid"] and board["schemaVersion"] >= 30
    assert {v["name"] for v in board["templating"]["list"]} >= {"datasource", "instance", "model"}
    exprs = " ".join(dashboard_exprs())
    for name in ("claimed_tickets_total", "completed_total", "failures_total",
                 "calls_in_flight", "call_seconds_bucket", "tokens_total",
                 "model_loads_total", "model_switches_total", "breaker_state"):
        assert f"turing_runner_{name}" in exprs, name


def test_every_metric_the_dashboard_asks_for_is_in_a_scrape(
        busy_runner: tuple[Any, Any, int]) -> None:
    _runner, _fake, port = busy_runner
    served = Scrape.of(port).names()
    asked = {n for e in dashboard_exprs() for n in re.findall(r"\bturing_runner_\w+", e)}
    assert asked and asked <= served, sorted(asked - served)
