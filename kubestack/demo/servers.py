"""The demo's own servers on this machine, for ``kubestack demo up``: a Redis, a PostgreSQL, a MariaDB and a
single-node Kafka broker (the demo pauses it in ``kafka-pause``: never the stack's own broker), each on a free
loopback port in ``<home>/demo``, from the Debian packages ``deploy/scripts/system-deps.sh`` installs. Each is
started in its own session and stopped (SIGTERM, then SIGKILL) when the demo stops."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pymysql

from kubestack.demo.config import DemoConfig, Endpoint
from kubestack.demo.schema import setup_mariadb, setup_postgresql
from kubestack.errors import KubestackError

log = logging.getLogger(__name__)

REDIS = "/usr/bin/redis-server"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
MARIADBD, INSTALL_DB = "/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db"
PG_OS_USER = "postgres"
DEMO_USER = "shop"
MONITOR_USER = "kubestack"


class DemoStartError(KubestackError):
    """A server of the demo did not start; the message says which and ends with its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Process:
    name: str
    proc: subprocess.Popen
    log_path: Path

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no output)"

    def wait_port(self, port: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoStartError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            if _listening(port):
                return
            time.sleep(0.1)
        raise DemoStartError(f"{self.name} did not listen on {port} in {timeout_s:.0f}s:\n{self.tail()}")

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def spawn(name: str, argv: list[str], log_path: Path, *, user: str | None = None) -> Process:
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return Process(name, proc, log_path)


def _check(argv: list[str], what: str, timeout: float = 120) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise DemoStartError(f"{what}: {argv[0]} is not installed (deploy/scripts/system-deps.sh installs it)") from exc
    if result.returncode != 0:
        raise DemoStartError(f"{what} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


@dataclass
class DemoServers:
    """What ``running_servers`` started: the demo's config (with passwords) and the monitoring logins."""

    config: DemoConfig
    monitor_password: str
    logs: dict[str, Path]
    broker_pid: int | None = None
    processes: list[Process] = field(default_factory=list)

    def targets(self) -> list[dict]:
        """The agent targets watching the demo: its two parts and its four servers."""
        c, secret = self.config, {"value": self.monitor_password}
        rhythm = {"interval": 5, "health_interval": 5, "config_interval": 30}
        return [
            # each part's own listener as its address: a server seen at "127.0.0.1:port" is then that one alone
            {"type": "http", "name": "demo-shop", **rhythm, "labels": {"address": f"{c.app_host}:{c.app_port}"},
             "config": {"url": f"{c.app_url}/metrics"}},
            {"type": "http", "name": "demo-order-writer", **rhythm,
             "labels": {"address": f"{c.app_host}:{c.consumer_metrics_port}"},
             "config": {"url": f"http://{c.app_host}:{c.consumer_metrics_port}/metrics",
                        "requests_metric": "demo_events_total", "latency_metric": "demo_event_duration_seconds",
                        "min_requests": 1}},
            {"type": "redis", "name": "demo-cache", **rhythm,
             "config": {"host": c.redis.host, "port": c.redis.port, "password": {"value": c.redis.password
                                                                                  .get_secret_value()},
                        "log_path": str(self.logs["redis"])}},
            {"type": "postgresql", "name": "demo-db", **rhythm,
             "config": {"host": c.postgresql.host, "port": c.postgresql.port, "dbname": c.postgresql.database,
                        "user": MONITOR_USER, "password": secret, "log_path": str(self.logs["postgresql"])}},
            {"type": "mysql", "name": "demo-orders-db", **rhythm,
             "config": {"host": c.mariadb.host, "port": c.mariadb.port, "user": MONITOR_USER, "password": secret,
                        "log_path": str(self.logs["mariadb"])}},
            {"type": "kafka", "name": "demo-events", **rhythm, "labels": {"address": c.kafka_bootstrap},
             "config": {"bootstrap": c.kafka_bootstrap, "groups": [c.group], "lag_high": 500}},
        ]


def _redis(base: Path, password: str) -> tuple[Process, Endpoint]:
    port, data = free_port(), base / "redis"
    data.mkdir(parents=True, exist_ok=True)
    process = spawn("redis", [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                              "--dir", str(data), "--requirepass", password, "--maxmemory", "64mb",
                              "--maxmemory-policy", "allkeys-lru"], data / "redis.log")
    process.wait_port(port)
    return process, Endpoint(port=port, password=password)


def _postgresql(base: Path, password: str, monitor: str, config: DemoConfig) -> tuple[Process, Endpoint, Path]:
    root = base / "postgresql"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        shutil.chown(root, PG_OS_USER, PG_OS_USER)
    user = PG_OS_USER if os.geteuid() == 0 else None
    prefix = ["runuser", "-u", PG_OS_USER, "--"] if user else []
    _check([*prefix, str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", "postgres", "-A", "trust", "-N",
            "--locale=C", "-E", "UTF8"], "initdb")
    (root / "data" / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    port = free_port()
    argv = [str(PG_BIN / "postgres"), "-D", str(root / "data"), "-c", f"port={port}", "-c",
            "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}", "-c", "max_connections=25",
            "-c", "fsync=off", "-c", "shared_buffers=32MB"]
    process = spawn("postgresql", argv, root / "postgres.log", user=user)
    process.wait_port(port)
    deadline = time.monotonic() + 60
    while True:
        try:
            admin = psycopg.connect(host=str(root), port=port, user="postgres", dbname="postgres", autocommit=True)
            break
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise DemoStartError(f"postgresql does not accept logins: {exc}\n{process.tail()}") from exc
            time.sleep(0.3)
    with admin:
        admin.execute(f"CREATE ROLE {DEMO_USER} LOGIN PASSWORD '{password}'")
        admin.execute(f"CREATE ROLE {MONITOR_USER} LOGIN PASSWORD '{monitor}' IN ROLE pg_monitor")
        admin.execute(f"CREATE DATABASE shop OWNER {DEMO_USER}")
    with psycopg.connect(host=str(root), port=port, user="postgres", dbname="shop", autocommit=True) as shop:
        setup_postgresql(shop, config.products, config.page_bytes)
        shop.execute(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {DEMO_USER}")
        shop.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {DEMO_USER}")
    return process, Endpoint(port=port, user=DEMO_USER, password=password, database="shop"), root / "postgres.log"


def _mariadb(base: Path, password: str, monitor: str, config: DemoConfig) -> tuple[Process, Endpoint, Path]:
    root = base / "mariadb"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    _check([INSTALL_DB, "--no-defaults", f"--datadir={root / 'data'}", "--user=root",
            "--auth-root-authentication-method=normal", "--skip-test-db"], "mariadb-install-db")
    port, sock = free_port(), root / "mariadb.sock"
    process = spawn("mariadb", [MARIADBD, "--no-defaults", f"--datadir={root / 'data'}", f"--socket={sock}",
                                f"--port={port}", "--bind-address=127.0.0.1", "--user=root",
                                f"--pid-file={root / 'mariadb.pid'}", "--innodb-buffer-pool-size=32M",
                                "--skip-name-resolve"], root / "mariadbd.log")
    process.wait_port(port)
    with pymysql.connect(unix_socket=str(sock), user="root", autocommit=True) as admin, admin.cursor() as cur:
        cur.execute("CREATE DATABASE demo")
        cur.execute(f"CREATE USER '{DEMO_USER}'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute(f"GRANT SELECT, INSERT, UPDATE ON demo.* TO '{DEMO_USER}'@'%'")
        cur.execute(f"CREATE USER '{MONITOR_USER}'@'%%' IDENTIFIED BY %s", (monitor,))
        cur.execute(f"GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO '{MONITOR_USER}'@'%'")
        cur.execute("USE demo")
        setup_mariadb(admin, config.products)
    return process, Endpoint(port=port, user=DEMO_USER, password=password, database="demo"), root / "mariadbd.log"


@contextlib.contextmanager
def running_servers(base: Path, *, rate: float) -> Iterator[DemoServers]:
    """The four servers and the demo's config, until the block ends (everything stopped, even on failure)."""
    from kubestack.deploy.kafka.launcher import LocalKafka
    from kubestack.settings import LocalKafkaSettings

    base.mkdir(parents=True, exist_ok=True)
    password, monitor = secrets.token_hex(12), secrets.token_hex(12)
    processes: list[Process] = []
    local = LocalKafkaSettings(port=free_port(), controller_port=free_port())
    broker = LocalKafka(local, base / "kafka")
    try:
        broker.up()
        redis_process, redis = _redis(base, password)
        processes.append(redis_process)
        shape = DemoConfig(redis=redis, postgresql=Endpoint(port=1), mariadb=Endpoint(port=1),
                           kafka_bootstrap=local.bootstrap, rate=rate)
        pg_process, pg, pg_log = _postgresql(base, password, monitor, shape)
        processes.append(pg_process)
        maria_process, maria, maria_log = _mariadb(base, password, monitor, shape)
        processes.append(maria_process)
        config = shape.model_copy(update={"postgresql": pg, "mariadb": maria, "app_port": free_port(),
                                          "consumer_metrics_port": free_port()})
        yield DemoServers(config, monitor, {"redis": base / "redis" / "redis.log", "postgresql": pg_log,
                                            "mariadb": maria_log}, broker.pid(), processes)
    finally:
        for process in reversed(processes):
            process.stop()
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(broker.pid(), signal.SIGCONT)
        broker.stop()
