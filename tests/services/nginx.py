"""Session fixture: a real nginx (Debian's 1.22) on a free loopback port in a temp prefix, with ``stub_status``, an
access log in the plugin's format (``kubestack``: upstream status, address and times), its error log, and upstream
blocks over small real HTTP backends (``http_backends``). Each scenario has its own upstream and location:

- ``/app/`` → upstream ``app`` (s1, s2): 5xx from a server, a server refusing connections, marking one down;
- ``/slow/`` → upstream ``slow`` (s1): a slow server;
- ``/fault/`` → upstream ``fault`` (s1, s2): the fault through the whole pipeline;
- ``/static/``: files (a 404 for anything else).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services.http_backends import HttpBackend, get, wait_until
from tests.services.process import ServerProcess, free_port

NGINX = "/usr/sbin/nginx"
WORKER_CONNECTIONS = 40
UPSTREAMS = {"app": ("s1", "s2"), "slow": ("s1",), "fault": ("s1", "s2")}
LOG_FORMAT = ("log_format kubestack '$time_iso8601 $remote_addr \"$request\" $status $body_bytes_sent $request_time "
              "\"$upstream_addr\" \"$upstream_status\" \"$upstream_response_time\" \"$upstream_connect_time\" "
              "\"$http_user_agent\"';")


@dataclass
class NginxServer:
    prefix: Path
    port: int
    backends: dict[str, dict[str, HttpBackend]] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/nginx_status"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def nginx(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([NGINX, "-p", str(self.prefix), "-c", str(self.config_path), *args],
                              capture_output=True, text=True, check=True)

    def reload(self, config: str | None = None) -> None:
        """Write ``config`` (when given), test it and reload; returns once the new workers answer."""
        if config is not None:
            self.config_path.write_text(config)
        self.nginx("-t", "-q")
        self.nginx("-s", "reload")
        wait_until(lambda: get(self.status_url) == 200, 10, "nginx answering after the reload")

    def backends_answering(self, upstream: str, requests: int = 6) -> set[str]:
        """Which backends' names answer ``/<upstream>/`` over a few requests."""
        import urllib.request

        names = set()
        for _ in range(requests):
            with urllib.request.urlopen(self.url(f"/{upstream}/"), timeout=10) as response:
                names.add(response.read().decode().split()[0])
        return names


def render_config(server: NginxServer) -> str:
    p = server.prefix
    upstreams = "\n".join(
        f"    upstream {name} {{\n"
        + "".join(f"        server {http.address} max_fails=0;\n" for http in servers.values())
        + "    }" for name, servers in server.backends.items())
    locations = "\n".join(f"        location /{name}/ {{ proxy_pass http://{name}/; }}" for name in server.backends)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the temp dir, private to root
    return f"""{user}worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{
    worker_connections {WORKER_CONNECTIONS};
}}
http {{
    {LOG_FORMAT}
    access_log {p}/access.log kubestack;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    keepalive_timeout 30s;
    proxy_connect_timeout 2s;
    proxy_read_timeout 10s;
{upstreams}
    server {{
        listen 127.0.0.1:{server.port};
        location = /nginx_status {{ stub_status; access_log off; }}
        location /static/ {{ root {p}/html; }}
{locations}
    }}
}}
"""


@pytest.fixture(scope="session")
def nginx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    prefix = tmp_path_factory.mktemp("nginx")
    (prefix / "tmp").mkdir()
    (prefix / "html" / "static").mkdir(parents=True)
    (prefix / "html" / "static" / "index.html").write_text("ok\n")
    prefix.chmod(0o755)
    for path in (prefix / "html", prefix / "html" / "static"):
        path.chmod(0o755)
    server = NginxServer(prefix=prefix, port=free_port())
    server.backends = {name: {s: HttpBackend(f"{name}-{s}").start() for s in servers}
                       for name, servers in UPSTREAMS.items()}
    server.config_path.write_text(render_config(server))
    server.nginx("-t", "-q")
    process = ServerProcess("nginx", [NGINX, "-p", str(prefix), "-c", str(server.config_path), "-g",
                                      "daemon off;"], prefix / "nginx.out")
    try:
        process.wait_port(server.port, timeout_s=20)
        yield server
    finally:
        process.stop()
        for servers in server.backends.values():
            for http in servers.values():
                http.stop()


@pytest.fixture
def nginx_live_config(nginx_server: NginxServer) -> dict:
    """The session nginx as a target's config, for the live contract check."""
    return {"port": nginx_server.port, "prefix": str(nginx_server.prefix), "config_path": str(nginx_server.config_path),
            "access_log": str(nginx_server.access_log), "error_log": str(nginx_server.error_log)}
