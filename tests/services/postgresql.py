"""Session fixture: a real PostgreSQL 15 server with password (SCRAM) authentication, on a free port.

initdb and postgres refuse to run as root, so both run as the ``postgres`` OS user in a directory under /tmp
that it owns (pytest's temp dirs are root-only). The plugin logs in over TCP as a monitoring role that is only
a member of ``pg_monitor``; tests that create conditions (locks, idle transactions, replication slots) use
``admin()``, the ``postgres`` superuser over the Unix socket (trust)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.services.process import ServerProcess, ServerStartError, free_port

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
MONITOR_ROLE = "kubestack"
HBA = (
    "local all all trust\n"
    "local replication all trust\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
)


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    socket_dir: Path
    datadir: Path

    @property
    def log_path(self) -> Path:
        """The server's log: stderr, with the default log_line_prefix '%m [%p] ' (the plugin's LOG_FORMAT)."""
        return self.socket_dir / "postgres.log"

    def admin(self, dbname: str | None = None, **kwargs: object) -> psycopg.Connection:
        """A superuser connection over the Unix socket (autocommit unless told otherwise)."""
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(host=str(self.socket_dir), port=self.port, user=SUPERUSER,
                               dbname=dbname or self.dbname, **kwargs)


def as_postgres(argv: list[str], timeout: float = 120) -> None:
    result = subprocess.run(["runuser", "-u", SUPERUSER, "--", *argv], capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise ServerStartError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")


def _wait_ready(server: PostgresServer, process: ServerProcess, timeout_s: float = 60) -> None:
    """The port opens before recovery ends ("the database system is starting up"): wait for a real login."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with server.admin("postgres", connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise ServerStartError(f"postgres does not accept logins: {exc}\n{process.tail()}") from exc
            time.sleep(0.2)


@contextlib.contextmanager
def running_postgresql(name: str, **settings: str) -> Iterator[PostgresServer]:
    """A fresh cluster with the monitoring role and a ``shop`` database; ``settings`` become ``-c`` options."""
    base = Path(tempfile.mkdtemp(prefix=f"kubestack-{name}-", dir="/tmp"))
    shutil.chown(base, SUPERUSER, SUPERUSER)
    datadir, port = base / "data", free_port()
    as_postgres([str(BIN / "initdb"), "-D", str(datadir), "-U", SUPERUSER, "-A", "trust", "-N", "-E", "UTF8",
                  "--locale=C"])
    (datadir / "pg_hba.conf").write_text(HBA)
    options = {"port": str(port), "listen_addresses": "127.0.0.1", "unix_socket_directories": str(base),
               "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "shared_buffers": "32MB",
               "max_wal_senders": "4", "wal_level": "replica", **settings}
    argv = [str(BIN / "postgres"), "-D", str(datadir)]
    for key, value in options.items():
        argv += ["-c", f"{key}={value}"]
    process = ServerProcess(name, argv, base / "postgres.log", user=SUPERUSER)
    try:
        process.wait_port(port, timeout_s=60)
        server = PostgresServer(host="127.0.0.1", port=port, user=MONITOR_ROLE, password=secrets.token_hex(8),
                                dbname="shop", socket_dir=base, datadir=datadir)
        _wait_ready(server, process)
        with server.admin("postgres") as admin:
            admin.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{server.password}' IN ROLE pg_monitor")
            admin.execute("CREATE DATABASE shop")
        yield server
    finally:
        with contextlib.suppress(ServerStartError, subprocess.TimeoutExpired):
            as_postgres([str(BIN / "pg_ctl"), "stop", "-D", str(datadir), "-m", "immediate", "-w"], timeout=30)
        process.stop()
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def standby_of(primary: PostgresServer) -> Iterator[int]:
    """A streaming standby of ``primary`` on a free port (pg_basebackup -R through slot ``standby1``)."""
    base = Path(tempfile.mkdtemp(prefix="kubestack-standby-", dir="/tmp"))
    shutil.chown(base, SUPERUSER, SUPERUSER)
    port = free_port()
    as_postgres([str(BIN / "pg_basebackup"), "-h", str(primary.socket_dir), "-p", str(primary.port), "-U", SUPERUSER,
                  "-D", str(base / "data"), "-R", "-C", "-S", "standby1", "-X", "stream", "-c", "fast"])
    process = ServerProcess("standby", [str(BIN / "postgres"), "-D", str(base / "data"), "-c", f"port={port}",
                                        "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={base}",
                                        "-c", "cluster_name=standby1"], base / "standby.log", user=SUPERUSER)
    try:
        process.wait_port(port)
        yield port
    finally:
        with contextlib.suppress(Exception):
            as_postgres([str(BIN / "pg_ctl"), "stop", "-D", str(base / "data"), "-m", "immediate"], timeout=30)
        process.stop()
        shutil.rmtree(base, ignore_errors=True)
        with primary.admin() as admin:
            admin.execute("select pg_drop_replication_slot('standby1')")


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    with running_postgresql("postgresql") as server:
        yield server
