"""The HAProxy plugin against a real HAProxy 2.6 (``tests/services/haproxy.py``) in front of real HTTP backends:
every health rule fired by a real condition (a server stopped, a backend without servers, a server answering 500,
a queue behind a slow server at maxconn 1, a frontend filled to its maxconn), the configuration risks read from
real runtime changes, peers, and the actions dry-run, executed and undone. The parsers on recorded output too."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator

import pytest

from kubestack.agents.configdiff import diff
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigChange, PeerRole, Severity
from kubestack.errors import ActionError, ActionParamsError, PreconditionFailedError, TargetUnreachableError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.haproxy import HAProxyConfig, HAProxyPlugin
from kubestack.plugins.kubernetes.config import DiscoveryConfig
from kubestack.plugins.kubernetes.discovery import discover_targets
from kubestack.plugins.haproxy.checks import Observation, backend_5xx
from kubestack.plugins.haproxy.declaration import ACTIONS
from kubestack.plugins.haproxy.parse import parse_config_file, parse_info, parse_servers_state, parse_stat
from kubestack.plugins.haproxy.risks import config_risks
from kubestack.plugins.remedy import Clue
from tests.factories import SOURCE
from tests.services.haproxy import LIMIT_MAXCONN, HAProxyServer
from tests.services.http_backends import get, wait_until

SPECS = {a.id: a for a in ACTIONS}

STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,type,hrsp_2xx,hrsp_5xx,addr,mode,check_status,
fe,FRONTEND,,,2,3,10,40,OPEN,0,30,10,,http,,
be,s1,0,0,1,1,5,20,UP,2,20,0,127.0.0.1:8001,http,L7OK,
be,s2,0,0,0,1,,20,DOWN,2,10,10,127.0.0.1:8002,http,L4CON,
be,BACKEND,0,0,1,2,20,40,UP,1,30,10,,http,,
"""
STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 be 1 s1 127.0.0.1 2 1 1 1 3 15 3 4 6 0 0 0 - 8001 - 0 0 - - 0
3 be 2 s2 127.0.0.1 0 8 1 1 3 8 2 0 2 0 0 0 - 8002 - 0 0 - - 0
"""


@pytest.fixture()
async def plugin(haproxy_server: HAProxyServer) -> AsyncIterator[HAProxyPlugin]:
    built = HAProxyPlugin.create(HAProxyConfig(socket=str(haproxy_server.socket),
                                               config_path=str(haproxy_server.config_path)))
    yield built
    await built.close()


def change(before: dict[str, str], after: dict[str, str], observed: dict[str, float] | None = None) -> ConfigChange:
    return ConfigChange(source=SOURCE, resource=ResourceRef(kind="haproxy", name="lb"), previous_digest="a" * 64,
                        digest="b" * 64, changes=diff(before, after), observed=observed or {})


# --- pure ------------------------------------------------------------------------------------


def test_parsers_read_recorded_answers() -> None:
    rows = parse_stat(STAT)
    assert [(r.proxy, r.name, r.kind, r.up) for r in rows] == [
        ("fe", "FRONTEND", "frontend", True), ("be", "s1", "server", True), ("be", "s2", "server", False),
        ("be", "BACKEND", "backend", True)]
    states = parse_servers_state(STATE)
    assert [(s.server, s.admin, s.check_enabled) for s in states] == [("s1", "maint", True), ("s2", "drain", False)]
    assert parse_info("Name: HAProxy\nMaxconn: 200\nCurrConns: 3\n")["Maxconn"] == "200"
    with pytest.raises(ValueError, match="not a 'show stat' answer"):
        parse_stat("Unknown command\n")
    config = parse_config_file("global\n  maxconn 10  # limit\n  stats auth admin:secret\nbackend be\n"
                               "  timeout server 5s\n  server s1 10.0.0.1:80 check\n  option httpchk GET /\n")
    assert config == {"global | maxconn": "10", "global | stats auth": "<redacted>",
                      "backend be | timeout server": "5s",
                      "backend be | server s1": "10.0.0.1:80 check", "backend be | option httpchk GET /": "on"}


def test_5xx_are_judged_over_the_window_since_the_last_observation() -> None:
    rows = parse_stat(STAT)
    limits = HAProxyConfig()
    assert backend_5xx(Observation(info={}, rows=rows), limits) == []  # the first observation sets the start
    before = {(r.proxy, r.name): r.fields | {"hrsp_2xx": "0", "hrsp_5xx": "0"} for r in rows}
    [finding] = backend_5xx(Observation(info={}, rows=rows, previous=before), limits)
    assert finding.evidence["server"] == "s2" and finding.evidence["responses_5xx"] == 10
    assert finding.evidence["responses"] == 40 and finding.evidence["servers_up"] == ["s1"]
    previous = {(r.proxy, r.name): r.fields for r in rows}
    assert backend_5xx(Observation(info={}, rows=rows, previous=previous), limits) == []


def test_config_risks_on_recorded_snapshots() -> None:
    before = {"global maxconn": "200", "frontend fe maxconn": "200", "server be/s1 maxconn": "",
              "server be/s1 check": "enabled", "server be/s1 address": "10.0.0.1:80",
              "server be/s2 address": "10.0.0.2:80"}
    after = {"global maxconn": "50", "frontend fe maxconn": "200", "server be/s1 maxconn": "10",
             "server be/s1 check": "disabled", "server be/s1 address": "10.0.0.1:80"}
    findings = {f.rule_id: f for f in config_risks(change(before, after, {"haproxy_current_connections": 80}))}
    assert set(findings) == {"haproxy.maxconn_lowered", "haproxy.server_maxconn_lowered",
                             "haproxy.health_check_disabled", "haproxy.server_removed"}
    assert findings["haproxy.maxconn_lowered"].severity == Severity.CRITICAL  # below the 80 connections open
    assert findings["haproxy.server_removed"].evidence["removed"] == ["be/s2"]
    assert config_risks(change(after, before)) == []  # raising limits, enabling checks, adding servers: no risk


def test_remedies_derive_valid_params_from_evidence() -> None:
    state, maxconn = SPECS["haproxy.set_server_state"], SPECS["haproxy.set_server_maxconn"]
    five = Clue(rule="haproxy.backend_5xx", evidence={"backend": "be", "server": "s1", "servers_up": ["s1", "s2"],
                                                      "responses_5xx": 9, "server_responses_5xx": 9})
    [(params, _)] = [o for r in state.answers if five.rule in r.findings for o in r.derive(five)]
    assert params == {"backend": "be", "server": "s1", "state": "maint"} and state.accepts(params)
    alone = Clue(rule="haproxy.backend_5xx", evidence={"backend": "be", "server": "s1", "servers_up": ["s1"]})
    assert [o for r in state.answers for o in r.derive(alone)] == []  # the last server is never taken out
    queue = Clue(rule="haproxy.queue_building", evidence={"backend": "be", "server": "s1", "maxconn": 2, "queue": 3})
    offers = [o for r in maxconn.answers if queue.rule in r.findings for o in r.derive(queue)]
    assert offers[0][0] == {"backend": "be", "server": "s1", "maxconn": 3}
    undo = Clue(rule="haproxy.server_maxconn_lowered", change={"key": "server be/s1 maxconn", "old": "", "new": "1"})
    assert [o[0] for r in maxconn.answers if r.changes for o in r.derive(undo)] == [
        {"backend": "be", "server": "s1", "maxconn": 0}]
    with pytest.raises(ActionParamsError, match="parameter 'server'"):
        state.check({"backend": "be", "server": "s 1;shutdown", "state": "maint"})
    with pytest.raises(ActionParamsError, match="parameter 'state'"):
        state.check({"backend": "be", "server": "s1", "state": "off"})


def test_discovery_finds_a_haproxy_pod() -> None:
    pod = {"metadata": {"name": "lb-0", "namespace": "edge", "labels": {"app": "lb"}},
           "spec": {"containers": [{"name": "haproxy", "image": "docker.io/library/haproxy:2.6-alpine",
                                    "ports": [{"containerPort": 80}, {"containerPort": 9999}]}]}}
    service = {"metadata": {"name": "lb", "namespace": "edge"},
               "spec": {"selector": {"app": "lb"}, "ports": [{"port": 80}, {"port": 9999}]}}
    [target] = discover_targets("prod", [pod], [service], {}, DiscoveryConfig(kinds=["haproxy"]))
    assert target["type"] == "haproxy"
    assert target["config"] == {"host": "lb.edge.svc.cluster.local", "port": 9999}
    assert HAProxyConfig.model_validate(target["config"]).address == "lb.edge.svc.cluster.local:9999"


# --- live ------------------------------------------------------------------------------------


async def test_collects_metrics_snapshot_and_peers(plugin: HAProxyPlugin, haproxy_server: HAProxyServer) -> None:
    assert get(haproxy_server.url("app")) == 200
    samples = await plugin.collect()
    names = {s.name for s in samples}
    assert {"haproxy_current_connections", "haproxy_max_connections", "haproxy_requests_total", "haproxy_backend_up",
            "haproxy_server_up", "haproxy_frontend_sessions", "haproxy_frontend_session_limit",
            "haproxy_server_http_responses_total", "haproxy_connections_used_ratio"} <= names
    ok = [s for s in samples if s.name == "haproxy_backend_http_responses_total" and s.labels == {
        "backend": "be_app", "code": "2xx"}]
    assert ok and ok[0].value >= 1
    snapshot = await plugin.snapshot_config()
    assert snapshot["global maxconn"] == "200" and snapshot["server be_queue/s1 maxconn"] == "1"
    assert snapshot["server be_app/s1 check"] == "enabled"
    assert snapshot["file: backend be_queue | server s1"].endswith("check maxconn 1")
    peers = await plugin.peers()
    servers = {p.name: p.address for p in peers if p.role == PeerRole.SERVER}
    assert servers["be_app/s1"] == haproxy_server.backends["app"]["s1"].address and len(servers) == 7


async def test_a_stopped_server_is_down_and_the_backend_degraded(plugin: HAProxyPlugin,
                                                                 haproxy_server: HAProxyServer) -> None:
    with haproxy_server.server_down("app", "s1"):
        findings = {f.rule_id: f for f in await plugin.check_health()}
    finding = findings["haproxy.servers_down"]
    assert finding.evidence["backend"] == "be_app" and finding.evidence["server"] == "s1"
    assert finding.evidence["servers"][0]["check_status"] == "L4CON" and finding.evidence["servers_up"] == ["s2"]
    assert "haproxy.backend_down" not in findings


async def test_a_backend_without_servers_is_down(plugin: HAProxyPlugin, haproxy_server: HAProxyServer) -> None:
    with haproxy_server.server_down("solo", "s1"):
        assert get(haproxy_server.url("solo")) == 503
        findings = {f.rule_id: f for f in await plugin.check_health()}
    finding = findings["haproxy.backend_down"]
    assert finding.severity == Severity.CRITICAL and finding.evidence["backend"] == "be_solo"
    assert finding.evidence["servers"][0]["status"].startswith("DOWN")


async def test_a_server_answering_500_raises_the_backend_5xx(plugin: HAProxyPlugin,
                                                            haproxy_server: HAProxyServer) -> None:
    await plugin.check_health()  # the window starts here
    haproxy_server.backends["app"]["s1"].failing = True
    try:
        statuses = [get(haproxy_server.url("app", "/order")) for _ in range(10)]
        findings = {f.rule_id: f for f in await plugin.check_health()}
    finally:
        haproxy_server.restore("app")
    assert statuses.count(500) == 5
    finding = findings["haproxy.backend_5xx"]
    assert finding.evidence["backend"] == "be_app" and finding.evidence["server"] == "s1"
    assert finding.evidence["responses_5xx"] == 5 and finding.evidence["responses"] == 10
    assert "haproxy.backend_5xx" not in {f.rule_id for f in await plugin.check_health()}  # nothing new since


async def test_requests_queue_behind_a_full_server(plugin: HAProxyPlugin, haproxy_server: HAProxyServer) -> None:
    haproxy_server.backends["queue"]["s1"].delay_s = 0.8
    threads = [threading.Thread(target=get, args=(haproxy_server.url("queue", "/slow"),)) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: "haproxy.queue_building" in {f.rule_id for f in _sync_health(haproxy_server)},
                   10, "a queue in be_queue")
        findings = {f.rule_id: f for f in await plugin.check_health()}
    finally:
        for thread in threads:
            thread.join()
        haproxy_server.restore("queue")
    finding = findings["haproxy.queue_building"]
    assert finding.evidence["backend"] == "be_queue" and finding.evidence["queue"] >= 1
    assert finding.evidence["server"] == "s1" and finding.evidence["maxconn"] == 1


def _sync_health(server: HAProxyServer) -> list:
    from kubestack.plugins.haproxy.checks import evaluate

    return evaluate(Observation(info=parse_info(server.command("show info")),
                                rows=parse_stat(server.command("show stat")), previous={}), HAProxyConfig())


async def test_a_frontend_at_its_maxconn_is_near_its_limit(plugin: HAProxyPlugin,
                                                           haproxy_server: HAProxyServer) -> None:
    idle = [socket.create_connection(("127.0.0.1", haproxy_server.frontends["limit"])) for _ in range(LIMIT_MAXCONN)]
    try:
        wait_until(lambda: "haproxy.sessions_near_limit" in {f.rule_id for f in _sync_health(haproxy_server)},
                   10, "fe_limit full")
        findings = {f.rule_id: f for f in await plugin.check_health()}
    finally:
        for sock in idle:
            sock.close()
    finding = findings["haproxy.sessions_near_limit"]
    assert finding.evidence["frontend"] == "fe_limit" and finding.evidence["limit"] == LIMIT_MAXCONN
    assert finding.severity == Severity.CRITICAL and finding.evidence["sessions"] == LIMIT_MAXCONN


async def test_runtime_changes_are_config_risks(plugin: HAProxyPlugin, haproxy_server: HAProxyServer) -> None:
    before = await plugin.snapshot_config()
    haproxy_server.command("set maxconn server be_app/s1 2")
    haproxy_server.command("disable health be_app/s2")
    haproxy_server.command("set maxconn frontend fe_app 50")
    try:
        after = await plugin.snapshot_config()
    finally:
        haproxy_server.command(f"set maxconn frontend fe_app {before['frontend fe_app maxconn']}")
        haproxy_server.restore("app")
    findings = {f.rule_id: f for f in config_risks(change(before, after))}
    assert set(findings) == {"haproxy.server_maxconn_lowered", "haproxy.health_check_disabled",
                             "haproxy.maxconn_lowered"}
    assert findings["haproxy.server_maxconn_lowered"].evidence["setting"] == "server be_app/s1 maxconn"
    assert findings["haproxy.health_check_disabled"].evidence["server"] == "s2"
    assert await plugin.snapshot_config() == before


async def test_set_server_state_dry_run_execute_and_undo(plugin: HAProxyPlugin,
                                                          haproxy_server: HAProxyServer) -> None:
    params = {"backend": "be_app", "server": "s1", "state": "maint"}
    dry = await plugin.execute("haproxy.set_server_state", params, dry_run=True)
    assert dry.dry_run and dry.before["state"] == "ready" and haproxy_server.server_status("app", "s1") == "UP"
    done = await plugin.execute("haproxy.set_server_state", params)
    try:
        assert haproxy_server.server_status("app", "s1") == "MAINT"
        assert {get(haproxy_server.url("app")) for _ in range(4)} == {200}  # s2 carries it all
        with pytest.raises(PreconditionFailedError, match="no other server of be_app"):
            await plugin.execute("haproxy.set_server_state", {"backend": "be_app", "server": "s2", "state": "drain"})
    finally:
        action, undo = done.undo
        await plugin.execute(action, undo)
    assert undo == {"backend": "be_app", "server": "s1", "state": "ready"}
    haproxy_server.wait_status("app", "s1", "UP")


async def test_set_server_maxconn_execute_and_undo(plugin: HAProxyPlugin, haproxy_server: HAProxyServer) -> None:
    params = {"backend": "be_queue", "server": "s1", "maxconn": 3}
    dry = await plugin.execute("haproxy.set_server_maxconn", params, dry_run=True)
    assert dry.before["maxconn"] == 1 and (await plugin.snapshot_config())["server be_queue/s1 maxconn"] == "1"
    done = await plugin.execute("haproxy.set_server_maxconn", params)
    assert (await plugin.snapshot_config())["server be_queue/s1 maxconn"] == "3"
    await plugin.execute(*done.undo)
    assert (await plugin.snapshot_config())["server be_queue/s1 maxconn"] == "1"
    with pytest.raises(PreconditionFailedError, match="above the process's maxconn 200"):
        await plugin.execute("haproxy.set_server_maxconn", params | {"maxconn": 500})
    with pytest.raises(PreconditionFailedError, match="has no server s9; its servers: s1"):
        await plugin.execute("haproxy.set_server_maxconn", params | {"server": "s9"})
    with pytest.raises(ActionError, match="forbidden"):
        await plugin.execute("haproxy.shutdown_sessions", {})


async def test_the_tcp_runtime_api_and_an_unreachable_one(haproxy_server: HAProxyServer) -> None:
    tcp = HAProxyPlugin.create(HAProxyConfig(host="127.0.0.1", port=haproxy_server.api_port))
    assert any(s.name == "haproxy_uptime_seconds" for s in await tcp.collect())
    gone = HAProxyPlugin.create(HAProxyConfig(socket=str(haproxy_server.dir / "missing.sock")))
    with pytest.raises(TargetUnreachableError, match="cannot be reached"):
        await gone.collect()


async def test_through_a_runner_with_socat(haproxy_server: HAProxyServer) -> None:
    """Agentless collection: the runtime API reached by ``socat`` run through a runner (here, this host)."""
    plugin = HAProxyPlugin.create(HAProxyConfig(socket=str(haproxy_server.socket),
                                                config_path=str(haproxy_server.config_path)), LocalRunner())
    try:
        assert any(s.name == "haproxy_backend_up" for s in await plugin.collect())
        snapshot = await plugin.snapshot_config()
        assert snapshot["server be_queue/s1 maxconn"] == "1" and "file: global | maxconn" in snapshot
        dry = await plugin.execute("haproxy.set_server_state", {"backend": "be_app", "server": "s2", "state": "drain"},
                                   dry_run=True)
        assert dry.before["state"] == "ready"
    finally:
        await plugin.close()
    gone = HAProxyPlugin.create(HAProxyConfig(socket=str(haproxy_server.dir / "missing.sock")), LocalRunner())
    with pytest.raises(TargetUnreachableError, match="cannot be reached"):
        await gone.collect()
