"""The deployment files in deploy/ name commands and options that exist: the systemd units (read
by systemd's own `systemd-analyze verify` where it is installed, and parsed here everywhere), the
compose file, its Dockerfile, and the roles its PostgreSQL init script creates, which must let
`turing db up`, `turing tick` and a runner work on a fresh cluster."""

from __future__ import annotations

import configparser
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from turing_pg.cli.runner import main as runner_command
from turing_pg.db import Turing
from turing_pg.exits import Exit

# why: the standard library reads pyproject.toml from Python 3.11 on
tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
INSTALLED_BIN = "/opt/turing/venv/bin/"
# the console scripts of this checkout, installed beside the interpreter running the tests
VENV_BIN = Path(sys.executable).parent
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def unit(name: str) -> configparser.ConfigParser:
    # why: systemd allows a key more than once (EnvironmentFile=); strict=False keeps the last,
    # which is all these checks need
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def run(*argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


@functools.cache
def runner_help() -> str:
    out = run(str(VENV_BIN / "turing-runner"), "--help")
    assert out.returncode == 0, out.stderr
    return out.stdout


def option_names(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", help_text))


def env_names(help_text: str) -> set[str]:
    """The TURING_… variables the help names ([env TURING_X, OLLAMA_HOST])."""
    names: set[str] = set()
    for group in re.findall(r"\[env ([A-Z_, \n]+)\]", help_text):
        names |= {n.strip() for n in group.replace("\n", " ").split(",")}
    return names


def check_runner_argv(argv: list[str]) -> None:
    """A turing-runner command line that only uses options the runner has."""
    assert Path(argv[0]).name == "turing-runner"
    known = option_names(runner_help())
    used = {a.split("=", 1)[0] for a in argv[1:] if a.startswith("--")}
    assert used and used <= known, sorted(used - known)


def check_turing_argv(argv: list[str]) -> None:
    """A `turing …` command line whose command exists: its --help answers."""
    assert Path(argv[0]).name == "turing"
    words = [a for a in argv[1:] if not a.startswith("-")]
    out = run(str(VENV_BIN / "turing"), *words, "--help")
    assert out.returncode == 0, (argv, out.stderr)


# -- systemd ----------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd reads the units as they are, but for the install prefix: verify checks that
    ExecStart is executable, so the copies point at this checkout's console scripts."""
    names = ["turing-runner@.service", "turing-tick.service", "turing-tick.timer"]
    for name in names:
        text = (SYSTEMD / name).read_text()
        assert INSTALLED_BIN in text or name.endswith(".timer")
        (tmp_path / name).write_text(text.replace(INSTALLED_BIN, f"{VENV_BIN}/"))
    out = run("systemd-analyze", "verify", *(f"./{n}" for n in names), cwd=tmp_path)
    said = (out.stdout + out.stderr).strip()
    assert out.returncode == 0, said
    # why: verify only warns about an unknown key or a value it cannot parse, and goes on
    mine = [line for line in said.splitlines() if "turing-" in line]
    assert not mine, said


def test_the_runner_unit_runs_the_installed_runner_on_its_instance_model() -> None:
    service = unit("turing-runner@.service")["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == INSTALLED_BIN + "turing-runner" and "turing-runner" in SCRIPTS
    assert argv[argv.index("--model") + 1] == "%I", "the model is the unit's instance name"
    check_runner_argv(argv)


def test_the_runner_unit_stops_it_the_way_its_graceful_stop_expects() -> None:
    service = unit("turing-runner@.service")["Service"]
    # SIGTERM to the runner alone, so running scripts finish within --grace
    assert service["KillMode"] == "mixed" and service["KillSignal"] == "SIGTERM"
    grace = next(p.default for p in runner_command.params if p.name == "grace")
    assert int(service["TimeoutStopSec"]) > grace
    # the exit codes that repeat at every start are not restarted in a loop
    assert service["Restart"] == "on-failure"
    assert {int(c) for c in service["RestartPreventExitStatus"].split()} \
        == {Exit.USAGE, Exit.UNKNOWN, Exit.PERMISSION}


def test_the_tick_unit_runs_turing_tick_every_minute() -> None:
    service = unit("turing-tick.service")["Service"]
    assert service["Type"] == "oneshot"
    argv = shlex.split(service["ExecStart"])
    assert argv == [INSTALLED_BIN + "turing", "tick"] and "turing" in SCRIPTS
    check_turing_argv(argv)
    timer = unit("turing-tick.timer")
    assert timer["Timer"]["Unit"] == "turing-tick.service"
    assert timer["Timer"]["OnCalendar"] == "*-*-* *:*:00"
    assert timer["Install"]["WantedBy"] == "timers.target"


# -- compose ----------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def interpolated(value: str) -> str:
    """Compose's ${VAR:-default} and ${VAR:?error} as a run would see them (defaults taken)."""
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{(\w+)(:\?[^}]*)?\}", r"value-of-\1", value)


def turing_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items()
            if s.get("image") == "turing:latest"}


def argv_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    command = command if isinstance(command, list) else shlex.split(command)
    entry = service.get("entrypoint", [])
    return [interpolated(str(a)) for a in [*entry, *command]]


def test_compose_parses_and_has_the_database_the_model_server_and_runners() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["ollama"]["image"].startswith("ollama/")
    runners = [n for n, s in turing_services().items() if argv_of(s)[0] == "turing-runner"]
    assert sorted(runners) == ["runner-cpu", "runner-gpu"]


def test_compose_commands_are_real_turing_commands_and_options() -> None:
    commands = 0
    for name, service in turing_services().items():
        argv = argv_of(service)
        if argv[:2] == ["sh", "-c"]:
            argv = shlex.split(argv[2].split(";")[1].removeprefix(" do"))  # while :; do …
        if argv[0] == "turing-runner":
            check_runner_argv(argv)
            # graceful stop: longer than --grace
            assert int(service["stop_grace_period"].rstrip("s")) > 30, name
        else:
            check_turing_argv(argv)
        commands += 1
    assert commands == 5


def test_compose_environment_names_only_settings_that_exist() -> None:
    known = env_names(runner_help()) | {"TURING_DSN"}
    for name, service in turing_services().items():
        for key in service.get("environment", {}):
            assert key in known or key == "PGPASSWORD", (name, key)
        # passwords go to libpq, never into a DSN
        assert "@" in service["environment"]["TURING_DSN"]
        assert ":${" not in service["environment"]["TURING_DSN"]


def test_the_dockerfile_copies_what_pyproject_installs() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    build = compose()["x-turing"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    copied = {w for line in dockerfile.splitlines() if line.startswith("COPY ")
              for w in line.split()[1:-1]}
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"].values()
    assert set(package_dirs) <= copied
    assert {"pyproject.toml", "README.md"} <= copied
    for path in copied:
        assert (ROOT / path).exists(), path


# -- the roles of the compose's PostgreSQL ------------------------------------------------------


@pytest.fixture
def fresh_cluster() -> Iterator[Any]:
    """A PostgreSQL cluster of its own (the init script creates cluster-wide roles)."""
    from turing_pg.pgserver import EmbeddedServer

    home = Path(tempfile.mkdtemp(prefix="turing-deploy-"))
    server = EmbeddedServer(home)
    try:
        yield server, server.ensure_running()
    finally:
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)


def test_the_init_script_roles_let_db_up_tick_and_a_runner_work(fresh_cluster: Any) -> None:
    from turing_pg.pgserver import SUPERUSER, _bin_dir

    server, info = fresh_cluster
    env = {**os.environ, "PATH": f"{_bin_dir()}{os.pathsep}{os.environ['PATH']}",
           "PGHOST": "127.0.0.1", "PGPORT": str(info.port), "POSTGRES_USER": SUPERUSER,
           "TURING_INSTALLER_PASSWORD": "i-pw", "TURING_RUNNER_PASSWORD": "r-pw",
           "TURING_ADMIN_PASSWORD": "a-pw"}
    for script in sorted((DEPLOY / "postgres-init").iterdir()):
        out = run("sh", str(script), env=env)
        assert out.returncode == 0, out.stderr
    services = turing_services()

    def as_service(name: str) -> dict[str, str]:
        dsn = services[name]["environment"]["TURING_DSN"].replace(
            "@postgres:5432/", f"@127.0.0.1:{info.port}/")
        return {**os.environ, "TURING_DSN": dsn, "TURING_HOME": str(server.home)}

    up = run(str(VENV_BIN / "turing"), "db", "up", env=as_service("turing-init"))
    assert up.returncode == 0, up.stdout + up.stderr
    tick = run(str(VENV_BIN / "turing"), "tick", env=as_service("tick"))
    assert tick.returncode == 0, tick.stdout + tick.stderr
    # the operator's login registers an actor and submits work; the runner's login runs it
    with Turing(as_service("turing")["TURING_DSN"]) as admin:
        admin.register_actor({"name": "echo", "kind": "script", "script": "cat"})
        admin.submit("echo", "s1", {"x": 1})
    # why: --stage develop: the actor was just registered (develop); the compose's runners run
    # production versions, which is what the gates are for (tests/test_raq_gates.py)
    runner = run(str(VENV_BIN / "turing-runner"), "--model", "cpu", "--exit-when-idle", "0.5",
                 "--poll-interval", "0.2", "--log-format", "json", "--stage", "develop",
                 env=as_service("runner-cpu"))
    assert runner.returncode == 0, runner.stderr
    # why: `finish` is logged once the database accepted the completion
    assert '"event": "finish"' in runner.stderr
