"""`turing web` in a real headless Chromium against the real server (`turing web` in a
subprocess) while a real runner works a pipeline: counts move without a reload, a dead letter is
retried and runs, a paused actor is no longer claimed, open work is cancelled, and a viewer's
actions are refused by PostgreSQL with a sentence on the page."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import wait_for
from psycopg import sql

from turing_pg.db import Turing, UnknownActor

CHROMEDRIVER = "/usr/bin/chromedriver"
DOCS = Path(__file__).resolve().parent.parent / "docs"

# why: CI installs Debian's browser and sets TURING_REQUIRE_CHROMIUM=1, so a missing one fails
# there instead of skipping every browser test in silence.
pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and os.path.exists(CHROMEDRIVER))
    and os.environ.get("TURING_REQUIRE_CHROMIUM") != "1",
    reason="needs Debian's chromium and chromedriver (apt-get install chromium chromium-driver)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def web(dsn: str, tmp_path: Path) -> Iterator[str]:
    """`turing web` on a free loopback port, as a user starts it; its base URL."""
    port = _free_port()
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "turing_pg.cli", "web", "--port", str(port), "--dsn", dsn],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=1) as r:
                return r.status == 200
        except OSError:
            return proc.poll() is not None  # stop waiting: it exited
    try:
        wait_for(answers, timeout=30, what="turing web to answer")
        assert proc.poll() is None, (tmp_path / "web.log").read_text()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def logins(conn: psycopg.Connection) -> Iterator[dict[str, tuple[str, str]]]:
    """role -> (user, password) of a fresh login in it; the admin is also a member of the
    tests' pipeline role, as an operator would make it."""
    tag = uuid.uuid4().hex[:8]
    made = {}
    for role in ("turing_viewer", "turing_admin"):
        user, password = f"w_{tag}_{role.removeprefix('turing_')}", f"pw-{uuid.uuid4().hex}"
        conn.execute(sql.SQL("create role {} login password {} in role {}").format(
            sql.Identifier(user), sql.Literal(password), sql.Identifier(role)))
        if role == "turing_admin":
            conn.execute(sql.SQL("grant turing_test_app to {}").format(sql.Identifier(user)))
        made[role] = (user, password)
    try:
        yield made
    finally:
        for user, _ in made.values():
            conn.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                         "where usename = %s", (user,))
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(user)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(user)))


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver: Any, url: str, user: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/login")
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    wait_for(lambda: driver.current_url.endswith("/pipeline"), timeout=10,
             what=f"{user} logged in")


def text(driver: Any, css: str) -> str:
    """The text of the first element matching `css`, or '' (the live fragment may be being
    replaced at that moment)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def click(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By

    def once() -> bool:
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return True
        except Exception:
            return False
    wait_for(once, timeout=10, what=f"a {css} to click")


def flash(driver: Any) -> str:
    wait_for(lambda: text(driver, ".flash"), timeout=10, what="the action's message")
    return text(driver, ".flash")


def count(driver: Any, actor: str, cls: str) -> int:
    value = text(driver, f'#actors tr[data-actor="{actor}"] td.{cls}')
    return int(value) if value.isdigit() else -1


@pytest.fixture
def pipeline(turing: Turing, jobs: int, conn: psycopg.Connection, tmp_path: Path
             ) -> dict[str, Any]:
    """`scorer` (cat) scores the jobs and `reviewer` reviews them; `picky` fails (exit 3, no
    retry) until a flag file exists, so its ticket becomes a dead letter that a retry can bring
    through."""
    conn.execute("update public.jobs set status = 'held' where id > 60")
    conn.execute(
        """
        create function public.jobs_reviewed(p_ticket_id bigint, p_subject_id text,
                                             p_input jsonb, p_output jsonb)
        returns void language sql as $$
            update public.jobs set status = 'reviewed' where id = p_subject_id::integer
        $$
        """
    )
    flag = tmp_path / "picky-may-run"
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat", inbox=["new"], outbox=["scored"],
        work_query="select id as subject_id, title from public.jobs where status = 'new'",
        on_complete="public.jobs_scored"))
    turing.register_actor(dict(
        name="reviewer", kind="script", script="cat", inbox=["scored"], outbox=["reviewed"],
        final_outbox=["reviewed"],
        work_query="select id as subject_id, title from public.jobs where status = 'scored'",
        on_complete="public.jobs_reviewed"))
    turing.register_actor(dict(
        name="picky", kind="script", max_attempts=1,
        script=f"sh -c 'test -e {flag} || {{ echo picky refuses >&2; exit 3; }}; cat'"))
    turing.submit("picky", "p1", {"n": 1})
    return {"flag": flag}


def test_the_dashboard_follows_a_running_pipeline_and_its_actions_act(
        web: str, browser: Any, logins: dict[str, tuple[str, str]], pipeline: dict[str, Any],
        start_runner: Any, conn: psycopg.Connection, turing: Turing):
    log_in(browser, web, *logins["turing_admin"])
    browser.execute_script("window.notReloaded = true")
    assert count(browser, "scorer", "done") == 0
    runner = start_runner("--model", "cpu")

    # counts move on the open page, without a reload
    wait_for(lambda: count(browser, "scorer", "done") == 60, timeout=60,
             what="the page to show 60 scored")
    assert browser.execute_script("return window.notReloaded") is True
    assert text(browser, 'svg g.actor[data-actor="scorer"] tspan.done') == "60"
    wait_for(lambda: count(browser, "picky", "dead") == 1, timeout=30, what="picky dead")
    wait_for(lambda: count(browser, "reviewer", "done") == 60, timeout=60,
             what="the reviewer to follow the scorer")
    browser.save_screenshot(str(DOCS / "web-pipeline.png"))

    # runners: the runner with its loaded model and heartbeat
    browser.get(f"{web}/runners")
    wait_for(lambda: "running" in text(browser, "#runners td.status"), timeout=10,
             what="the runner listed as running")
    assert "cpu" in text(browser, "#runners")

    # the dead letter with its reason; retried, it runs (the flag lets it through now)
    browser.get(f"{web}/dead")
    assert "picky refuses" in text(browser, "#dead td.reason")
    pipeline["flag"].write_text("")
    click(browser, '#dead button[data-action="retry"]')
    message = flash(browser)
    assert message.startswith("dead letter ") and " retried as ticket " in message
    retried = int(message.rsplit(" ", 1)[1])
    browser.get(f"{web}/ticket/{retried}")
    wait_for(lambda: text(browser, "#ticket-status .status") == "completed", timeout=30,
             what="the retried ticket to complete, seen on its page")
    assert '"n": 1' in text(browser, "#output")
    assert "started" in text(browser, "#events") and "completed" in text(browser, "#events")

    # pause: the runner stops claiming the actor; the page shows new work waiting, live
    browser.get(f"{web}/pipeline")
    click(browser, '#actors tr[data-actor="scorer"] button[data-action="actor"]')
    assert flash(browser) == "actor scorer paused"
    last_ticket = conn.execute("select max(ticket_id) from turing.tickets").fetchone()[0]
    changed_at = time.monotonic()
    turing.submit_many("scorer", ["61", "62", "63"])
    wait_for(lambda: count(browser, "scorer", "open") == 3, timeout=2,
             what="the open count within 2 s of the change")
    seen_after = time.monotonic() - changed_at
    time.sleep(2.5)  # several claim rounds of the runner (poll 0.5 s)
    assert conn.execute(
        "select count(*) from turing.tickets where actor = 'scorer' and status <> 'pending' "
        "and ticket_id > %s", (last_ticket,)).fetchone()[0] == 0
    assert count(browser, "scorer", "open") == 3
    assert "paused" in text(browser, '#actors tr[data-actor="scorer"] td.state')

    # cancel open work: one of the waiting tickets
    browser.get(f"{web}/tickets?actor=scorer&status=pending")
    click(browser, '#tickets button[data-action="cancel"]')
    assert flash(browser).endswith("cancelled")
    wait_for(lambda: conn.execute(
        "select count(*) from turing.tickets where actor = 'scorer' and status = 'cancelled'"
    ).fetchone()[0] == 1, timeout=5, what="the ticket cancelled")

    # resume: the rest is claimed and done
    browser.get(f"{web}/pipeline")
    click(browser, '#actors tr[data-actor="scorer"] button[data-action="actor"]')
    assert flash(browser) == "actor scorer resumed"
    wait_for(lambda: count(browser, "scorer", "open") == 0
             and count(browser, "scorer", "done") == 62, timeout=30,
             what="the two waiting tickets done after the resume")

    # the other pages answer with what they show
    browser.get(f"{web}/charts")
    assert "cpu" in text(browser, ".charts") and text(browser, "#throughput td.completed")
    browser.get(f"{web}/alerts")
    assert text(browser, "#alerts")
    browser.get(f"{web}/chain/{retried}")
    assert "picky" in text(browser, "#attempts")
    runner.stop()
    assert seen_after < 2.0


def test_a_viewer_reads_every_page_and_its_actions_are_refused_with_a_sentence(
        web: str, browser: Any, logins: dict[str, tuple[str, str]], pipeline: dict[str, Any],
        turing: Turing):
    log_in(browser, web, *logins["turing_viewer"])
    for page in ("pipeline", "runners", "alerts", "charts", "dead", "tickets"):
        browser.get(f"{web}/{page}")
        assert text(browser, "p.error") == "", page
    click(browser, 'header a[href="/pipeline"]')
    click(browser, '#actors tr[data-actor="scorer"] button[data-action="actor"]')
    message = flash(browser)
    assert message.startswith("permission denied for function set_actor_enabled: needs role "
                              "turing_admin"), message
    assert "error" in browser.find_element("css selector", ".flash").get_attribute("class")
    assert turing.view("v_dashboard")[0]["enabled"] is True


def test_an_action_without_the_session_token_is_refused_and_a_superuser_cannot_log_in(
        web: str, logins: dict[str, tuple[str, str]], pipeline: dict[str, Any], turing: Turing,
        dsn: str):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    user, password = logins["turing_admin"]
    form = urllib.parse.urlencode({"user": user, "password": password}).encode()
    with opener.open(f"{web}/login", form) as r:
        assert r.url.endswith("/pipeline")
    forged = urllib.parse.urlencode({"actor": "scorer", "enabled": "false",
                                     "csrf": "guessed"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(f"{web}/action/actor", forged)
    assert refused.value.code == 403
    assert all(a["enabled"] for a in turing.view("v_dashboard"))

    superuser = psycopg.conninfo.conninfo_to_dict(dsn).get("user") or "postgres"
    form = urllib.parse.urlencode({"user": superuser, "password": "x"}).encode()
    with pytest.raises(urllib.error.HTTPError) as no:
        urllib.request.urlopen(f"{web}/login", form)
    assert no.value.code == 401
    assert "is a superuser" in no.value.read().decode()


# -- the SQL the pages read and the actions call ------------------------------------------------


def _run_and_finish(turing: Turing, actor: str, subjects: list[str], fail: bool = False
                    ) -> None:
    turing.submit_many(actor, subjects)
    turing.register_runner("sql-test", ["cpu"])
    claimed = turing.claim_batch("cpu", "sql-test", len(subjects))
    assert len(claimed) == len(subjects)
    for c in claimed:
        time.sleep(0.01)  # a run time to measure
        if fail:
            turing.fail_ticket(c.ticket_id, c.lease_token, "simulated failure", retryable=False)
        else:
            turing.complete_ticket(c.ticket_id, c.lease_token, {"ok": True})


def test_the_hourly_rollup_keeps_run_times_so_charts_read_the_same_figures_from_it(
        turing: Turing, conn: psycopg.Connection):
    turing.register_actor(dict(name="timed", kind="script", script="cat"))
    _run_and_finish(turing, "timed", ["a", "b", "c"])
    # the same three attempts, two hours earlier: a closed hour the rollup folds
    conn.execute(
        "insert into turing.ticket_history select (jsonb_populate_record("
        "null::turing.ticket_history, to_jsonb(h) || jsonb_build_object("
        "'ticket_id', h.ticket_id + 1000, 'subject_id', h.subject_id || '-old', "
        "'created_at', h.created_at - interval '2 hours', "
        "'started_at', h.started_at - interval '2 hours', "
        "'finished_at', h.finished_at - interval '2 hours'))).* "
        "from turing.ticket_history as h")
    live = turing.model_throughput(6)
    assert conn.execute("select turing.roll_up_throughput()").fetchone()[0] >= 1
    folded = conn.execute(
        "select completed, run_ms_sum, run_ms_p95 from turing.throughput_hourly").fetchone()
    assert folded[0] == 3 and folded[1] >= 30 and folded[2] >= 10
    assert turing.model_throughput(6) == live
    old, now = [r for r in live if r["model"] == "cpu"]
    assert (old["completed"], now["completed"]) == (3, 3)
    assert old["mean_ms"] == pytest.approx(now["mean_ms"]) and old["mean_ms"] >= 10
    assert old["p95_ms"] == pytest.approx(now["p95_ms"])
    assert old["tokens"] is None  # the hook for call records


def test_a_model_pauses_and_resumes_as_its_actors_and_all_dead_letters_of_an_actor_retry(
        turing: Turing):
    from turing_pg.db import UnknownActor, UnknownModel

    for name in ("one", "two"):
        turing.register_actor(dict(name=name, kind="script", script="cat", max_attempts=1))
    assert turing.set_model_enabled("cpu", False) == 2
    assert not any(a["enabled"] for a in turing.view("v_dashboard"))
    assert turing.set_model_enabled("cpu", True) == 2
    assert all(a["enabled"] for a in turing.view("v_dashboard"))
    with pytest.raises(UnknownModel):
        turing.set_model_enabled("no-such-model", False)

    _run_and_finish(turing, "one", ["x", "y"], fail=True)
    assert len(turing.dead_letters()) == 2
    assert turing.retry_all_dead("one") == 2
    assert turing.dead_letters() == []
    assert {t["subject_id"] for t in turing.find_tickets(actor="one", status="pending")} == {
        "x", "y"}
    assert turing.retry_all_dead("two") == 0
    with pytest.raises(UnknownActor):
        turing.retry_all_dead("no-such-actor")


def test_a_tickets_page_finds_by_every_filter_and_one_ticket_tells_its_lease_story(
        turing: Turing):
    turing.register_actor(dict(name="one", kind="script", script="cat"))
    _run_and_finish(turing, "one", ["x", "y"])
    turing.submit("one", "z")
    newest = [t["subject_id"] for t in turing.find_tickets(limit=3)]
    assert newest == ["z", "y", "x"]
    assert [t["subject_id"] for t in turing.find_tickets(status="completed")] == ["y", "x"]
    assert [t["status"] for t in turing.find_tickets(actor="one", subject_id="z")] == [
        "pending"]
    with pytest.raises(UnknownActor, match='unknown actor "nobody"'):
        turing.find_tickets(actor="nobody")
    done = turing.find_tickets(subject_id="x")[0]
    assert turing.find_tickets(chain_id=done["chain_id"])[0]["ticket_id"] == done["ticket_id"]
    page = turing.ticket_page(done["ticket_id"])
    assert [e["event"] for e in page["lease_events"]] == ["created", "started", "completed"]
    assert page["ticket"]["output"] == {"ok": True} and page["timings"]["run_ms"] >= 10
    assert page["call"] is None and [a["status"] for a in page["attempts"]] == ["completed"]
