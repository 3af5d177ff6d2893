"""`timeout: auto`: an attempt runs with p99 x 2 of its actor's measured run time (plus the
model's measured load time when the runner's model is cold), kept between timeout_floor and
timeout_ceiling, fixed when the attempt starts; the runner, heartbeat() and reap() count the
same deadline. The run times are those of real tickets claimed, started and completed here."""

from __future__ import annotations

import math
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from conftest import wait_for

from turing_pg.actor_files import load_definitions
from turing_pg.db import InvalidActor, Turing
from turing_pg.execution import Attempt

RUNS = 20  # settings.timeout_auto_samples
RUN_S = 1.2  # how long each measured attempt runs
QUEUE_S = 1.0  # how long the measured attempts wait in the runner, claimed ahead, first


def auto_actor(**overrides) -> dict:
    return {"name": "auto", "kind": "script", "script": "cat", "model": "gpu-7b",
            "timeout": "auto", "timeout_floor": "1 second", "timeout_ceiling": "1 hour",
            **overrides}


def p99(values: list[float]) -> float:
    """percentile_cont(0.99): linear interpolation between the closest ranks."""
    xs = sorted(values)
    pos = 0.99 * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def claim_one(turing: Turing, *, cold: bool = False):
    turing.submit("auto", f"probe-{time.monotonic_ns()}")
    [ticket] = turing.claim_batch("gpu-7b", "w", 1, discover=False, cold=cold)
    assert ticket.started
    return ticket


def stored_timeout(conn: psycopg.Connection, ticket_id: int) -> timedelta:
    return conn.execute("select timeout from turing.ticket_open where ticket_id = %s",
                        (ticket_id,)).fetchone()[0]


@pytest.fixture
def measured(turing: Turing, conn: psycopg.Connection) -> float:
    """RUNS completed attempts of actor `auto` (each waited QUEUE_S claimed ahead, then ran about
    RUN_S, the last one a second longer), measured by maintain(); returns their p99 in seconds
    as computed here from ticket_history."""
    turing.register_actor(auto_actor(work_query=None))
    for n in range(RUNS):
        turing.submit("auto", str(n))
    # why: claimed ahead (not started): the queue time in the runner must not count
    tickets = turing.claim_batch("gpu-7b", "w", RUNS, start_now=0, discover=False)
    assert len(tickets) == RUNS and not any(t.started for t in tickets)
    time.sleep(QUEUE_S)
    started = turing.start_tickets("w", [(t.ticket_id, t.lease_token) for t in tickets])
    assert all(v is not None for v in started.values())
    time.sleep(RUN_S)
    outcomes = turing.complete_batch([(t.ticket_id, t.lease_token, {}) for t in tickets[:-1]])
    time.sleep(1.0)
    outcomes += turing.complete_batch([(t.ticket_id, t.lease_token, {}) for t in tickets[-1:]])
    assert all(o.accepted for o in outcomes)
    assert turing.maintain("test", 0.0)["run_times_measured"] >= 1
    runs = [r[0] for r in conn.execute(
        "select extract(epoch from finished_at - started_at)::float8 from turing.ticket_history "
        "where status = 'completed'")]
    assert len(runs) == RUNS
    return p99(runs)


def test_an_auto_timeout_is_p99_times_two_of_real_runs_between_floor_and_ceiling(
        turing, conn, measured):
    ticket = claim_one(turing)
    expected = math.ceil(2 * measured)
    assert 2 * RUN_S < expected < 2 * (RUN_S + QUEUE_S + 1.0)
    assert ticket.timeout_s == expected
    assert stored_timeout(conn, ticket.ticket_id) == timedelta(seconds=expected)

    # the floor and the ceiling bound it, read at the start: no new measurement needed
    turing.set_actor("auto", {"timeout_floor": "1 minute"})
    assert claim_one(turing).timeout_s == 60
    turing.set_actor("auto", {"timeout_floor": "1 second", "timeout_ceiling": "2 seconds"})
    assert claim_one(turing).timeout_s == 2


def test_queue_time_in_the_runner_counts_in_no_latency_figure(turing, conn, measured):
    """Every measured attempt waited QUEUE_S claimed ahead: none of it is run time, neither in
    the auto timeout's p99 nor in metrics_daily nor in v_timeout_recommendations."""
    assert measured < RUN_S + 1.0 + 0.5
    [(p99_ms,)] = conn.execute("select p99_ms from turing.actor_run_times").fetchall()
    assert p99_ms == pytest.approx(measured * 1000, abs=1)
    turing.compute_metrics()
    [(daily_p99, daily_max)] = conn.execute(
        "select p99_ms, max_ms from turing.metrics_daily").fetchall()
    assert daily_p99 == pytest.approx(measured * 1000, abs=1)
    assert daily_max < (RUN_S + 1.0 + 0.5) * 1000
    [rec] = turing.view("v_timeout_recommendations")
    assert float(rec["p99_ms"]) == pytest.approx(measured * 1000, abs=0.1)
    assert rec["recommended_timeout"] == timedelta(seconds=math.ceil(2 * measured))


def test_before_enough_runs_an_auto_timeout_is_its_ceiling(turing, conn):
    turing.register_actor(auto_actor(work_query=None, timeout_ceiling="7 minutes"))
    for n in range(RUNS - 1):
        turing.submit("auto", str(n))
    tickets = turing.claim_batch("gpu-7b", "w", RUNS, discover=False)
    assert [t.timeout_s for t in tickets] == [420] * (RUNS - 1)
    turing.complete_batch([(t.ticket_id, t.lease_token, {}) for t in tickets])
    turing.measure_run_times()
    [(samples, p99_ms)] = conn.execute(
        "select samples, p99_ms from turing.actor_run_times").fetchall()
    assert (samples, p99_ms) == (RUNS - 1, None)
    assert claim_one(turing).timeout_s == 420


def test_a_cold_model_adds_its_measured_load_time(turing, conn, measured):
    # the last 10 loads count; the longest of them is what a cold start may take
    for load_s in (30.0, 4.0, *([5.0] * 9)):
        turing.report_model_load("w", "gpu-7b", load_s)
    [(load_ms, recent)] = conn.execute(
        "select load_ms, recent_ms from turing.model_loads where model = 'gpu-7b'").fetchall()
    assert (load_ms, len(recent)) == (5000.0, 10)
    turing.report_model_load("w", "gpu-7b", 8.0)

    warm = claim_one(turing, cold=False)
    cold = claim_one(turing, cold=True)
    assert warm.timeout_s == math.ceil(2 * measured)
    assert cold.timeout_s == math.ceil(2 * measured + 8.0)
    assert stored_timeout(conn, cold.ticket_id) == timedelta(seconds=cold.timeout_s)

    # a ticket claimed ahead gets its timeout when it starts, cold or warm as the runner says
    turing.submit("auto", "ahead")
    [ahead] = turing.claim_batch("gpu-7b", "w", 1, start_now=0, discover=False)
    assert ahead.timeout_s is None and stored_timeout(conn, ahead.ticket_id) is None
    started = turing.start_tickets("w", [(ahead.ticket_id, ahead.lease_token)], cold=True)
    assert started == {ahead.ticket_id: math.ceil(2 * measured + 8.0)}
    # a repeated start keeps the timeout the attempt runs with
    again = turing.start_tickets("w", [(ahead.ticket_id, ahead.lease_token)], cold=False)
    assert again == started


def test_reap_and_heartbeat_count_the_deadline_the_runner_was_given(turing, conn):
    turing.register_actor(auto_actor(work_query=None, max_attempts=1,
                                     timeout_ceiling="2 seconds"))
    ticket = claim_one(turing)
    attempt = Attempt(ticket, time.monotonic(), threading.Event())
    attempt.started_monotonic = time.monotonic()
    assert attempt.timeout == 2.0
    assert attempt.deadline_monotonic == pytest.approx(attempt.started_monotonic + 2.0)

    # the auto value moves (here: a new ceiling) while the attempt runs: not its deadline
    turing.set_actor("auto", {"timeout_ceiling": "1 hour"})
    assert claim_one(turing).timeout_s == 3600
    started_at = conn.execute("select started_at from turing.ticket_open where ticket_id = %s",
                              (ticket.ticket_id,)).fetchone()[0]
    turing.register_runner("w", [])
    turing.heartbeat("w", [(ticket.ticket_id, ticket.lease_token)])
    expires = conn.execute("select lease_expires_at from turing.ticket_open where ticket_id = %s",
                           (ticket.ticket_id,)).fetchone()[0]
    assert expires == started_at + timedelta(seconds=2)

    wait_for(lambda: conn.execute("select clock_timestamp() > %s",
                                  (expires,)).fetchone()[0],
             what="the database clock to pass the attempt's deadline")
    turing.heartbeat("w", [(ticket.ticket_id, ticket.lease_token)])
    assert turing.reap("test") == 1
    status, error, timeout = conn.execute(
        "select status, error, timeout from turing.ticket_history where ticket_id = %s",
        (ticket.ticket_id,)).fetchone()
    assert (status, timeout) == ("dead", timedelta(seconds=2))
    assert error.startswith("timed out: the attempt ran past the actor timeout 00:00:02")


def test_register_actor_refuses_a_floor_above_the_ceiling_in_one_sentence(turing):
    with pytest.raises(InvalidActor) as refused:
        turing.register_actor(auto_actor(timeout_floor="1 hour", timeout_ceiling="5 minutes"))
    assert refused.value.message == (
        'actor "auto": timeout_floor must not be above timeout_ceiling '
        '(an auto timeout is kept between the two)')
    # the default ceiling (30 minutes) counts as well
    with pytest.raises(InvalidActor, match="timeout_floor must not be above timeout_ceiling"):
        turing.register_actor({"name": "auto", "kind": "script", "script": "cat",
                               "timeout": "auto", "timeout_floor": "1 hour"})
    with pytest.raises(InvalidActor, match="field timeout must be a duration or auto"):
        turing.register_actor(auto_actor(timeout="soon"))


def test_timeout_auto_is_written_auto_in_an_actor_file_and_survives_set_actor(turing, tmp_path):
    path = Path(tmp_path) / "auto.yaml"
    path.write_text("name: auto\nkind: script\nscript: cat\nmodel: gpu-7b\ntimeout: auto\n"
                    "timeout_floor: 45 seconds\ntimeout_ceiling: 10 minutes\n")
    [spec] = load_definitions(path)
    turing.register_actor(spec)
    turing.set_actor("auto", {"batch_size": 5})
    [definition] = [d["definition"] for d in turing.actor_definitions() if d["name"] == "auto"]
    assert (definition["timeout"], definition["timeout_floor"], definition["timeout_ceiling"]) \
        == ("auto", "00:00:45", "00:10:00")
    # a fixed timeout is stored as the interval prints, however it was written
    turing.set_actor("auto", {"timeout": 300})
    [definition] = [d["definition"] for d in turing.actor_definitions() if d["name"] == "auto"]
    assert definition["timeout"] == "00:05:00"
    assert claim_one(turing).timeout_s == 300


def test_the_runner_counts_a_model_cold_until_a_call_or_preload_warms_it_for_keep_alive():
    from turing_pg.config import RunnerConfig, keep_alive_seconds
    from turing_pg.db import ActorRuntime, ClaimedTicket
    from turing_pg.execution import Result
    from turing_pg.loop import Finished, Runner

    assert [keep_alive_seconds(v) for v in ("30m", "1h30m", "90s", "300", "-1", "soon")] \
        == [1800, 5400, 90, 300, float("inf"), 0.0]
    runner = Runner(RunnerConfig(models=["gpu-7b", "cpu"], dsn="", keep_alive="30m"))
    runner.loadable_models = {"gpu-7b"}
    assert runner._cold("gpu-7b") and not runner._cold("cpu")
    actor = ActorRuntime(1, "auto", "llm", "gpu-7b", "", None, None, None, {}, None, 30.0)
    ticket = ClaimedTicket(1, None, 1, "s", {}, 1, 1, True, actor, 40.0)  # type: ignore[arg-type]
    attempt = Attempt(ticket, time.monotonic(), threading.Event())
    runner._model_sees(Finished(attempt, Result.fault("down", backend="b"), 0.0))
    assert runner._cold("gpu-7b")  # a call that never reached the server warms nothing
    runner._model_sees(Finished(attempt, Result("completed", output={}, load_s=6.5), 7.0))
    assert not runner._cold("gpu-7b")
    assert runner.load_reports == [("gpu-7b", 6.5)]
    runner.warm_until["gpu-7b"] = time.monotonic() - 1  # keep_alive passed without a call
    assert runner._cold("gpu-7b")
    runner.pool.shutdown()
