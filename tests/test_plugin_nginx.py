"""The Nginx plugin against a real nginx 1.22 (``tests/services/nginx.py``) in front of real HTTP backends: every
health rule fired by a real condition (an upstream server answering 500, requests for missing files, an upstream
server refusing connections, a slow upstream server, idle connections filling worker_connections), configuration
risks from real edits read back through ``nginx -T``, peers, and the actions dry-run, executed and undone (the
file edited, tested and reloaded). The parsers on recorded output too."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubestack.agents.configdiff import diff
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigChange, PeerRole, Severity
from kubestack.errors import ActionError, PreconditionFailedError, TargetUnreachableError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.kubernetes.config import DiscoveryConfig
from kubestack.plugins.kubernetes.discovery import discover_targets
from kubestack.plugins.nginx import NginxConfig, NginxPlugin
from kubestack.plugins.nginx.actions import mark_server
from kubestack.plugins.nginx.declaration import ACTIONS
from kubestack.plugins.nginx.parse import (
    flatten,
    parse_access_line,
    parse_dump,
    parse_error_line,
    parse_stub_status,
    upstream_failure,
    upstream_servers,
    worker_capacity,
)
from kubestack.plugins.nginx.risks import config_risks
from kubestack.plugins.remedy import Clue
from tests.factories import SOURCE
from tests.services.http_backends import get, wait_until
from tests.services.nginx import WORKER_CONNECTIONS, NginxServer

SPECS = {a.id: a for a in ACTIONS}
DUMP = """# configuration file /etc/nginx/nginx.conf:
worker_processes auto;
events { worker_connections 1024; }
http {
    include /etc/nginx/conf.d/*.conf;  # sites
    server { listen 80; server_name shop; location /api/ { proxy_pass http://api/; proxy_read_timeout 30s;
             proxy_set_header Authorization "Bearer abc"; } location /old/ { proxy_pass http://10.0.0.9:8080; } }
}

# configuration file /etc/nginx/conf.d/api.conf:
upstream api {
    server 10.0.0.5:8080 weight=2;
    server 10.0.0.6:8080 down;
    server 10.0.0.7:8080 backup;
}
"""


@pytest.fixture()
async def plugin(nginx_server: NginxServer) -> AsyncIterator[NginxPlugin]:
    built = NginxPlugin.create(config_for(nginx_server))
    await built.check_health()  # the log window of the next check starts here
    yield built
    await built.close()


def config_for(server: NginxServer, **limits: float) -> NginxConfig:
    return NginxConfig(port=server.port, prefix=str(server.prefix), config_path=str(server.config_path),
                       access_log=str(server.access_log), error_log=str(server.error_log), **limits)


def change(before: dict[str, str], after: dict[str, str]) -> ConfigChange:
    return ConfigChange(source=SOURCE, resource=ResourceRef(kind="nginx", name="web"), previous_digest="a" * 64,
                        digest="b" * 64, changes=diff(before, after))


def address(server: NginxServer, upstream: str, name: str) -> str:
    return server.backends[upstream][name].address


# --- pure ------------------------------------------------------------------------------------


def test_parsers_read_recorded_output() -> None:
    assert parse_stub_status("Active connections: 3 \nserver accepts handled requests\n 11 10 20 \n"
                             "Reading: 0 Writing: 1 Waiting: 2 \n") == {
        "active": 3, "accepts": 11, "handled": 10, "requests": 20, "reading": 0, "writing": 1, "waiting": 2}
    with pytest.raises(ValueError, match="not a stub_status page"):
        parse_stub_status("<html>404</html>")
    retried = parse_access_line('2026-12-07T04:44:57+00:00 10.1.1.1 "GET /a HTTP/1.1" 200 11 0.004 '
                                '"10.0.0.5:80, 10.0.0.6:80" "502, 200" "0.000, 0.003" "-, 0.001" "curl/8"')
    assert retried is not None and [(a.address, a.status, a.connected) for a in retried.attempts] == [
        ("10.0.0.5:80", 502, False), ("10.0.0.6:80", 200, True)]
    combined = parse_access_line('10.1.1.1 - - [07/Dec/2026:04:44:57 +0000] "GET /x HTTP/1.1" 404 153 "-" "curl"')
    assert combined is not None and combined.status == 404 and combined.attempts == ()
    line = parse_error_line('2026/12/07 04:44:57 [error] 1#1: *9 connect() failed (111: Connection refused) while '
                            'connecting to upstream, client: 1.2.3.4, server: , request: "GET / HTTP/1.1", '
                            'upstream: "http://10.0.0.5:8080/", host: "shop"')
    assert line is not None and line.upstream_address == "10.0.0.5:8080"
    assert upstream_failure(line) == "connect() failed (111: Connection refused)"


def test_the_dump_resolves_includes_and_flattens_with_secrets_redacted() -> None:
    tree = parse_dump(DUMP)
    assert [(s.upstream, s.address, s.down, s.backup) for s in upstream_servers(tree)] == [
        ("api", "10.0.0.5:8080", False, False), ("api", "10.0.0.6:8080", True, False),
        ("api", "10.0.0.7:8080", False, True)]
    assert upstream_servers(tree)[0].file == "/etc/nginx/conf.d/api.conf"
    assert worker_capacity(tree, cpus=4) == (4, 1024)
    flat = flatten(tree)
    assert flat["http/upstream api | server 10.0.0.5:8080"] == "weight=2"
    assert flat["events | worker_connections"] == "1024"
    assert flat["http/server 80 shop/location /api/ | proxy_set_header"] == "Authorization <redacted>"
    with pytest.raises(ValueError, match="not an 'nginx -T' dump"):
        parse_dump("nginx: [emerg] unknown directive")


def test_mark_server_edits_only_that_line() -> None:
    text = DUMP.split("api.conf:\n")[1]
    down = mark_server(text, "api", "10.0.0.5:8080", True)
    assert "    server 10.0.0.5:8080 weight=2 down;" in down and "10.0.0.6:8080 down;" in down
    assert mark_server(down, "api", "10.0.0.5:8080", False) == text
    with pytest.raises(ValueError, match="no 'server 10.0.0.9:1' line in upstream api"):
        mark_server(text, "api", "10.0.0.9:1", True)


def test_config_risks_on_recorded_snapshots() -> None:
    before = {"events | worker_connections": "1024", "http/upstream api | server 10.0.0.5:8080": "on",
              "http/upstream api | server 10.0.0.6:8080": "on", "http/server 80/location / | proxy_read_timeout": "60s"}
    after = {"events | worker_connections": "256", "http/upstream api | server 10.0.0.5:8080": "down",
             "http/server 80/location / | proxy_read_timeout": "500ms", "http | client_max_body_size": "100k"}
    findings = {f.rule_id: f for f in config_risks(change(before, after))}
    assert set(findings) == {"nginx.worker_connections_lowered", "nginx.upstream_server_removed",
                             "nginx.proxy_timeout_lowered", "nginx.body_size_lowered"}
    assert findings["nginx.upstream_server_removed"].evidence["servers"] == ["api/10.0.0.5:8080", "api/10.0.0.6:8080"]
    assert config_risks(change(after, before)) == []


def test_remedies_derive_valid_params_from_evidence() -> None:
    spec = SPECS["nginx.set_upstream_server"]
    clue = Clue(rule="nginx.upstream_unreachable", evidence={"upstream": "api", "server": "10.0.0.5:8080",
                                                            "servers_up": ["10.0.0.6:8080"]})
    [(params, _)] = [o for r in spec.answers if clue.rule in r.findings for o in r.derive(clue)]
    assert params == {"upstream": "api", "server": "10.0.0.5:8080", "state": "down"} and spec.accepts(params)
    alone = Clue(rule="nginx.upstream_unreachable", evidence={"upstream": "api", "server": "10.0.0.5:8080",
                                                             "servers_up": []})
    assert [o for r in spec.answers for o in r.derive(alone)] == []
    undo = Clue(rule="nginx.upstream_server_removed",
                change={"key": "http/upstream api | server 10.0.0.5:8080", "old": "on", "new": "down"})
    assert [o[0] for r in spec.answers if r.changes for o in r.derive(undo)] == [
        {"upstream": "api", "server": "10.0.0.5:8080", "state": "up"}]
    assert not spec.accepts({"upstream": "api;", "server": "10.0.0.5:8080", "state": "down"})


def test_discovery_finds_an_nginx_pod() -> None:
    pod = {"metadata": {"name": "web-7d9f", "namespace": "shop", "labels": {"app.kubernetes.io/name": "web"}},
           "spec": {"containers": [{"name": "web", "image": "registry.local/nginxinc/nginx-unprivileged:1.25",
                                    "ports": [{"containerPort": 80}]}]}}
    service = {"metadata": {"name": "web", "namespace": "shop"},
               "spec": {"selector": {"app.kubernetes.io/name": "web"}, "ports": [{"port": 8080, "targetPort": 80}]}}
    [target] = discover_targets("prod", [pod], [service], {}, DiscoveryConfig(kinds=["nginx"]))
    assert target["type"] == "nginx"
    assert target["config"] == {"host": "web.shop.svc.cluster.local", "port": 8080}
    url = NginxConfig.model_validate(target["config"]).status_url
    assert url == "http://web.shop.svc.cluster.local:8080/nginx_status"


async def test_the_log_cursor_reads_new_whole_lines_and_follows_rotation(tmp_path: Path) -> None:
    from kubestack.plugins.nginx.client import NginxClient
    from kubestack.plugins.nginx.logs import LogCursor

    path = tmp_path / "access.log"
    cursor = LogCursor(NginxClient(NginxConfig(access_log=str(path))), str(path), max_bytes=4096)
    assert await cursor.new_lines() == []  # no file yet
    path.write_text("old 1\nold 2\n")
    assert await cursor.new_lines() == ["old 1", "old 2"]  # created after the start: read from its beginning
    with path.open("a") as log:
        log.write("new 1\nnew 2 half")
    assert await cursor.new_lines() == ["new 1"]  # the line being written waits
    with path.open("a") as log:
        log.write(" done\n")
    assert await cursor.new_lines() == ["new 2 half done"]
    path.write_text("rotated\n")
    assert await cursor.new_lines() == ["rotated"]
    late = LogCursor(NginxClient(NginxConfig()), str(path), max_bytes=4096)
    assert await late.new_lines() == []  # an existing file is read from its end: no stale history


# --- live ------------------------------------------------------------------------------------


async def test_collects_metrics_snapshot_and_peers(plugin: NginxPlugin, nginx_server: NginxServer) -> None:
    await plugin.collect()  # the metric log cursor starts here
    assert [get(nginx_server.url("/app/")) for _ in range(4)] == [200] * 4
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in await plugin.collect()}
    assert samples[("nginx_max_connections", ())] == WORKER_CONNECTIONS
    assert samples[("nginx_connections_active", ())] >= 1 and samples[("nginx_requests_total", ())] >= 4
    assert samples[("nginx_http_responses_total", (("code", "2xx"),))] == 4
    s1 = address(nginx_server, "app", "s1")
    assert samples[("nginx_upstream_responses_total", (("code", "2xx"), ("server", s1), ("upstream", "app")))] == 2
    snapshot = await plugin.snapshot_config()
    assert snapshot["events | worker_connections"] == str(WORKER_CONNECTIONS)
    assert snapshot[f"http/upstream app | server {s1}"] == "max_fails=0"
    await plugin.check_health()
    peers = await plugin.peers()
    assert {(p.address, p.name) for p in peers if p.role == PeerRole.SERVER} >= {(s1, "upstream app")}
    assert [(p.address, p.count) for p in peers if p.role == PeerRole.CLIENT] == [("127.0.0.1", 4)]


async def test_an_upstream_server_answering_500(plugin: NginxPlugin, nginx_server: NginxServer) -> None:
    nginx_server.backends["app"]["s1"].failing = True
    try:
        statuses = [get(nginx_server.url("/app/order")) for _ in range(10)]
    finally:
        nginx_server.backends["app"]["s1"].reset()
    findings = {f.rule_id: f for f in await plugin.check_health()}
    assert statuses.count(500) == 5
    finding = findings["nginx.http_5xx_high"]
    assert finding.severity == Severity.CRITICAL and finding.evidence["ratio_5xx"] == 0.5
    assert finding.evidence["upstream"] == "app" and finding.evidence["server"] == address(nginx_server, "app", "s1")
    assert finding.evidence["servers_up"] == [address(nginx_server, "app", "s2")]
    assert "nginx.http_5xx_high" not in {f.rule_id for f in await plugin.check_health()}  # nothing new since


async def test_requests_for_missing_files_are_4xx(plugin: NginxPlugin, nginx_server: NginxServer) -> None:
    assert [get(nginx_server.url(f"/static/missing-{i}.js")) for i in range(12)] == [404] * 12
    finding = {f.rule_id: f for f in await plugin.check_health()}["nginx.http_4xx_high"]
    assert finding.evidence["statuses"] == {404: 12} and finding.evidence["clients"] == {"127.0.0.1": 12}


async def test_an_upstream_server_refusing_connections(plugin: NginxPlugin, nginx_server: NginxServer) -> None:
    with nginx_server.backends["app"]["s1"].down():
        statuses = [get(nginx_server.url("/app/")) for _ in range(6)]
        findings = {f.rule_id: f for f in await plugin.check_health()}
    assert statuses == [200] * 6  # nginx tried the next server
    finding = findings["nginx.upstream_unreachable"]
    assert finding.evidence["upstream"] == "app" and finding.evidence["server"] == address(nginx_server, "app", "s1")
    assert finding.evidence["failures"] >= 3
    assert "connect() failed (111: Connection refused)" in finding.evidence["errors"]


async def test_a_slow_upstream_server(nginx_server: NginxServer) -> None:
    plugin = NginxPlugin.create(config_for(nginx_server, upstream_slow_s=0.3))
    try:
        await plugin.check_health()
        nginx_server.backends["slow"]["s1"].delay_s = 0.4
        try:
            assert [get(nginx_server.url("/slow/")) for _ in range(3)] == [200] * 3
        finally:
            nginx_server.backends["slow"]["s1"].reset()
        finding = {f.rule_id: f for f in await plugin.check_health()}["nginx.upstream_slow"]
    finally:
        await plugin.close()
    assert finding.evidence["upstream"] == "slow" and finding.evidence["mean_s"] >= 0.4
    assert finding.evidence["responses"] == 3


async def test_idle_connections_fill_worker_connections(plugin: NginxPlugin, nginx_server: NginxServer) -> None:
    idle = [socket.create_connection(("127.0.0.1", nginx_server.port)) for _ in range(WORKER_CONNECTIONS - 6)]
    try:
        wait_until(lambda: _active(nginx_server) >= WORKER_CONNECTIONS - 5, 10, "the idle connections accepted")
        findings = {f.rule_id: f for f in await plugin.check_health()}
    finally:
        for sock in idle:
            sock.close()
    finding = findings["nginx.connections_near_limit"]
    assert finding.evidence["limit"] == WORKER_CONNECTIONS and finding.evidence["active"] >= WORKER_CONNECTIONS - 5
    wait_until(lambda: _active(nginx_server) < 5, 10, "the idle connections closed")


def _active(server: NginxServer) -> int:
    import urllib.request

    with urllib.request.urlopen(server.status_url, timeout=5) as response:
        return parse_stub_status(response.read().decode())["active"]


async def test_config_edits_are_risks(plugin: NginxPlugin, nginx_server: NginxServer) -> None:
    before, original = await plugin.snapshot_config(), nginx_server.config_path.read_text()
    fault_s2 = address(nginx_server, "fault", "s2")
    edited = (original.replace(f"worker_connections {WORKER_CONNECTIONS};", "worker_connections 20;")
              .replace("proxy_read_timeout 10s;", "proxy_read_timeout 1s;")
              .replace(f"        server {fault_s2} max_fails=0;\n", "")
              .replace("keepalive_timeout 30s;", "keepalive_timeout 30s;\n    client_max_body_size 10k;"))
    nginx_server.config_path.write_text(edited)
    try:
        after = await plugin.snapshot_config()
    finally:
        nginx_server.config_path.write_text(original)
    findings = {f.rule_id: f for f in config_risks(change(before, after))}
    assert set(findings) == {"nginx.worker_connections_lowered", "nginx.upstream_server_removed",
                             "nginx.proxy_timeout_lowered", "nginx.body_size_lowered"}
    assert findings["nginx.upstream_server_removed"].evidence["server"] == fault_s2
    assert await plugin.snapshot_config() == before


async def test_mark_an_upstream_server_down_and_back(plugin: NginxPlugin, nginx_server: NginxServer) -> None:
    s1, original = address(nginx_server, "app", "s1"), nginx_server.config_path.read_text()
    params = {"upstream": "app", "server": s1, "state": "down"}
    dry = await plugin.execute("nginx.set_upstream_server", params, dry_run=True)
    assert dry.before["state"] == "up" and nginx_server.config_path.read_text() == original
    done = await plugin.execute("nginx.set_upstream_server", params)
    try:
        assert f"server {s1} max_fails=0 down;" in nginx_server.config_path.read_text()
        wait_until(lambda: nginx_server.backends_answering("app") == {"app-s2"}, 10, "app-s1 out of rotation")
        with pytest.raises(PreconditionFailedError, match="last server of upstream app"):
            await plugin.execute("nginx.set_upstream_server", params | {"server": address(nginx_server, "app", "s2")})
        with pytest.raises(PreconditionFailedError, match="already down"):
            await plugin.execute("nginx.set_upstream_server", params)
    finally:
        await plugin.execute(*done.undo)
    assert done.undo[1]["state"] == "up" and nginx_server.config_path.read_text() == original
    wait_until(lambda: nginx_server.backends_answering("app") == {"app-s1", "app-s2"}, 10, "app-s1 back")
    with pytest.raises(PreconditionFailedError, match="no server 10.9.9.9:1 in upstream app"):
        await plugin.execute("nginx.set_upstream_server", params | {"server": "10.9.9.9:1"})


async def test_reload_is_tested_first_and_stop_is_forbidden(plugin: NginxPlugin, nginx_server: NginxServer) -> None:
    assert (await plugin.execute("nginx.reload", {}, dry_run=True)).output.startswith("nginx -t passed")
    assert (await plugin.execute("nginx.reload", {})).output.startswith("done")
    original = nginx_server.config_path.read_text()
    nginx_server.config_path.write_text(original.replace("keepalive_timeout 30s;", "keepalive_timeout;"))
    try:
        with pytest.raises(PreconditionFailedError, match="does not pass nginx -t"):
            await plugin.execute("nginx.reload", {})
    finally:
        nginx_server.config_path.write_text(original)
    with pytest.raises(ActionError, match="forbidden"):
        await plugin.execute("nginx.stop", {})
    assert get(nginx_server.status_url) == 200


async def test_stub_status_alone_when_nginx_cannot_be_run_here(nginx_server: NginxServer, tmp_path: Path) -> None:
    """A pod found in Kubernetes: stub_status over the network, no nginx binary or logs on the agent's host."""
    plugin = NginxPlugin.create(NginxConfig(port=nginx_server.port, nginx=str(tmp_path / "no-nginx"),
                                            access_log=str(tmp_path / "a.log"), error_log=str(tmp_path / "e.log")))
    try:
        assert {s.name for s in await plugin.collect()} >= {"nginx_connections_active", "nginx_requests_total"}
        assert await plugin.check_health() == []
        assert (await plugin.snapshot_config())["nginx -T"].startswith("unavailable: ")
    finally:
        await plugin.close()


async def test_an_address_without_nginx_is_unreachable(tmp_path: Path) -> None:
    from tests.services.process import free_port

    plugin = NginxPlugin.create(NginxConfig(port=free_port(), access_log=str(tmp_path / "a.log"),
                                            error_log=str(tmp_path / "e.log")))
    with pytest.raises(TargetUnreachableError, match="cannot be reached"):
        await plugin.collect()


async def test_through_a_runner(nginx_server: NginxServer) -> None:
    """Agentless collection: stub_status by curl, the logs by stat and tail, nginx -T, all through a runner (here,
    this host, as over SSH)."""
    plugin = NginxPlugin.create(config_for(nginx_server), LocalRunner())
    try:
        await plugin.check_health()
        assert [get(nginx_server.url(f"/static/gone-{i}")) for i in range(10)] == [404] * 10
        assert "nginx.http_4xx_high" in {f.rule_id for f in await plugin.check_health()}
        assert (await plugin.snapshot_config())["events | worker_connections"] == str(WORKER_CONNECTIONS)
        assert any(s.name == "nginx_connections_active" for s in await plugin.collect())
    finally:
        await plugin.close()
