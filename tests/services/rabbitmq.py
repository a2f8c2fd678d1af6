"""Session fixture: a real RabbitMQ node (Debian's rabbitmq-server) with the management plugin, in a temp dir on
free ports: its own node name, Mnesia and log dirs, Erlang cookie and HOME, and its own epmd on a private port
(stopped at the end with the node), all listening on loopback only."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.amqp_io import AmqpConnection
from tests.services.process import ServerProcess, ServerStartError, free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
EPMD = "/usr/bin/epmd"
ERL_CALL = "/usr/lib/erlang/bin/erl_call"


@dataclass(frozen=True)
class RabbitMQServer:
    host: str
    amqp_port: int
    api_port: int
    user: str
    password: str
    node: str
    dir: Path
    env: dict[str, str] = field(repr=False)

    @property
    def log_path(self) -> Path:
        return self.dir / "rabbitmq.out"

    def config(self, **extra: object) -> dict[str, object]:
        """A plugin config for this node."""
        return {"host": self.host, "port": self.api_port, "user": self.user,
                "password": {"value": self.password}} | extra

    def eval(self, expression: str, timeout_s: float = 60) -> str:
        """The value of an Erlang ``expression`` (ending in a full stop) evaluated on this node, as printed, what
        ``rabbitmqctl eval`` does, through ``erl_call`` (a C client of the Erlang distribution, in erlang-base):
        rabbitmqctl boots an Erlang VM of its own for each call, several seconds each (over 10 at load 20)."""
        cookie = (self.dir / ".erlang.cookie").read_text()
        done = subprocess.run([ERL_CALL, "-c", cookie, "-n", self.node, "-e"], input=f"{expression}\n",
                              env=self.env, capture_output=True, text=True, timeout=timeout_s)
        value = done.stdout.strip()
        if done.returncode != 0 or not value.startswith("{ok,"):
            raise RuntimeError(f"{expression} failed on {self.node}: {done.stderr or value}")
        return value.removeprefix("{ok,").removesuffix("}").strip()

    def amqp(self, name: str = "") -> AmqpConnection:
        return AmqpConnection(self.host, self.amqp_port, self.user, self.password, name=name)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://{self.host}:{self.api_port}/api", auth=(self.user, self.password),
                            timeout=10)

    def wait_for(self, what: str, check: Callable[[httpx.Client], object], timeout_s: float = 30) -> object:
        """Polls ``check()`` (with an API client) until it returns something truthy; the management API's stats
        lag the broker by up to a collection interval."""
        deadline = time.monotonic() + timeout_s
        with self.api() as api:
            while True:
                result = check(api)
                if result:
                    return result
                if time.monotonic() > deadline:
                    raise AssertionError(f"RabbitMQ never showed {what} within {timeout_s:.0f}s")
                time.sleep(0.25)


def _write_files(base: Path, amqp_port: int, api_port: int, user: str, password: str) -> None:
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{amqp_port}\n"
        f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {api_port}\n"
        "collect_statistics_interval = 1000\n"
        f"default_user = {user}\ndefault_pass = {password}\ndefault_user_tags.administrator = true\n"
        "default_permissions.configure = .*\ndefault_permissions.read = .*\ndefault_permissions.write = .*\n"
        "log.console = true\nlog.console.level = info\nlog.file = false\n")
    (base / "enabled_plugins").write_text("[rabbitmq_management].\n")
    cookie = base / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(16))
    cookie.chmod(0o400)


def start_rabbitmq(base: Path) -> tuple[ServerProcess, RabbitMQServer]:
    amqp_port, api_port, dist_port, epmd_port, ctl_port = (free_port() for _ in range(5))
    user, password = "kubestack", secrets.token_hex(8)
    node = f"ks{secrets.token_hex(3)}@localhost"
    _write_files(base, amqp_port, api_port, user, password)
    env = {"HOME": str(base), "RABBITMQ_NODENAME": node, "RABBITMQ_NODE_PORT": str(amqp_port),
           "RABBITMQ_DIST_PORT": str(dist_port), "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
           "RABBITMQ_LOG_BASE": str(base / "log"), "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
           "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
           "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
           "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
           "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"), "RABBITMQ_PID_FILE": str(base / "pid"),
           "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
           "RABBITMQ_CTL_DIST_PORT_MIN": str(ctl_port), "RABBITMQ_CTL_DIST_PORT_MAX": str(ctl_port + 10),
           "ERL_EPMD_PORT": str(epmd_port), "ERL_EPMD_ADDRESS": "127.0.0.1"}
    full_env = {**os.environ, **env}
    process = ServerProcess("rabbitmq", [str(RABBITMQ_BIN / "rabbitmq-server")], base / "rabbitmq.out", env=env,
                            cwd=base)
    server = RabbitMQServer(host="127.0.0.1", amqp_port=amqp_port, api_port=api_port, user=user, password=password,
                            node=node, dir=base, env=full_env)
    try:
        process.wait_port(api_port, timeout_s=90)
        process.wait_port(amqp_port, timeout_s=30)
        server.wait_for("its node's figures", lambda api: api.get("/nodes").json()[0].get("mem_limit"), 30)
    except (ServerStartError, AssertionError):
        stop_rabbitmq(process, server)
        raise
    return process, server


def stop_rabbitmq(process: ServerProcess, server: RabbitMQServer) -> None:
    process.stop()
    subprocess.run([EPMD, "-port", server.env["ERL_EPMD_PORT"], "-kill"], env=server.env, capture_output=True,
                   timeout=10)


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQServer]:
    process, server = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield server
    finally:
        stop_rabbitmq(process, server)


@pytest.fixture
def rabbitmq_live_config(rabbitmq_server) -> dict:
    """The session node as a target's config, for the live contract check."""
    return rabbitmq_server.config()
