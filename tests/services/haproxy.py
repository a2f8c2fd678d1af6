"""Session fixture: a real HAProxy (Debian's 2.6) on free loopback ports in a temp dir, in front of small real HTTP
backends (``http_backends``) with health checks, its runtime API on a Unix socket (level admin) and on TCP. Each
scenario has its own frontend and backend so that tests do not disturb each other:

- ``app``: two servers (s1, s2), for servers down, 5xx from one server and the server-state action;
- ``solo``: one server, stopped to take the backend down;
- ``queue``: one server with ``maxconn 1``, made slow so requests queue;
- ``limit``: a frontend with ``maxconn 3``, filled with idle connections;
- ``fault``: two servers, for the fault through the whole pipeline.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services.http_backends import HttpBackend, wait_until
from tests.services.process import ServerProcess, free_port

HAPROXY = "/usr/sbin/haproxy"
LIMIT_MAXCONN = 3
LAYOUT = {"app": ("s1", "s2"), "solo": ("s1",), "queue": ("s1",), "limit": ("s1",), "fault": ("s1", "s2")}
SERVER_OPTIONS = {"queue": "maxconn 1"}


@dataclass
class HAProxyServer:
    dir: Path
    socket: Path
    api_port: int
    config_path: Path
    frontends: dict[str, int]
    backends: dict[str, dict[str, HttpBackend]] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        """HAProxy's own output: its alerts and one httplog line per request (``log stdout``)."""
        return self.dir / "haproxy.log"

    def url(self, frontend: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.frontends[frontend]}{path}"

    def command(self, line: str) -> str:
        """One runtime API command, as an operator would send it."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_status(self, backend: str, server: str) -> str:
        for line in self.command(f"show stat be_{backend} 4 -1").splitlines()[1:]:
            fields = line.split(",")
            if len(fields) > 17 and fields[1] == server:
                return fields[17]
        raise AssertionError(f"no server be_{backend}/{server}")

    def wait_status(self, backend: str, server: str, prefix: str, timeout_s: float = 15.0) -> None:
        wait_until(lambda: self.server_status(backend, server).startswith(prefix), timeout_s,
                   f"be_{backend}/{server} {prefix}")

    @contextmanager
    def server_down(self, backend: str, server: str) -> Iterator[HttpBackend]:
        """The server stops listening until the block ends; HAProxy's checks see it DOWN, then UP again."""
        http = self.backends[backend][server]
        with http.down():
            self.wait_status(backend, server, "DOWN")
            yield http
        self.wait_status(backend, server, "UP")

    def restore(self, backend: str) -> None:
        """Every server of ``backend`` healthy, fast, in rotation and UP, with its configured maxconn."""
        for name, http in self.backends[backend].items():
            http.reset()
            self.command(f"set server be_{backend}/{name} state ready")
            self.command(f"enable health be_{backend}/{name}")
            limit = SERVER_OPTIONS.get(backend, "maxconn 0").split()[1]
            self.command(f"set maxconn server be_{backend}/{name} {limit}")
        for name in self.backends[backend]:
            self.wait_status(backend, name, "UP")


def render_config(server: HAProxyServer) -> str:
    lines = ["global", "  maxconn 200", f"  stats socket {server.socket} level admin mode 600",
             f"  stats socket ipv4@127.0.0.1:{server.api_port} level admin", "  stats timeout 10s",
             "  log stdout format raw local0",
             "defaults", "  mode http", "  log global", "  option httplog", "  timeout connect 1s",
             "  timeout client 30s", "  timeout server 10s", "  timeout queue 10s",
             "  default-server inter 200ms fall 2 rise 1"]
    for name, port in server.frontends.items():
        lines += [f"frontend fe_{name}", f"  bind 127.0.0.1:{port}", f"  default_backend be_{name}"]
        if name == "limit":
            lines.append(f"  maxconn {LIMIT_MAXCONN}")
        lines += [f"backend be_{name}", "  balance roundrobin", "  option httpchk GET /health"]
        lines += [f"  server {s} {http.address} check {SERVER_OPTIONS.get(name, '')}".rstrip()
                  for s, http in server.backends[name].items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def haproxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxyServer]:
    base = tmp_path_factory.mktemp("haproxy")
    server = HAProxyServer(dir=base, socket=base / "admin.sock", api_port=free_port(), config_path=base / "haproxy.cfg",
                           frontends={name: free_port() for name in LAYOUT})
    server.backends = {name: {s: HttpBackend(f"{name}-{s}").start() for s in servers}
                       for name, servers in LAYOUT.items()}
    server.config_path.write_text(render_config(server))
    subprocess.run([HAPROXY, "-c", "-q", "-f", str(server.config_path)], check=True)
    process = ServerProcess("haproxy", [HAPROXY, "-db", "-f", str(server.config_path)], server.log_path)
    try:
        process.wait_port(server.api_port, timeout_s=20)
        for backend, servers in LAYOUT.items():
            for name in servers:
                server.wait_status(backend, name, "UP")
        yield server
    finally:
        process.stop()
        for servers in server.backends.values():
            for http in servers.values():
                http.stop()


@pytest.fixture
def haproxy_live_config(haproxy_server: HAProxyServer) -> dict:
    """The session HAProxy as a target's config, for the live contract check."""
    return {"socket": str(haproxy_server.socket), "config_path": str(haproxy_server.config_path)}
