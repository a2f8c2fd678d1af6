"""Session fixture: a real MariaDB server with real authentication, on a free port in a temp dir.

The plugin logs in as a monitoring user with only the grants it documents (PROCESS, BINLOG MONITOR,
SLAVE MONITOR); tests that create conditions (locks, connections, a replica) use ``admin()``, root over the
socket."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from tests.services.process import ServerProcess, ServerStartError, free_port

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
MONITOR_GRANTS = "PROCESS, BINLOG MONITOR, SLAVE MONITOR"
REPLICATION_PASSWORD = "repl-" + secrets.token_hex(6)


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
def running_mariadb(base: Path, *, server_id: int = 1, password: str | None = None,
                    options: tuple[str, ...] = ()) -> Iterator[MariadbServer]:
    """A fresh server under ``base`` (also used by the benchmarks), stopped on exit; ``options`` are more
    mariadbd options (binary logging, a relay log)."""
    datadir, sock, port = base / "data", base / "mariadb.sock", free_port()
    _install(datadir)
    process = ServerProcess("mariadbd", [
        MARIADBD, "--no-defaults", f"--datadir={datadir}", f"--socket={sock}", f"--port={port}",
        "--bind-address=127.0.0.1", "--user=root", f"--pid-file={base / 'mariadb.pid'}", f"--server-id={server_id}",
        "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=2", "--skip-name-resolve", *options,
    ], base / "mariadbd.log")
    try:
        process.wait_port(port, timeout_s=60)
        server = MariadbServer(host="127.0.0.1", port=port, socket=sock, user="kubestack",
                               password=password or secrets.token_hex(8), datadir=datadir)
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


@dataclass(frozen=True)
class MariadbPair:
    """A primary writing binary logs and a replica streaming them over loopback (file/position replication, no
    GTID); one monitoring user with one password on both, so a plugin on the replica can read its primary."""

    primary: MariadbServer
    replica: MariadbServer

    def replica_status(self) -> dict:
        with self.replica.admin() as admin, admin.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            return cur.fetchone() or {}

    def wait_caught_up(self, timeout_s: float = 30.0) -> None:
        """Until the replica has read and applied everything the primary logged so far."""
        with self.primary.admin() as admin, admin.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            file, position = cur.fetchone()[:2]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.replica_status()
            if (status.get("Relay_Master_Log_File"), status.get("Exec_Master_Log_Pos")) == (file, position):
                return
            time.sleep(0.1)
        raise ServerStartError(f"the replica did not reach {file}:{position} in {timeout_s} s: {self.replica_status()}")

    def restart_replication(self) -> None:
        """Point the replica at the primary's current position again (after its stream was lost on purpose)."""
        with self.replica.admin() as admin, admin.cursor() as cur:
            cur.execute("STOP SLAVE")
            cur.execute("RESET SLAVE")
        _replicate(self.primary, self.replica)


def _replicate(primary: MariadbServer, replica: MariadbServer) -> None:
    with primary.admin() as admin, admin.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY %s", (REPLICATION_PASSWORD,))
        cur.execute("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
        cur.execute("SHOW MASTER STATUS")
        file, position = cur.fetchone()[:2]
    with replica.admin() as admin, admin.cursor() as cur:
        cur.execute("CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %s, MASTER_USER = 'repl', "
                    "MASTER_PASSWORD = %s, MASTER_LOG_FILE = %s, MASTER_LOG_POS = %s, MASTER_USE_GTID = no, "
                    "MASTER_CONNECT_RETRY = 1",
                    (primary.port, REPLICATION_PASSWORD, file, position))
        cur.execute("START SLAVE")


@contextlib.contextmanager
def replicating_pair(base: Path, *, primary_options: tuple[str, ...] = ()) -> Iterator[MariadbPair]:
    """A primary (server-id 1, binary log ``mariadb-bin`` in its datadir) and its replica (server-id 2), stopped
    on exit; both created fresh, so the replica starts from the primary's position after both were set up."""
    password = secrets.token_hex(8)
    with running_mariadb(base / "primary", password=password,
                         options=("--log-bin=mariadb-bin", "--binlog-format=ROW", *primary_options)) as primary, \
            running_mariadb(base / "replica", server_id=2, password=password,
                            options=("--relay-log=relay-bin",)) as replica:
        _replicate(primary, replica)
        pair = MariadbPair(primary, replica)
        pair.wait_caught_up()
        yield pair


@pytest.fixture(scope="session")
def mariadb_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariadbPair]:
    """A replicating pair for tests that read it (drift): a test that breaks replication starts its own."""
    with replicating_pair(tmp_path_factory.mktemp("mariadb-pair")) as pair:
        yield pair
