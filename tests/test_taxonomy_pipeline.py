"""The taxonomy demo pipeline (actors/taxonomy), end to end through the SQL API.

The tests drive the pipeline the way a runner does: claim_batch per model, run each ticket
(script actors as real subprocesses with the stdin protocol, llm actors against the bundled
Ollama-compatible server through the real `ollama` client, sql actors by calling their
function), then complete_batch. The outputs of the simulated models are deterministic but
arbitrary, which is what the pipeline must make sense of.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jsonschema
import ollama
import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from turing_pg.actor_files import load_definitions
from turing_pg.actors.taxonomy import loader
from turing_pg.actors.taxonomy.scripts import clean_skill, make_entity
from turing_pg.db import ClaimedTicket, Turing
from turing_pg.fake_ollama import FakeConfig, FakeOllama, ModelSpec

LLM_MODELS = ("qwen2.5:7b", "llama3.1:8b", "mistral:7b")
LIMIT = 40
WORKER = "test-taxonomy-runner"


# --------------------------------------------------------------------------------------------
# A minimal runner, as the contract describes it


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]+)\}")


def render(template: str, variables: dict[str, Any]) -> str:
    """`{name}` and `{a.b}` from the ticket's input; `{{`/`}}` literal; missing or NULL fails."""

    def fill(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        value: Any = variables
        for part in match.group(1).split("."):
            if not isinstance(value, dict) or value.get(part) is None:
                raise KeyError(f"prompt variable {match.group(1)!r} is missing or NULL")
            value = value[part]
        return value if isinstance(value, str) else json.dumps(value)

    return _PLACEHOLDER.sub(fill, template)


class MiniRunner:
    def __init__(self, turing: Turing, dsn: str, ollama_host: str) -> None:
        self.turing = turing
        self.dsn = dsn
        self.client = ollama.Client(host=ollama_host, timeout=httpx.Timeout(30.0))
        self.prompts: dict[str, list[str]] = {}

    def run(self, t: ClaimedTicket) -> Any:
        a = t.actor
        if a.kind == "script":
            argv = shlex.split(a.script or "")
            if argv and argv[0] in ("python", "python3"):
                argv[0] = sys.executable
            payload = {"ticket_id": t.ticket_id, "actor": a.name, "subject_id": t.subject_id,
                       "input": t.input, "attempt": t.attempt, "chain_id": t.chain_id}
            done = subprocess.run(argv, input=json.dumps(payload), capture_output=True,
                                  text=True, timeout=30, check=False)
            assert done.returncode == 0, f"{a.name} failed: {done.stderr[-500:]}"
            return json.loads(done.stdout)
        if a.kind == "llm":
            prompt = render(a.prompt_template or "", {**t.input, "subject_id": t.subject_id})
            self.prompts.setdefault(a.name, []).append(prompt)
            reply = self.client.chat(model=a.model, messages=[{"role": "user", "content": prompt}],
                                     format=a.output_schema, options=a.options)
            output = json.loads(reply.message.content or "")
            jsonschema.validate(output, a.output_schema or {})
            return output
        if a.kind == "sql":
            schema_name, function = (a.sql_function or "").split(".")
            query = sql.SQL("select {}(%s, %s)").format(sql.Identifier(schema_name, function))
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                row = conn.execute(query, (t.subject_id, Jsonb(t.input))).fetchone()
            assert row is not None
            return row[0]
        raise AssertionError(f"the test runner does not run {a.kind} actors")

    def drain(self, actors: list[str], models: list[str], timeout_s: float = 60) -> None:
        """Claim, run and complete until no actor has open work."""
        deadline = time.monotonic() + timeout_s
        with ThreadPoolExecutor(max_workers=8) as pool:
            while time.monotonic() < deadline:
                for actor in actors:
                    self.turing.discover(actor)  # ignores the discover interval: no waiting
                claimed = 0
                for model in models:
                    tickets = self.turing.claim_batch(model, WORKER, 64)
                    claimed += len(tickets)
                    if tickets:
                        outputs = list(pool.map(self.run, tickets))
                        outcomes = self.turing.complete_batch([
                            (t.ticket_id, t.lease_token, o)
                            for t, o in zip(tickets, outputs, strict=True)
                        ])
                        failed = [o for o in outcomes if o.status != "completed"]
                        assert not failed, failed
                if claimed == 0 and open_tickets(self.turing, actors) == 0:
                    return
        raise AssertionError(f"the pipeline did not drain in {timeout_s} s")


def open_tickets(turing: Turing, actors: list[str]) -> int:
    return sum(s.pending + s.running for s in turing.startup_state() if s.actor in actors)


@pytest.fixture(scope="module")
def ollama_host() -> Iterator[str]:
    fake = FakeOllama(FakeConfig(
        time_scale=0.001, models=[ModelSpec(name=m, load_s=0.5) for m in LLM_MODELS],
    )).start()
    try:
        yield fake.base_url
    finally:
        fake.stop()


def models_of(turing: Turing, actors: list[str]) -> list[str]:
    return sorted({s.model for s in turing.startup_state() if s.actor in actors and s.enabled})


def one(conn: psycopg.Connection, query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


# --------------------------------------------------------------------------------------------
# The pipeline


def test_pipeline_drains_and_places_every_skill(dsn: str, turing: Turing,
                                                conn: psycopg.Connection, ollama_host: str
                                                ) -> None:
    actors = loader.load_pipeline(turing, conn, limit=LIMIT)
    assert actors == ["clean_skills", "merge_duplicates", "create_entities", "classify_qwen",
                      "classify_llama", "arbitrate", "commit_placement", "review_placement"]
    assert one(conn, "select count(*) from taxonomy_demo.raw_skill") == LIMIT

    runner = MiniRunner(turing, dsn, ollama_host)
    runner.drain(actors, models_of(turing, actors))

    # drained: nothing open, every raw skill rejected or placed
    assert open_tickets(turing, actors) == 0
    assert one(conn, "select count(*) from taxonomy_demo.skill_journey where not finished") == 0
    assert one(conn, "select count(*) from taxonomy_demo.raw_skill where status = 'rejected'") >= 1
    assert one(conn, "select count(*) from taxonomy_demo.skill_name "
                     "where status not in ('merged', 'has_entity')") == 0
    # the dedup and the merge LLM both had work: fewer names than raw skills, merges considered
    assert one(conn, "select count(*) from taxonomy_demo.skill_name") < LIMIT
    assert len(runner.prompts["merge_duplicates"]) >= 1

    # merges point at roots only (no chains), and never at themselves
    assert one(conn, """
        select count(*) from taxonomy_demo.skill_name as n
        inner join taxonomy_demo.skill_name as t on n.merged_into = t.name_id
        where t.merged_into is not null or n.merged_into = n.name_id""") == 0

    # both classifiers answered every entity, on different models
    entities = one(conn, "select count(*) from taxonomy_demo.entity")
    assert entities > 0
    assert one(conn, "select count(*) from taxonomy_demo.classification") == 2 * entities

    # the arbitrator ran exactly on the disagreements
    disagreements = one(conn, """
        select count(*)
        from taxonomy_demo.classification as a
        inner join taxonomy_demo.classification as b on a.entity_id = b.entity_id
        inner join taxonomy_demo.taxonomy_leaf as la on a.leaf = la.leaf
        inner join taxonomy_demo.taxonomy_leaf as lb on b.leaf = lb.leaf
        where a.slot = 'A' and b.slot = 'B' and la.category <> lb.category""")
    arbitrations = [t for t in turing.find_tickets(actor="arbitrate", limit=10_000)
                    if t["status"] == "completed"]
    assert disagreements > 0
    assert len(arbitrations) == disagreements
    assert one(conn, "select count(*) from taxonomy_demo.arbitration") == disagreements
    assert one(conn, "select count(*) from taxonomy_demo.placement "
                     "where method = 'arbitration'") == disagreements
    assert one(conn, "select count(*) from taxonomy_demo.placement") == entities

    # the tree is non-empty and names every entity
    tree = loader.taxonomy_tree(conn)
    labels = [r[0] for r in conn.execute("select label from taxonomy_demo.entity")]
    assert tree.strip()
    for label in labels:
        assert f"    {label} x" in tree, label
    assert "not placed yet" not in tree

    # `turing check`: no dead end, no undeclared wiring for the demo actors
    findings = [f for f in turing.check_pipeline() if f["actor"] in actors]
    assert [f for f in findings if f["severity"] == "error"] == []
    assert {f["check_name"] for f in findings} <= {"unfed_inbox", "disabled_with_work"}
    assert [f["actor"] for f in findings if f["check_name"] == "unfed_inbox"] == ["clean_skills"]


def test_load_pipeline_is_rerunnable(dsn: str, turing: Turing, conn: psycopg.Connection,
                                     ollama_host: str) -> None:
    runner = MiniRunner(turing, dsn, ollama_host)
    actors = loader.load_pipeline(turing, conn, limit=20)
    runner.drain(actors, models_of(turing, actors))
    first_run = one(conn, "select count(*) from taxonomy_demo.entity")

    # leave work open (discovered, one batch claimed and never completed) and load again
    actors = loader.load_pipeline(turing, conn, limit=20)
    turing.discover("clean_skills")
    assert turing.claim_batch("cpu", WORKER, 4)
    actors = loader.load_pipeline(turing, conn, limit=20)
    assert open_tickets(turing, actors) == 0
    cancelled = [t for t in turing.find_tickets(actor="clean_skills", limit=10_000)
                 if t["status"] == "cancelled"]
    assert len(cancelled) == 20

    # the new run's subjects are new: the same seed flows through again, to the same shape
    runner.drain(actors, models_of(turing, actors))
    assert one(conn, "select count(*) from taxonomy_demo.skill_journey where not finished") == 0
    assert one(conn, "select count(*) from taxonomy_demo.entity") == first_run


def test_human_review_takes_low_confidence_placements_when_enabled(
        dsn: str, turing: Turing, conn: psycopg.Connection, ollama_host: str) -> None:
    actors = loader.load_pipeline(turing, conn, limit=30)
    MiniRunner(turing, dsn, ollama_host).drain(actors, models_of(turing, actors))
    waiting = one(conn, "select count(*) from taxonomy_demo.placement where needs_review")
    assert waiting > 0
    assert "review_placement" in {f["actor"] for f in turing.check_pipeline()
                                  if f["check_name"] == "disabled_with_work"}

    turing.set_actor_enabled("review_placement", True)
    turing.discover("review_placement")
    tickets = turing.claim_batch("human", "a-person", 1000)
    assert len(tickets) == waiting
    assert all("{" not in render(t.actor.prompt_template or "", t.input) for t in tickets)
    answer = {"approve": False, "category": "Soft Skills > Communication", "note": "checked"}
    turing.complete_batch([(t.ticket_id, t.lease_token, answer) for t in tickets])
    assert one(conn, "select count(*) from taxonomy_demo.entity where status = 'reviewed'") \
        == waiting
    assert one(conn, "select count(*) from taxonomy_demo.placement "
                     "where method = 'review' and leaf = 'Soft Skills > Communication' "
                     "and not needs_review") == waiting


def test_on_complete_ignores_a_subject_that_moved_on(dsn: str, turing: Turing,
                                                     conn: psycopg.Connection,
                                                     ollama_host: str) -> None:
    actors = loader.load_pipeline(turing, conn, limit=8)
    MiniRunner(turing, dsn, ollama_host).drain(actors, models_of(turing, actors))
    before = conn.execute("select * from taxonomy_demo.skill_journey order by seq").fetchall()
    raw_id, entity_id = conn.execute(
        "select raw_skill_id::text, entity_id::text from taxonomy_demo.skill_journey "
        "where entity_id is not null order by seq limit 1").fetchone() or (None, None)
    assert raw_id and entity_id

    # a second run of finished subjects (an operator's `turing submit`) completes, changes nothing
    turing.submit("clean_skills", raw_id, {"raw_text": "something else"})
    turing.submit("classify_qwen", entity_id, {"label": "x", "aliases": "x", "slot": "A"})
    for model, output in (("cpu", {"name": "other", "rejected": True, "reason": "x"}),
                          ("qwen2.5:7b", {"category": "Soft Skills > Communication",
                                          "confidence": 1})):
        [ticket] = turing.claim_batch(model, WORKER, 10)
        assert turing.complete_ticket(ticket.ticket_id, ticket.lease_token, output)
    after = conn.execute("select * from taxonomy_demo.skill_journey order by seq").fetchall()
    assert after == before


# --------------------------------------------------------------------------------------------
# Definitions, schemas, prompts


def test_every_actor_definition_is_accepted_and_consistent(turing: Turing,
                                                           conn: psycopg.Connection) -> None:
    loader.load_pipeline(turing, conn, limit=5)  # registers every actor: each work_query valid
    definitions = load_definitions(loader.pipeline_path())
    leaves = sorted(r[0] for r in conn.execute("select leaf from taxonomy_demo.taxonomy_leaf"))
    for d in definitions:
        assert d.get("inbox") and d.get("outbox"), d.get("name")
        assert d.get("work_query") and re.search(r"\bas subject_id\b", d["work_query"]), d["name"]
        assert d.get("description"), d.get("name")
        if d.get("output_schema") is not None:
            jsonschema.Draft202012Validator.check_schema(d.get("output_schema"))
            props = d.get("output_schema")["properties"]
            if "category" in props:
                assert sorted(props["category"]["enum"]) == leaves, d.get("name")
        if d.get("prompt_template"):
            # every placeholder is a column of the work_query
            cur = conn.execute(
                sql.SQL("select * from ({}) as q limit 0").format(sql.SQL(d["work_query"])))
            columns = {c.name for c in cur.description or []}
            wanted = {m.group(1).split(".")[0] for m in _PLACEHOLDER.finditer(d["prompt_template"])
                      if m.group(1)}
            assert wanted and wanted <= columns | {"subject_id"}, (d.get("name"), wanted - columns)
        if d.get("kind") in ("llm", "script", "sql") and d.get("enabled") is not False:
            assert d.get("backoff_base") == "1 second", d.get("name")
    by_name = {d["name"]: d for d in definitions}
    assert by_name["review_placement"].get("enabled") is False
    assert by_name["classify_qwen"]["model"] != by_name["classify_llama"]["model"]


def test_seed_is_messy_and_sized_for_the_demo() -> None:
    rows = loader.seed_rows()
    assert 300 <= len(rows) <= 400
    texts = [r[2] for r in rows]
    for variant in ("JS", "JavaScript", "javascript (ES6)", "MS Excel", "ms-excel",
                    "Project mgmt"):
        assert variant in texts
    assert len(set(texts)) < len(texts)  # exact duplicates too
    assert loader.seed_rows(7) == rows[:7]


@pytest.mark.parametrize(("raw", "name"), [
    ("JavaScript", "javascript"),
    ("JS", "javascript"),
    ("javascript (ES6)", "javascript"),
    ("Javascript.", "javascript"),
    ("MS Excel", "microsoft excel"),
    ("ms-excel", "microsoft excel"),
    ("Advanced MS Excel", "microsoft excel"),
    ("Project mgmt", "project management"),
    ("Excellent communication skills!", "communication"),
    ("python3", "python"),
    ("Java 8+", "java"),
    ("ReactJS", "react.js"),
    (".NET Core", ".net core"),
    ("k8s", "kubernetes"),
])
def test_clean_skill_normalises(raw: str, name: str) -> None:
    assert clean_skill.compute({"raw_text": raw}) == {"name": name, "rejected": False,
                                                      "reason": "ok"}


@pytest.mark.parametrize("raw", ["N/A", "-", "etc.", "  ", "see above", "x" * 80])
def test_clean_skill_rejects_non_skills(raw: str) -> None:
    assert clean_skill.compute({"raw_text": raw})["rejected"] is True


def test_make_entity_labels() -> None:
    assert make_entity.compute({"name": "microsoft excel"}) == {
        "label": "Microsoft Excel", "slug": "microsoft-excel"}
    assert make_entity.compute({"name": "postgresql"})["label"] == "PostgreSQL"
    assert make_entity.compute({"name": "ci/cd"})["label"] == "CI/CD"
    assert make_entity.compute({"name": "c#"})["slug"] == "c-sharp"


def test_scripts_speak_the_stdin_protocol() -> None:
    ticket = {"ticket_id": 1, "actor": "clean_skills", "subject_id": "x",
              "input": {"raw_text": "  MS-Excel!! "}, "attempt": 1, "chain_id": 1}
    done = subprocess.run(
        [sys.executable, "-m", "turing_pg.actors.taxonomy.scripts.clean_skill"],
        input=json.dumps(ticket), capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"name": "microsoft excel", "rejected": False,
                                       "reason": "ok"}
    bad = subprocess.run(
        [sys.executable, "-m", "turing_pg.actors.taxonomy.scripts.make_entity"],
        input="not json", capture_output=True, text=True, check=False, timeout=30)
    assert bad.returncode != 0 and bad.stderr
