"""Session fixture: a real MariaDB server with real authentication, on a free port in a temp dir.

The plugin logs in as a monitoring user with only the grants it documents (PROCESS, BINLOG MONITOR,
SLAVE MONITOR); tests that create conditions (locks, connections, a replica) use ``admin()``, root over the
socket."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from tests.services.process import ServerProcess, ServerStartError, free_port

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
MONITOR_GRANTS = "PROCESS, BINLOG MONITOR, SLAVE MONITOR"


@dataclass(frozen=True)
class MariadbServer:
    host: str
    port: int
    socket: Path
    user: str
    password: str
    datadir: Path

    @property
    def log_path(self) -> Path:
        """The error log (stderr): '<Date> <Time> <Thread> [<Level>] <Content>', warnings included
        (log_warnings=2 by default: failed logins and aborted connections)."""
        return self.datadir.parent / "mariadbd.log"

    def admin(self) -> pymysql.connections.Connection:
        return pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True)

    def connect(self, **kwargs: object) -> pymysql.connections.Connection:
        """A connection of the monitoring user over TCP (counts in Threads_connected like any client)."""
        return pymysql.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               autocommit=True, **kwargs)


def _install(datadir: Path) -> None:
    result = subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={datadir}", "--user=root",
                             "--auth-root-authentication-method=normal", "--skip-test-db"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ServerStartError(f"mariadb-install-db exited {result.returncode}:\n{result.stdout}\n{result.stderr}")


@contextlib.contextmanager
def running_mariadb(base: Path) -> Iterator[MariadbServer]:
    """A fresh server under ``base`` (also used by the benchmarks), stopped on exit."""
    datadir, sock, port = base / "data", base / "mariadb.sock", free_port()
    _install(datadir)
    process = ServerProcess("mariadbd", [
        MARIADBD, "--no-defaults", f"--datadir={datadir}", f"--socket={sock}", f"--port={port}",
        "--bind-address=127.0.0.1", "--user=root", f"--pid-file={base / 'mariadb.pid'}", "--server-id=1",
        "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=2", "--skip-name-resolve",
    ], base / "mariadbd.log")
    try:
        process.wait_port(port, timeout_s=60)
        server = MariadbServer(host="127.0.0.1", port=port, socket=sock, user="kubestack",
                               password=secrets.token_hex(8), datadir=datadir)
        with server.admin() as admin, admin.cursor() as cur:
            cur.execute("CREATE USER 'kubestack'@'%%' IDENTIFIED BY %s", (server.password,))
            cur.execute(f"GRANT {MONITOR_GRANTS} ON *.* TO 'kubestack'@'%'")
            cur.execute("CREATE DATABASE shop")
        yield server
    finally:
        process.stop()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariadbServer]:
    with running_mariadb(tmp_path_factory.mktemp("mariadb")) as server:
        yield server
