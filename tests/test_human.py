"""`turing human`: a person answers human tickets at the terminal. Through the real CLI, with
the person's keystrokes on stdin."""

from __future__ import annotations

import json

import pytest
from conftest import wait_for
from test_cli_ops import run

SCHEMA = {
    "type": "object",
    "properties": {
        "approve": {"type": "boolean", "description": "true keeps the proposed placement"},
        "category": {"type": "string", "enum": ["Databases", "Web Frontend", "Soft Skills"]},
        "stars": {"type": "integer", "minimum": 1, "maximum": 5},
        "note": {"type": "string", "maxLength": 20},
    },
    "required": ["approve", "category", "stars"],
    "additionalProperties": False,
}


@pytest.fixture
def review(turing):
    turing.register_actor(dict(
        name="review", kind="human", output_schema=SCHEMA,
        prompt_template="Is {label} placed right? The models proposed {leaf}."))
    return turing


def _answers(conn) -> list[tuple[str, dict]]:
    return conn.execute("select subject_id, output from turing.tickets "
                        "where actor = 'review' and status = 'completed' order by ticket_id"
                        ).fetchall()


def test_the_person_sees_the_instructions_and_the_input_as_text(review, dsn, conn):
    review.submit("review", "1", {"label": "Wartung stürzt ab", "leaf": "Databases",
                                  "aliases": ["größe", "Maß"]})
    out = run("human", "--worker", "alice", dsn=dsn, stdin="\ny\n1\n4\n\n").stdout
    assert "Is Wartung stürzt ab placed right? The models proposed Databases." in out
    assert "label: Wartung stürzt ab" in out and '"größe"' in out
    assert "\\u00fc" not in out and "\\u00f6" not in out
    # asked field by field: the description, the enum's numbered choices
    assert "approve (required): true keeps the proposed placement" in out
    assert "    1) Databases" in out and "    3) Soft Skills" in out
    assert "saved" in out
    assert _answers(conn) == [("1", {"approve": True, "category": "Databases", "stars": 4})]


def test_an_answer_that_does_not_fit_is_asked_again_until_it_does(review, dsn, conn):
    review.submit("review", "1", {"label": "SQL", "leaf": "Databases"})
    keys = "\n".join([
        "",          # answer it
        "maybe",     # approve: not y/n
        "n",
        "7",         # category: no such choice
        "Web Frontend",  # chosen by its text
        "9",         # stars: above the maximum
        "two",       # stars: not a number
        "2",
        "a note far longer than twenty characters",  # note: too long
        "short",
    ]) + "\n"
    out = run("human", "--worker", "alice", dsn=dsn, stdin=keys).stdout
    assert "answer y or n" in out
    assert "choose a number from 1 to 3" in out
    assert "stars: 9 is greater than the maximum of 5" in out
    assert "a whole number" in out
    assert "note: 'a note far longer than twenty characters' is too long" in out
    assert _answers(conn) == [("1", {"approve": False, "category": "Web Frontend", "stars": 2,
                                     "note": "short"})]


def test_an_invalid_answer_is_never_saved(review, dsn, conn):
    review.submit("review", "1", {"label": "SQL", "leaf": "Databases"})
    # stars 9 is above the schema's maximum; the input ends before a valid one: nothing is
    # saved, and the ticket waits again
    out = run("human", "--worker", "alice", dsn=dsn, stdin="\ny\n1\n9\n\n").stdout
    assert "stars is required" in out and "saved" not in out
    assert _answers(conn) == []
    assert conn.execute("select status from turing.tickets where actor = 'review'"
                        ).fetchall() == [("pending",)]


def test_skip_shows_the_next_ticket_and_not_the_same_one_again(review, dsn, conn):
    for subject in ("1", "2"):
        review.submit("review", subject, {"label": f"skill {subject}", "leaf": "Databases"})
    out = run("human", "--worker", "alice", dsn=dsn, stdin="s\n\ny\n1\n3\n\n").stdout
    assert out.count("Is skill 1 placed right?") == 1
    assert "skipped" in out and "Is skill 2 placed right?" in out
    assert "no other human ticket waiting (1 skipped)" in out
    assert [s for s, _ in _answers(conn)] == ["2"]
    # the skipped ticket waits behind the ready work, charged nothing, and says who skipped it
    row = conn.execute("select status, attempt, error, run_after > now() from turing.tickets "
                       "where actor = 'review' and subject_id = '1'").fetchone()
    assert row == ("pending", 1, "skipped by alice", True)


def test_a_skipped_ticket_is_passed_over_for_the_rest_of_the_session(review, dsn, conn):
    review.submit("review", "1", {"label": "only one", "leaf": "Databases"})
    # skipped with no wait at all: the claim hands it back, and the session passes over it
    out = run("human", "--worker", "alice", "--skip-for", "0", dsn=dsn, stdin="s\n").stdout
    assert out.count("Is only one placed right?") == 1
    assert "no other human ticket waiting (1 skipped)" in out
    # the next session is offered it again
    out = run("human", "--worker", "bob", dsn=dsn, stdin="q\n").stdout
    assert "Is only one placed right?" in out


def test_quit_puts_the_ticket_back_as_it_was(review, dsn, conn):
    review.submit("review", "1", {"label": "SQL", "leaf": "Databases"})
    run("human", "--worker", "alice", dsn=dsn, stdin="q\n")
    assert conn.execute("select status, run_after <= now(), worker from turing.tickets "
                        "where actor = 'review'").fetchone() == ("pending", True, None)


def test_a_schema_without_fields_takes_one_json_object(turing, dsn, conn):
    turing.register_actor(dict(name="free", kind="human",
                               output_schema={"type": "object", "required": ["verdict"]}))
    turing.submit("free", "1", {"text": "Zürich"})
    out = run("human", "--worker", "alice", dsn=dsn,
              stdin='\nnot json\n["a list"]\n{"other": 1}\n{"verdict": "ok"}\n').stdout
    assert "text: Zürich" in out
    assert "not JSON" in out and "must be a JSON object" in out
    assert "'verdict' is a required property" in out
    assert conn.execute("select output from turing.tickets where actor = 'free' and "
                        "status = 'completed'").fetchone() == ({"verdict": "ok"},)


def test_status_shows_work_waiting_for_a_person_as_waiting(turing, jobs, dsn, conn,
                                                           start_runner):
    """The machines are done and their runner idles; the person's inbox has rows, which no
    runner of the person's resource would discover: the machines' runner does, and status says
    the work waits for a person instead of calling the pipeline drained."""
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", inbox=["new"], outbox=["scored"],
        work_query="select id as subject_id, title from public.jobs where status = 'new'",
        on_complete="public.jobs_scored"))
    turing.register_actor(dict(
        name="review", kind="human", inbox=["scored"], outbox=["reviewed"],
        final_outbox=["reviewed"], output_schema={"type": "object"},
        work_query="select id as subject_id, title from public.jobs where status = 'scored'"))
    start_runner("--model", "cpu")
    wait_for(lambda: conn.execute(
        "select count(*) from turing.ticket_open o join turing.actors a using (actor_id) "
        "where a.name = 'review'").fetchone()[0] == 200,
        timeout=60, what="the runner scored every job and discovered the review work")
    data = json.loads(run("status", "--json", dsn=dsn).stdout)
    alerts = {a["alert"]: a["message"] for a in data["alerts"]}
    assert "drained" not in alerts, alerts
    assert "200 ticket(s) of actor review wait for a person" in alerts["waiting_for_people"]
    text = run("status", dsn=dsn).stdout
    assert "waiting_for_people" in text and "drained" not in text
