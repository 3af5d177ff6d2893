"""Operating from psql: alerts raised by the scenario that causes them and cleared when it ends,
the pgmq inbox with good and bad messages, events for every terminal ticket, dead letters."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from conftest import wait_for

from turing_pg import schema
from turing_pg.db import UnknownTicket


def alerts(conn: psycopg.Connection) -> dict[tuple[str, str], str]:
    return {(a, s): m for a, _severity, s, m in conn.execute("select * from turing.v_alerts")}


def changes(conn: psycopg.Connection) -> set[tuple[str, str, str]]:
    return {tuple(r) for r in conn.execute("select * from turing.evaluate_alerts()")}


def events(conn: psycopg.Connection) -> list[dict]:
    rows = conn.execute("select message from pgmq.read('turing_events', 30, 1000)").fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def pipeline(turing, conn, jobs):
    """scorer (cpu) writes status 'scored', which reviewer (model gpu-a) reads."""
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", outbox=["scored"], inbox=["new"],
        work_query="select id as subject_id from public.jobs where status = 'new' and id <= 20",
        on_complete="public.jobs_scored", backoff_base="0 seconds"))
    turing.register_actor(dict(
        name="reviewer", kind="llm", model="gpu-a", prompt_template="Review {subject_id}",
        output_schema={"type": "object"}, inbox=["scored"], outbox=["reviewed"],
        final_outbox=["reviewed"],
        work_query="select id as subject_id from public.jobs where status = 'scored'"))
    return turing


def test_starvation_no_runner_for_a_model_with_work_is_raised_then_cleared(pipeline, conn):
    pipeline.discover("scorer")
    assert ("starvation", "model cpu") in alerts(conn)
    assert ("starvation", "model cpu", "raised") in changes(conn)
    assert changes(conn) == set(), "raised once, not on every evaluation"
    pipeline.register_runner("cpu-1", ["cpu"])
    assert ("starvation", "model cpu") not in alerts(conn)
    assert ("starvation", "model cpu", "cleared") in changes(conn)
    kinds = [e["event"] for e in events(conn) if e["event"].startswith("alert.")]
    assert kinds.count("alert.raised") >= 1 and "alert.cleared" in kinds


def test_starvation_gpu_idle_while_upstream_has_work(pipeline, conn):
    pipeline.register_runner("gpu-1", ["gpu-a"])
    pipeline.register_runner("cpu-1", ["cpu"])
    pipeline.discover("scorer")
    message = alerts(conn)[("starvation", "model gpu-a")]
    assert "upstream actor scorer" in message and "idle" in message
    # upstream drains; the GPU gets its work: the alert ends
    while batch := pipeline.claim_batch("cpu", "cpu-1", 50):
        pipeline.complete_batch([(b.ticket_id, b.lease_token, {}) for b in batch])
    pipeline.discover("reviewer")
    assert ("starvation", "model gpu-a") not in alerts(conn)


def test_drained_pipeline_is_reported(pipeline, conn):
    pipeline.register_runner("cpu-1", ["cpu"])
    assert "drained" in alerts(conn)[("drained", "pipeline")]
    pipeline.submit("scorer", "1")
    assert ("drained", "pipeline") not in alerts(conn)


def test_work_waiting_for_a_person_is_waiting_not_drained(pipeline, conn):
    pipeline.register_actor(dict(name="review", kind="human", output_schema={"type": "object"}))
    pipeline.register_runner("cpu-1", ["cpu"])
    pipeline.submit("review", "1")
    found = alerts(conn)
    assert ("drained", "pipeline") not in found
    assert "1 ticket(s) of actor review wait for a person" in \
        found[("waiting_for_people", "actor review")]


def test_stall_running_ticket_without_heartbeat_and_silent_runner(pipeline, conn):
    pipeline.register_runner("cpu-1", ["cpu"])
    pipeline.submit("scorer", "1")
    [t] = pipeline.claim_batch("cpu", "cpu-1", 1)
    assert not [k for k in alerts(conn) if k[0] == "stall"]
    conn.execute("update turing.ticket_open set heartbeat_at = now() - interval '1 minute', "
                 "lease_expires_at = now() - interval '1 second'")
    conn.execute("update turing.runners set last_seen_at = now() - interval '5 minutes'")
    stalls = {k: m for k, m in alerts(conn).items() if k[0] == "stall"}
    assert len(stalls) == 2, stalls
    assert any("without a heartbeat" in m for m in stalls.values())
    assert any("silent since" in m for m in stalls.values())
    pipeline.reap("test")
    pipeline.heartbeat("cpu-1")
    assert not [k for k in alerts(conn) if k[0] == "stall"]
    assert t.ticket_id


def test_failure_spike(pipeline, conn):
    pipeline.register_runner("cpu-1", ["cpu"])
    pipeline.discover("scorer")
    batch = pipeline.claim_batch("cpu", "cpu-1", 12)
    pipeline.fail_batch([(b.ticket_id, b.lease_token, "model said no", "failed", True)
                         for b in batch[:6]])
    pipeline.complete_batch([(b.ticket_id, b.lease_token, {}) for b in batch[6:]])
    message = alerts(conn)[("failure_spike", "actor scorer")]
    assert "6 of the last 12" in message and "model said no" in message


def test_unwired_outbox_until_a_consumer_or_final_declaration(turing, conn):
    turing.register_actor(dict(name="extract", kind="script", script="cat",
                                           outbox=["extracted"]))
    assert ("unwired_outbox", "actor extract -> extracted") in alerts(conn)
    turing.register_actor(dict(name="load", kind="script", script="cat",
                                           inbox=["extracted"], outbox=["loaded"],
                                           final_outbox=["loaded"]))
    assert not [k for k in alerts(conn) if k[0] == "unwired_outbox"]


def test_check_alerts_and_graph_agree_on_what_is_unwired(turing, conn):
    """One rule (v_unwired_outboxes) behind `turing check`, v_alerts and `turing graph`: an
    enabled actor's outbox that no enabled actor reads and that is not final."""
    script = {"kind": "script", "script": "cat"}
    turing.register_actor({**script, "name": "a", "outbox": ["to_disabled", "to_live", "done"],
                           "final_outbox": ["done"]})
    turing.register_actor({**script, "name": "b", "inbox": ["to_disabled"], "enabled": False})
    turing.register_actor({**script, "name": "c", "inbox": ["to_live"], "outbox": ["nowhere"]})
    turing.register_actor({**script, "name": "off", "outbox": ["dropped"], "enabled": False})
    expected = {("a", "to_disabled"), ("c", "nowhere")}

    checked = {(f["actor"], f["message"].split()[2]) for f in turing.check_pipeline()
               if f["check_name"] == "unwired_outbox"}
    alerted = {tuple(subject.removeprefix("actor ").split(" -> "))
               for alert, subject in alerts(conn) if alert == "unwired_outbox"}
    drawn = {(e["from_actor"], e["status"]) for e in turing.view("v_pipeline_edges")
             if e["edge_kind"] == "unwired"}
    assert checked == alerted == drawn == expected
    # the graph still draws the flow to the disabled reader, and the final status as final
    edges = {(e["from_actor"], e["to_actor"], e["status"], e["edge_kind"])
             for e in turing.view("v_pipeline_edges")}
    assert ("a", "b", "to_disabled", "flow") in edges
    assert ("a", None, "done", "final") in edges


# -- pgmq boundary --------------------------------------------------------------------------------
def send(conn: psycopg.Connection, message: object) -> int:
    return conn.execute("select pgmq.send('turing_inbox', %s::jsonb)",
                        (json.dumps(message),)).fetchone()[0]


def test_a_running_runner_drains_the_inbox_without_cron(pipeline, conn, start_runner):
    """No `turing tick`: the runner's maintenance drains the pgmq inbox within a second or
    two, and the ticket it makes is run."""
    start_runner("--model", "cpu")
    time.sleep(1)  # the runner is up and idle
    sent = time.monotonic()
    send(conn, {"actor": "scorer", "subject_id": "150", "input": {"why": "rush"}})
    wait_for(lambda: conn.execute("select count(*) from turing.tickets where source = 'inbox'"
                                  ).fetchone()[0] == 1, timeout=10, what="the inbox ticket")
    assert time.monotonic() - sent < 3
    assert conn.execute("select count(*) from pgmq.q_turing_inbox").fetchone()[0] == 0
    wait_for(lambda: conn.execute("select scored_times from public.jobs where id = 150"
                                  ).fetchone()[0] == 1, what="the inbox ticket to run")


def test_inbox_accepts_good_messages_and_keeps_bad_ones_with_the_reason(pipeline, conn):
    good = send(conn, {"actor": "scorer", "subject_id": "5", "input": {"why": "rush"},
                       "priority": 9})
    unknown = send(conn, {"actor": "ghost", "subject_id": "1"})
    shapeless = send(conn, ["not", "an", "object"])
    missing = send(conn, {"actor": "scorer"})
    duplicate = send(conn, {"actor": "scorer", "subject_id": "5"})
    root = pipeline.submit("scorer", "7")
    loop = send(conn, {"actor": "scorer", "subject_id": "7", "parent_ticket_id": root})
    result = {r[0]: (r[1], r[2]) for r in conn.execute("select * from turing.drain_inbox()")}
    assert result[good][0] is not None and result[good][1] is None
    ticket = conn.execute("select input, priority, source from turing.tickets where ticket_id = %s",
                          (result[good][0],)).fetchone()
    assert ticket == ({"why": "rush"}, 9, "inbox")
    assert 'unknown actor "ghost"' in result[unknown][1]
    assert "JSON object" in result[shapeless][1]
    assert "subject_id" in result[missing][1]
    assert "already has open ticket" in result[duplicate][1]
    assert "loop" in result[loop][1]
    # nothing lost: every message archived, every rejection kept with its reason
    archived = conn.execute("select count(*) from pgmq.a_turing_inbox").fetchone()[0]
    assert archived == 6
    assert conn.execute("select count(*) from pgmq.q_turing_inbox").fetchone()[0] == 0
    assert conn.execute("select count(*) from turing.inbox_rejections").fetchone()[0] == 5
    assert sum(1 for e in events(conn) if e["event"] == "inbox.rejected") == 5


def test_events_are_delivered_for_every_terminal_ticket(pipeline, conn):
    pipeline.register_actor(dict(
        name="scorer", kind="script", script="cat", work_query=None, max_attempts=2,
        backoff_base="0 seconds", on_complete="public.jobs_scored"))
    for s in ("1", "2", "3", "4"):
        pipeline.submit("scorer", s)
    a, b, c, d = pipeline.claim_batch("cpu", "w", 4)
    pipeline.complete_ticket(a.ticket_id, a.lease_token, {})
    pipeline.fail_ticket(b.ticket_id, b.lease_token, "boom")
    pipeline.fail_ticket(c.ticket_id, c.lease_token, "fatal", retryable=False)
    pipeline.cancel_ticket(d.ticket_id, "not needed")
    got = {(e["event"], e["ticket_id"]) for e in events(conn) if "ticket_id" in e}
    assert got == {
        ("ticket.completed", a.ticket_id), ("ticket.failed", b.ticket_id),
        ("ticket.dead", c.ticket_id), ("ticket.cancelled", d.ticket_id),
    }
    terminal = conn.execute("select count(*) from turing.ticket_history").fetchone()[0]
    assert terminal == len(got)


def test_events_setting_failures_only(pipeline, conn):
    conn.execute("update turing.settings set value = 'failures' where key = 'events'")
    pipeline.submit("scorer", "1")
    [t] = pipeline.claim_batch("cpu", "w", 1)
    pipeline.complete_ticket(t.ticket_id, t.lease_token, {})
    assert [e for e in events(conn) if e["event"] == "ticket.completed"] == []


def test_dead_letters_are_listed_and_retried(pipeline, conn):
    pipeline.submit("scorer", "3")
    [t] = pipeline.claim_batch("cpu", "w", 1)
    pipeline.fail_ticket(t.ticket_id, t.lease_token, "bad input", retryable=False)
    dead = conn.execute("select ticket_id, error from turing.v_dead_letters").fetchall()
    assert dead == [(t.ticket_id, "bad input")]
    new_id = pipeline._value("select turing.retry_dead(%s)", (t.ticket_id,))
    assert conn.execute("select count(*) from turing.v_dead_letters").fetchone()[0] == 0
    assert conn.execute("select status, attempt from turing.tickets where ticket_id = %s",
                        (new_id,)).fetchone() == ("pending", 1)
    with pytest.raises(UnknownTicket):
        pipeline._value("select turing.retry_dead(%s)", (t.ticket_id,))


UNHANDLED_DEAD = """
    select h.ticket_id, h.subject_id, h.error from turing.ticket_history as h
    where h.status = 'dead'
    and not exists (select from turing.ticket_open as o
                    where o.actor_id = h.actor_id and o.subject_id = h.subject_id)
    and not exists (select from turing.ticket_history as l where l.actor_id = h.actor_id
                    and l.subject_id = h.subject_id and l.ticket_id > h.ticket_id)
"""


def test_dead_letters_table_follows_the_history(pipeline, conn, dsn):
    """turing.dead_letters (behind v_dead_letters) always equals the dead attempts with no later
    ticket for the same actor and subject: after deaths, retries, a new submit, a second death,
    retention, and a db up that finds it wrong."""
    def listed() -> set[tuple]:
        return set(conn.execute(
            "select ticket_id, subject_id, error from turing.v_dead_letters").fetchall())

    def reference() -> set[tuple]:
        return set(conn.execute(UNHANDLED_DEAD).fetchall())

    # claim_batch discovers a ticket for every new job; four of them die
    batch = pipeline.claim_batch("cpu", "w", 4)
    for b in batch:
        pipeline.fail_ticket(b.ticket_id, b.lease_token, f"bad {b.subject_id}", retryable=False)
    dead = {b.subject_id: b.ticket_id for b in batch}
    s1, s2, s3, s4 = sorted(dead)
    assert listed() == reference() and len(listed()) == 4

    retry = pipeline._value("select turing.retry_dead(%s)", (dead[s1],))  # a retry handles it
    pipeline.submit("scorer", s2)  # so does a new ticket for the same work
    assert {r[1] for r in listed()} == {s3, s4}
    assert listed() == reference()

    [t] = [b for b in pipeline.claim_batch("cpu", "w", 50) if b.ticket_id == retry]
    pipeline.fail_ticket(t.ticket_id, t.lease_token, "bad again", retryable=False)
    assert (retry, s1, "bad again") in listed()  # the retry died: a new dead letter
    assert listed() == reference()

    conn.execute("update turing.retention set keep = interval '0 seconds' where status = 'dead'")
    conn.execute("select turing.prune_history()")
    assert listed() == reference() == set()
    conn.execute("update turing.retention set keep = null where status = 'dead'")

    running = conn.execute(
        "select ticket_id, lease_token, subject_id from turing.ticket_open "
        "where status = 'running' order by ticket_id limit 2").fetchall()
    for ticket_id, lease, subject in running:
        pipeline.fail_ticket(ticket_id, lease, f"bad {subject}", retryable=False)
    assert listed() == reference()
    assert {r[1] for r in listed()} == {subject for _, _, subject in running}
    # db up re-applies definitions and rewrites no data: a row written by hand stays
    conn.execute("insert into turing.dead_letters select 999999, actor_id, 'ghost', model, 1, "
                 "'failed', 'by hand', now(), 1 from turing.actors where name = 'scorer'")
    schema.upgrade(dsn)
    assert listed() - reference() == {(999999, "ghost", "by hand")}


def test_upgrading_from_before_the_dead_letters_table_fills_it_once(empty_dsn):
    """A database last upgraded before migration 0007 gets its dead letters listed: migration
    0008 fills turing.dead_letters from the history (the re-applied files no longer do)."""
    schema.upgrade(empty_dsn, up_to=6, reapply=False)
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        c.execute("insert into turing.actors (name, kind, model, script) "
                  "values ('old', 'script', 'cpu', 'cat')")
        # a: dead, then tried again (handled); b: dead (the one dead letter); c: completed
        for ticket_id, subject, status in ((1, "a", "dead"), (2, "a", "failed"),
                                           (3, "b", "dead"), (4, "c", "completed")):
            c.execute(
                "insert into turing.ticket_history (ticket_id, actor_id, model, subject_id, "
                "status, attempt, priority, input, error, failure_kind, source, chain_id, "
                "chain_depth, created_at, run_after, finished_at) select %s, actor_id, 'cpu', "
                "%s, %s, 1, 0, '{}', 'boom', case when %s = 'dead' then 'failed' end, "
                "'submit', %s, 0, now(), now(), now() from turing.actors",
                (ticket_id, subject, status, status, ticket_id))
    schema.upgrade(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        assert c.execute("select ticket_id, subject_id from turing.v_dead_letters").fetchall() \
            == [(3, "b")]


def test_dashboard_and_runner_views(pipeline, conn):
    pipeline.register_runner("cpu-1", ["cpu"], concurrency=4)
    pipeline.discover("scorer")
    batch = pipeline.claim_batch("cpu", "cpu-1", 5)
    pipeline.complete_batch([(b.ticket_id, b.lease_token, {}) for b in batch[:3]])
    row = conn.execute(
        "select pending, running, done_last_hour, rate_per_min > 0, eta is not null "
        "from turing.v_dashboard where actor = 'scorer'"
    ).fetchone()
    assert row == (15, 2, 3, True, True)
    runner = conn.execute(
        "select alive, in_flight, current_model from turing.v_runners where worker = 'cpu-1'"
    ).fetchone()
    assert runner == (True, 2, "cpu")
    hourly = conn.execute(
        "select sum(completed) from turing.v_throughput_hourly where actor = 'scorer'"
    ).fetchone()[0]
    assert hourly == 3
    pipeline.tick()
    rates = conn.execute(
        "select finished_7d, failure_rate_7d from turing.v_failure_rates where actor = 'scorer'"
    ).fetchone()
    assert rates == (3, 0)


def test_throughput_hourly_reads_the_rollup_and_stays_exact(pipeline, conn):
    """v_throughput_hourly gives the same counts before and after tick() folds closed hours into
    turing.throughput_hourly, and counts attempts that finish after the fold."""
    actor_id = conn.execute(
        "select actor_id from turing.actors where name = 'scorer'").fetchone()[0]

    def finish(ticket_id: int, status: str, ago: str) -> None:
        kind = "failed" if status == "dead" else None
        conn.execute(
            "insert into turing.ticket_history (ticket_id, actor_id, model, subject_id, status, "
            "attempt, priority, input, failure_kind, source, chain_id, chain_depth, created_at, "
            "run_after, started_at, finished_at) select %s, %s, 'cpu', %s, %s, 1, 0, '{}', %s, "
            "'submit', %s, 0, t, t, t, t from (select now() - %s::interval as t) as x",
            (ticket_id, actor_id, f"s{ticket_id}", status, kind, ticket_id, ago))

    statuses = ["completed", "completed", "failed", "timed_out", "dead", "cancelled"]
    ticket = 900_000
    for ago in ("30 hours", "23 hours", "5 hours", "3 hours", "2 hours"):
        for status in statuses:
            ticket += 1
            finish(ticket, status, ago)

    def view() -> set[tuple]:
        return set(conn.execute(
            "select hour, completed, failed from turing.v_throughput_hourly "
            "where actor = 'scorer'").fetchall())

    def counted() -> set[tuple]:
        return set(conn.execute(
            "select date_trunc('hour', finished_at), count(*) filter (where status = 'completed'), "
            "count(*) filter (where status in ('failed', 'timed_out', 'dead')) "
            "from turing.ticket_history where actor_id = %s "
            "and finished_at >= date_trunc('hour', now()) - interval '24 hours' group by 1",
            (actor_id,)).fetchall())

    expected = counted()
    assert len(expected) == 4 and all(row[1:] == (2, 3) for row in expected)
    assert view() == expected  # nothing rolled up yet: all counted from the history
    assert conn.execute("select rolled_through from turing.throughput_watermark").fetchone() \
        == (None,)

    result = pipeline.tick()
    assert result["throughput_rows"] == 4  # the four hours of the window, all closed
    rolled = set(conn.execute(
        "select hour, completed, failed from turing.throughput_hourly where actor_id = %s",
        (actor_id,)).fetchall())
    assert rolled == expected, "the rollup holds the closed hours of the window"
    assert view() == expected
    # the view reads closed hours from the rollup, not from the history
    with conn.transaction():
        conn.execute("update turing.throughput_hourly set completed = completed + 100")
        assert {r[1] for r in view()} == {102}
        conn.execute("update turing.throughput_hourly set completed = completed - 100")

    # attempts that finish after the fold are counted live
    finish(999_001, "completed", "0 seconds")
    finish(999_002, "failed", "0 seconds")
    assert view() == counted() != expected
    # folding again changes nothing, and never counts an hour twice
    conn.execute("select turing.roll_up_throughput()")
    assert view() == counted()


def test_tick_drains_the_inbox_and_evaluates_alerts(pipeline, conn):
    send(conn, {"actor": "scorer", "subject_id": "11"})
    result = pipeline.tick()
    assert result["inbox"] == 1 and result["alert_changes"] >= 1
    assert conn.execute("select count(*) from turing.alert_state").fetchone()[0] >= 1
    time.sleep(0)  # results are committed: the next tick sees no new change
    assert pipeline.tick()["alert_changes"] == 0
