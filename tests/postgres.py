"""A throwaway PostgreSQL server on loopback, for tests that need the real database.

``PostgresCluster`` runs ``initdb`` into a fresh temporary directory and starts a server
there that listens on 127.0.0.1 only, on a port it picks, with its unix socket, data and
log inside that directory. Settings trade durability for speed (no fsync, no synchronous
commit, no full-page writes): nothing in it is meant to outlive the test run. ``stop()``
kills the server (immediate shutdown) and deletes the directory.

    with PostgresCluster() as cluster:
        url = asyncio.run(cluster.create_database())  # postgresql+asyncpg://...

``create_database`` makes an empty database; starting a cluster costs about a second.

The server binaries are found through ``pg_config --bindir``, else in the newest
``/usr/lib/postgresql/*/bin`` (Debian's layout), else on PATH. ``initdb`` and ``postgres``
refuse to run as root, and tests run as root on CI: then every server command runs as the
``postgres`` system user (Debian's postgresql package creates it) through ``runuser``, and
the temporary directory is handed to that user.

``cluster_for_session()`` is what a session fixture calls: it honours
``EXALATE_TEST_POSTGRES`` (``0``: never start one; ``1``: the server is required, fail
if it cannot be had; unset: start one if the binaries are installed).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

# asyncpg ships no type information; it is only called here, in two small places.
import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

HOST = "127.0.0.1"
"""The only address the server listens on and the only one tests connect to."""

SUPERUSER = "postgres"
"""The database superuser ``initdb`` creates; trust authentication, so no password."""

DRIVER = "postgresql+asyncpg"

ENVIRONMENT_VARIABLE = "EXALATE_TEST_POSTGRES"

_SYSTEM_USER = "postgres"
"""The operating system user the server runs as when the tests run as root."""

_DEBIAN_VERSIONS = Path("/usr/lib/postgresql")
_SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_START_TIMEOUT_SECONDS = 60
_PORT_ATTEMPTS = 3
"""Another process can take the picked port before the server binds it; pick again."""

_SETTINGS = {
    "listen_addresses": HOST,
    # Throwaway data: never wait for the disk.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # Room for concurrency tests and several engines' pools at once.
    "max_connections": "300",
}

_MISSING_BINARIES = "PostgreSQL server binaries not found; apt-get install postgresql"


class PostgresClusterError(RuntimeError):
    """The server could not be set up, started or used; the message says why."""


@dataclass(frozen=True)
class ServerBinaries:
    """Where ``initdb`` and ``pg_ctl`` are (``pg_ctl`` finds ``postgres`` beside itself)."""

    initdb: Path
    pg_ctl: Path
    postgres: Path


def find_server_binaries() -> ServerBinaries | None:
    """The server programs, or None when they are not installed.

    Looked for in ``pg_config --bindir`` (which on Debian may name a client-only
    version), then the newest ``/usr/lib/postgresql/<version>/bin``, then PATH.
    """
    for directory in (_pg_config_bindir(), *_debian_bindirs()):
        if directory is not None and _has_server_programs(directory):
            return ServerBinaries(*(directory / name for name in _SERVER_PROGRAMS))
    found = [shutil.which(name) for name in _SERVER_PROGRAMS]
    if all(found):
        return ServerBinaries(*(Path(path) for path in found if path))
    return None


def server_binaries_available() -> bool:
    """Whether a ``PostgresCluster`` can start here.

    That is: the server programs are installed and, when running as root, there is a
    ``postgres`` system user and ``runuser`` to run them as that user.
    """
    return _unavailable_reason() is None


def cluster_for_session() -> PostgresCluster | None:
    """A started cluster for a test session, or None when there is to be none.

    ``EXALATE_TEST_POSTGRES=0`` gives None. Without the server binaries this gives None
    too, unless ``EXALATE_TEST_POSTGRES=1`` demands a server; then it raises
    ``RuntimeError``. With the binaries, a cluster that fails to start raises either way:
    a broken installation should not look like a missing one.
    """
    demand = os.environ.get(ENVIRONMENT_VARIABLE, "")
    if demand not in ("", "0", "1"):
        raise RuntimeError(f"{ENVIRONMENT_VARIABLE} must be 0, 1 or unset, not {demand!r}")
    if demand == "0":
        return None
    reason = _unavailable_reason()
    if reason is not None:
        if demand == "1":
            raise RuntimeError(f"{ENVIRONMENT_VARIABLE}=1 but {reason}")
        return None
    cluster = PostgresCluster()
    cluster.start()
    return cluster


class PostgresCluster:
    """One PostgreSQL server in its own temporary directory, on 127.0.0.1.

    ``start()`` and ``stop()`` are blocking (``stop()`` also runs at interpreter exit if
    it was forgotten); the class is also a context manager. Connection URLs use the
    ``postgresql+asyncpg`` driver and the ``postgres`` superuser, without a password.
    """

    def __init__(self, binaries: ServerBinaries | None = None) -> None:
        self._binaries = binaries
        self._directory: Path | None = None
        self._port: int | None = None
        self._running = False
        self._as_postgres = os.geteuid() == 0
        self._runuser: str | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Create the data directory and start the server; wait until it accepts."""
        if self._directory is not None:
            raise PostgresClusterError("this cluster was already started")
        binaries = self._binaries or find_server_binaries()
        if binaries is None:
            raise PostgresClusterError(_MISSING_BINARIES)
        self._binaries = binaries
        owner = self._prepare_user()
        self._directory = Path(tempfile.mkdtemp(prefix="exalate-postgres-"))
        atexit.register(self.stop)
        try:
            self.socket_directory.mkdir()
            if owner is not None:
                for path in (self._directory, self.socket_directory):
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            self._initdb()
            self._write_settings()
            self._start_server()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server at once (no checkpoint) and delete its directory. Idempotent."""
        directory, self._directory = self._directory, None
        if directory is None:
            return
        atexit.unregister(self.stop)
        if self._running and self._binaries is not None:
            self._running = False
            # Immediate mode: the data is thrown away, so there is nothing to flush.
            self._run(
                [
                    str(self._binaries.pg_ctl),
                    "stop",
                    "-D",
                    str(directory / "data"),
                    "-m",
                    "immediate",
                    "-w",
                ],
                cwd=directory,
                check=False,
            )
        self._port = None
        shutil.rmtree(directory)

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it is -----------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The temporary directory holding the data, the socket and the log."""
        if self._directory is None:
            raise PostgresClusterError("the cluster is not started")
        return self._directory

    @property
    def data_directory(self) -> Path:
        return self.directory / "data"

    @property
    def socket_directory(self) -> Path:
        return self.directory / "socket"

    @property
    def log_path(self) -> Path:
        """The server's log (``pg_ctl -l``); ``log_tail()`` reads its end."""
        return self.directory / "postgres.log"

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None or not self._running:
            raise PostgresClusterError("the cluster is not running")
        return self._port

    @property
    def admin_url(self) -> str:
        """The ``postgres`` maintenance database, as the superuser."""
        return self.url("postgres")

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server, as the superuser."""
        return URL.create(
            DRIVER, username=SUPERUSER, host=HOST, port=self.port, database=database
        ).render_as_string(hide_password=False)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log ('' if there is none yet)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- databases -------------------------------------------------------------------

    async def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its SQLAlchemy URL; the name defaults to
        a unique ``test_<hex>``."""
        name = name if name is not None else f"test_{uuid.uuid4().hex}"
        await self._execute(f"CREATE DATABASE {_identifier(name)}")
        return self.url(name)

    async def _execute(self, statement: str) -> None:
        # CREATE DATABASE cannot run in a transaction block; asyncpg's execute()
        # outside a transaction sends it as a simple query, which is what psql does.
        connection = await asyncpg.connect(
            host=HOST, port=self.port, user=SUPERUSER, database="postgres", ssl=False
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    # -- internals -------------------------------------------------------------------

    def _prepare_user(self) -> pwd.struct_passwd | None:
        """The system user to run the server as, when running as root; else None."""
        if not self._as_postgres:
            return None
        reason = _root_unavailable_reason()
        if reason is not None:
            raise PostgresClusterError(reason)
        self._runuser = shutil.which("runuser")
        return pwd.getpwnam(_SYSTEM_USER)

    def _initdb(self) -> None:
        assert self._binaries is not None
        self._run(
            [
                str(self._binaries.initdb),
                "-D",
                str(self.data_directory),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=self.directory,
            what="initdb",
        )

    def _write_settings(self) -> None:
        settings = {**_SETTINGS, "unix_socket_directories": str(self.socket_directory)}
        lines = [f"{key} = {_setting(value)}" for key, value in settings.items()]
        # Appended: later lines of postgresql.conf win over initdb's. Root may write the
        # postgres user's file; appending keeps its owner.
        with (self.data_directory / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/postgres.py\n" + "\n".join(lines) + "\n")

    def _start_server(self) -> None:
        assert self._binaries is not None
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = _free_port()
            # The port is the one setting given on the command line, so that a retry
            # needs no edit of postgresql.conf; pg_ctl passes -o through a shell, which
            # a bare integer survives unquoted.
            result = self._run(
                [
                    str(self._binaries.pg_ctl),
                    "start",
                    "-D",
                    str(self.data_directory),
                    "-l",
                    str(self.log_path),
                    "-o",
                    f"-p {port}",
                    "-w",
                    "-t",
                    str(_START_TIMEOUT_SECONDS),
                ],
                cwd=self.directory,
                check=False,
            )
            if result.returncode == 0:
                self._port = port
                self._running = True
                return
            tail = self.log_tail()
            if attempt < _PORT_ATTEMPTS and "could not bind" in tail:
                continue
            # pg_ctl may have given up waiting on a server that did start.
            self._running = True
            raise PostgresClusterError(
                f"PostgreSQL did not start (pg_ctl exit status {result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n--- end of the server log ---\n{tail}"
            )

    def _run(
        self, command: list[str], *, cwd: Path, check: bool = True, what: str = ""
    ) -> subprocess.CompletedProcess[str]:
        """Run a server program, as the ``postgres`` user when we are root."""
        if self._as_postgres:
            assert self._runuser is not None
            command = [self._runuser, "-u", _SYSTEM_USER, "--", *command]
        result = subprocess.run(  # noqa: S603 -- fixed programs, arguments are paths and numbers
            command,
            cwd=cwd,
            env=_server_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_SECONDS + 30,
            check=False,
        )
        if check and result.returncode != 0:
            raise PostgresClusterError(
                f"{what or command[0]} failed (exit status {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result


def _identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier; refuses what PostgreSQL would truncate."""
    if not name or "\0" in name or len(name.encode()) > 63:
        raise ValueError(f"not a usable database name: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _setting(value: str) -> str:
    """A postgresql.conf value: a quoted string, with quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at this moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _server_environment() -> dict[str, str]:
    """This process's environment without libpq's PG* variables, in the C locale."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    environment["LC_ALL"] = "C"
    return environment


def _has_server_programs(directory: Path) -> bool:
    return all(
        (directory / name).is_file() and os.access(directory / name, os.X_OK)
        for name in _SERVER_PROGRAMS
    )


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(  # noqa: S603 -- pg_config from PATH, a fixed argument
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
        )
        return Path(result.stdout.strip())
    return None


def _debian_bindirs() -> list[Path]:
    """``/usr/lib/postgresql/<version>/bin``, newest version first."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    return sorted(_DEBIAN_VERSIONS.glob("*/bin"), key=version, reverse=True)


def _unavailable_reason() -> str | None:
    if find_server_binaries() is None:
        return _MISSING_BINARIES
    if os.geteuid() == 0:
        return _root_unavailable_reason()
    return None


def _root_unavailable_reason() -> str | None:
    """Why the server cannot be run as the postgres user from root, or None."""
    try:
        pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        return (
            f"running as root, and there is no {_SYSTEM_USER!r} system user to run the "
            "server as; apt-get install postgresql creates it"
        )
    if shutil.which("runuser") is None:
        return "running as root, and runuser (util-linux) is not installed"
    return None
