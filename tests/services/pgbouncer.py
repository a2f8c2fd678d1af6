"""Session fixture: a real PgBouncer (Debian's 1.18) on a free port in front of the session's PostgreSQL.

PgBouncer refuses to run as root, so it runs as the ``postgres`` OS user in a directory under /tmp that it owns.
It pools two databases: ``shop`` (the real one, pool size 2, for the waiting-clients fault) and ``spare`` (the same
database under another name, for the actions that pause and kill one pool); ``running_pgbouncer(..., gone=True)``
adds ``gone``, whose backend port has nothing listening (a backend that is down). The plugin logs in to the
admin console as ``pgb_admin`` (an ``admin_users`` member: it may SET, PAUSE, RESUME, KILL); ``pgb_stats`` is a
``stats_users`` member (SHOW only). Pooled clients log in as the PostgreSQL fixture's monitoring role."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.services.postgresql import SUPERUSER, PostgresServer
from tests.services.process import ServerProcess, free_port

PGBOUNCER = "/usr/sbin/pgbouncer"
ADMIN_USER = "pgb_admin"
STATS_USER = "pgb_stats"
POOL_SIZE = 2
MAX_CLIENT_CONN = 20


@dataclass(frozen=True)
class PgBouncerServer:
    host: str
    port: int
    admin_user: str
    admin_password: str
    stats_user: str
    stats_password: str
    app_user: str
    app_password: str
    dir: Path
    backend_port: int
    dead_port: int | None

    @property
    def log_path(self) -> Path:
        return self.dir / "pgbouncer.log"

    def admin(self) -> psycopg.Connection:
        """The admin console (simple query protocol only: ``ClientCursor``), autocommit."""
        return psycopg.connect(host=self.host, port=self.port, dbname="pgbouncer", user=self.admin_user,
                               password=self.admin_password, autocommit=True, cursor_factory=psycopg.ClientCursor)

    def client(self, dbname: str = "shop", **kwargs: object) -> psycopg.Connection:
        """A pooled application connection."""
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(host=self.host, port=self.port, dbname=dbname, user=self.app_user,
                               password=self.app_password, **kwargs)


def _ini(port: int, base: Path, backend: PostgresServer, dead_port: int | None) -> str:
    target = f"host={backend.host} port={backend.port}"
    gone = f"gone = host=127.0.0.1 port={dead_port} dbname=shop" if dead_port else ""
    return f"""[databases]
shop = {target} dbname={backend.dbname}
spare = {target} dbname={backend.dbname}
{gone}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir = {base}
auth_type = scram-sha-256
auth_file = {base}/userlist.txt
admin_users = {ADMIN_USER}
stats_users = {STATS_USER}
pool_mode = session
default_pool_size = {POOL_SIZE}
max_client_conn = {MAX_CLIENT_CONN}
stats_period = 2
server_login_retry = 1
server_connect_timeout = 2
query_wait_timeout = 60
logfile = {base}/pgbouncer.log
pidfile = {base}/pgbouncer.pid
"""


@contextlib.contextmanager
def running_pgbouncer(backend: PostgresServer, *, gone: bool = False) -> Iterator[PgBouncerServer]:
    base = Path(tempfile.mkdtemp(prefix="kubestack-pgbouncer-", dir="/tmp"))
    port, dead_port = free_port(), (free_port() if gone else None)
    server = PgBouncerServer(host="127.0.0.1", port=port, admin_user=ADMIN_USER, admin_password=secrets.token_hex(8),
                             stats_user=STATS_USER, stats_password=secrets.token_hex(8), app_user=backend.user,
                             app_password=backend.password, dir=base, backend_port=backend.port, dead_port=dead_port)
    (base / "pgbouncer.ini").write_text(_ini(port, base, backend, dead_port))
    (base / "userlist.txt").write_text("".join(f'"{u}" "{p}"\n' for u, p in (
        (ADMIN_USER, server.admin_password), (STATS_USER, server.stats_password),
        (backend.user, backend.password))))
    for path in (base, base / "pgbouncer.ini", base / "userlist.txt"):
        shutil.chown(path, SUPERUSER, SUPERUSER)
    (base / "userlist.txt").chmod(0o600)
    process = ServerProcess("pgbouncer", [PGBOUNCER, str(base / "pgbouncer.ini")], base / "stdout.log",
                            user=SUPERUSER)
    try:
        process.wait_port(port, timeout_s=20)
        yield server
    finally:
        process.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer_server(postgresql_server: PostgresServer) -> Iterator[PgBouncerServer]:
    with running_pgbouncer(postgresql_server) as server:
        yield server


@pytest.fixture
def pgbouncer_live_config(pgbouncer_server: PgBouncerServer) -> dict[str, object]:
    """The config the live contract check runs the PgBouncer plugin with."""
    return {"host": pgbouncer_server.host, "port": pgbouncer_server.port, "user": pgbouncer_server.admin_user,
            "password": {"value": pgbouncer_server.admin_password}}
