"""The Memcached plugin against a real server (Debian's memcached 1.6, 8 MB, 100 connections), every health rule
fired by a real condition: a fill past the memory limit (evictions), a server without evictions (-M) refusing
stores, a value over item_size_max, a flood of connections past max_connections, gets that miss; then the runtime
memory limit as an action (dry run, preconditions, execution, undo) and the config risks from live snapshots."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubestack.agents.configdiff import diff
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigChange, ConfigDiff, PeerRole
from kubestack.errors import ActionError, ConfigError, PreconditionFailedError, TargetUnreachableError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.kubernetes.config import DiscoveryConfig
from kubestack.plugins.kubernetes.discovery import discover_targets
from kubestack.plugins.memcached import MemcachedConfig, MemcachedPlugin
from kubestack.plugins.memcached.actions import limit_problems
from kubestack.plugins.memcached.declaration import ACTIONS, MB
from kubestack.plugins.memcached.parse import parse_conns, parse_per_slab, parse_stats
from kubestack.plugins.memcached.peers import client_peers
from kubestack.plugins.memcached.risks import config_risks
from kubestack.plugins.remedy import Clue
from tests.factories import SOURCE
from tests.services.memcached import MemcachedServer, start_memcached
from tests.services.process import free_port

MC = ResourceRef(kind="memcached", name="sessions", host="cache-0")
CONNS = """STAT 26:addr tcp:127.0.0.1:11211
STAT 26:state conn_listening
STAT 26:secs_since_last_cmd 12
STAT 30:addr tcp:10.0.0.5:51234
STAT 30:listen_addr tcp:127.0.0.1:11211
STAT 30:state conn_parse_cmd
STAT 30:secs_since_last_cmd 3
STAT 31:addr tcp6:[::1]:40000
STAT 31:listen_addr tcp6:[::1]:11211
STAT 31:state conn_new_cmd
STAT 31:secs_since_last_cmd 0
STAT 32:addr tcp:10.0.0.5:51240
STAT 32:listen_addr tcp:127.0.0.1:11211
STAT 32:state conn_waiting
STAT 32:secs_since_last_cmd 0
"""


def rules(findings: list) -> dict:
    return {f.rule_id: f for f in findings}


def offers(rule: str, evidence: dict[str, Any] | None = None, change: dict[str, Any] | None = None) -> list[dict]:
    spec = next(a for a in ACTIONS if a.id == "memcached.set_memory_limit")
    clue = Clue(rule=rule, evidence=evidence or {}, change=change or {})
    return [p for remedy in spec.answers if rule in remedy.findings or (change and remedy.undoes(change["key"]))
            for p, _ in remedy.derive(clue) if spec.accepts(p)]


def plugin_for(server: MemcachedServer, **limits: Any) -> MemcachedPlugin:
    return MemcachedPlugin.create(MemcachedConfig.model_validate(server.config(**limits)))


@pytest.fixture()
async def plugin(memcached_server: MemcachedServer) -> AsyncIterator[MemcachedPlugin]:
    built = plugin_for(memcached_server)
    yield built
    await built.close()


@pytest.fixture(scope="module")
def no_evictions_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedServer]:
    """A second server run with -M: it refuses stores when full instead of evicting."""
    process, server = start_memcached(tmp_path_factory.mktemp("memcached-M") / "memcached.log", "-M")
    try:
        yield server
    finally:
        process.stop()


def fill(server: MemcachedServer, prefix: str, megabytes: int) -> list[bytes]:
    """Writes ``megabytes`` of 100 KB values; returns the replies."""
    value = b"v" * 100_000
    with server.connect() as sock:
        return [server.set(sock, f"{prefix}-{i}", value) for i in range(megabytes * 10)]


# --- pure -------------------------------------------------------------------------------------------


def test_parsers_on_recorded_output() -> None:
    conns = parse_conns(parse_stats(CONNS))
    assert [(c.fd, c.host, c.listening) for c in conns] == [
        ("26", "127.0.0.1", True), ("30", "10.0.0.5", False), ("31", "::1", False), ("32", "10.0.0.5", False)]
    peers = client_peers(conns, own="[::1]:40000")
    assert [(p.role, p.address, p.count) for p in peers] == [(PeerRole.CLIENT, "10.0.0.5", 2)]
    per_slab = parse_per_slab(parse_stats("STAT items:3:evicted 12\nSTAT items:3:number 4\nSTAT 3:chunk_size 152\n"
                                          "STAT active_slabs 1\n"))
    assert per_slab == {"3": {"evicted": "12", "number": "4", "chunk_size": "152"}}


def change(key: str, old: str | None, new: str | None, **observed: float) -> ConfigChange:
    return ConfigChange(source=SOURCE, resource=MC, previous_digest="a" * 64, digest="b" * 64,
                        changes=[ConfigDiff(key=key, old=old, new=new)], observed=observed)


def test_config_risks_and_the_undo_of_a_lowered_limit() -> None:
    [lowered] = config_risks(change("maxbytes", str(64 * MB), str(16 * MB), memcached_bytes=30 * MB))
    assert lowered.rule_id == "memcached.memory_limit_lowered" and "below the" in lowered.message
    assert offers("memcached.memory_limit_lowered", change={"key": "maxbytes", "old": str(64 * MB),
                                                             "new": str(16 * MB)}) == [{"megabytes": 64}]
    [conns] = config_risks(change("maxconns", "1024", "100", memcached_curr_connections=150))
    assert conns.rule_id == "memcached.maxconns_lowered" and conns.severity == "critical"
    assert config_risks(change("evictions", "on", "off"))[0].rule_id == "memcached.evictions_disabled"
    assert config_risks(change("udpport", "0", "11211"))[0].rule_id == "memcached.udp_enabled"
    assert config_risks(change("udpport", "11211", "0")) == [] == config_risks(change("maxbytes", "8", "16"))
    assert limit_problems(4, 8 * MB, 6 * MB, None) == [
        f"4 MB is below the {6 * MB} bytes stored now: lowering to it evicts items"]
    assert limit_problems(64, 8 * MB, 6 * MB, 32) == ["64 MB is above memory_limit_max_mb (32 MB) set for this target"]


def test_discovery_finds_a_memcached_pod() -> None:
    pod = {"metadata": {"name": "sessions-0", "namespace": "shop", "labels": {"app": "sessions"}},
           "spec": {"containers": [{"name": "cache", "image": "bitnami/memcached:1.6.21",
                                    "ports": [{"containerPort": 11211}]}]}}
    service = {"metadata": {"name": "sessions", "namespace": "shop"},
               "spec": {"selector": {"app": "sessions"}, "ports": [{"port": 11211}]}}
    [target] = discover_targets("prod", [pod], [service], {}, DiscoveryConfig(kinds=["memcached"]))
    assert target["type"] == "memcached"
    assert target["config"] == {"host": "sessions.shop.svc.cluster.local", "port": 11211}
    MemcachedConfig.model_validate(target["config"])


# --- live -------------------------------------------------------------------------------------------


async def test_a_round_collects_snapshots_and_sees_its_clients(memcached_server: MemcachedServer,
                                                             plugin: MemcachedPlugin) -> None:
    with memcached_server.connect() as app:
        assert memcached_server.set(app, "session-1", b"alice") == b"STORED"
        samples = {(s.name, tuple(s.labels.items())): s.value for s in await plugin.collect()}
        peers = await plugin.peers()
    assert samples[("memcached_limit_bytes", ())] == 8 * MB
    assert samples[("memcached_max_connections", ())] == 100
    assert samples[("memcached_curr_items", ())] >= 1 and samples[("memcached_accepting_connections", ())] == 1
    assert any(name == "memcached_slab_items" for name, _ in samples)
    assert [(p.role, p.address) for p in peers] == [(PeerRole.CLIENT, "127.0.0.1")] and peers[0].count >= 1
    snapshot = await plugin.snapshot_config()
    assert snapshot["maxbytes"] == str(8 * MB) and snapshot["maxconns"] == "100"
    assert snapshot["evictions"] == "on" and snapshot["version"].startswith("1.6")


async def test_unreachable_and_agentless_are_clear_errors() -> None:
    closed = MemcachedPlugin.create(MemcachedConfig(port=free_port(), timeout_s=2))
    with pytest.raises(TargetUnreachableError, match="cannot be reached"):
        await closed.collect()
    await closed.close()
    with pytest.raises(ConfigError, match="directly"):
        MemcachedPlugin.create(MemcachedConfig(), LocalRunner())


async def test_evictions_and_the_memory_limit_action(memcached_server: MemcachedServer, unique: str) -> None:
    plugin = plugin_for(memcached_server, memory_limit_max_mb=12)
    try:
        assert "memcached.evictions" not in rules(await plugin.check_health())  # the baseline
        before = await plugin.snapshot_config()
        assert set(fill(memcached_server, f"batch-{unique}", 12)) == {b"STORED"}
        finding = rules(await plugin.check_health())["memcached.evictions"]
        assert finding.evidence["evictions"] > 0 and finding.evidence["limit_maxbytes"] == 8 * MB
        assert finding.evidence["slabs"] and finding.evidence["evicted_unfetched"] > 0
        [params] = offers("memcached.evictions", finding.evidence)
        assert params == {"megabytes": 10}

        with pytest.raises(PreconditionFailedError, match="memory_limit_max_mb"):
            await plugin.execute("memcached.set_memory_limit", {"megabytes": 16})
        dry = await plugin.execute("memcached.set_memory_limit", params, dry_run=True)
        assert dry.dry_run and dry.output.startswith("cache_memlimit 10") and dry.before["limit_maxbytes"] == 8 * MB
        assert memcached_server.stats()["limit_maxbytes"] == str(8 * MB)
        done = await plugin.execute("memcached.set_memory_limit", params)
        assert done.undo == ("memcached.set_memory_limit", {"megabytes": 8})
        assert memcached_server.stats()["limit_maxbytes"] == str(10 * MB)
        changes = diff(before, await plugin.snapshot_config())
        assert [(c.key, c.new) for c in changes] == [("maxbytes", str(10 * MB))]

        undone = await plugin.execute(*done.undo)
        assert undone.undo == ("memcached.set_memory_limit", {"megabytes": 10})
        assert memcached_server.stats()["limit_maxbytes"] == str(8 * MB)
        [risk] = config_risks(ConfigChange(source=SOURCE, resource=MC, previous_digest="a" * 64, digest="b" * 64,
                                           changes=diff(before | {"maxbytes": str(10 * MB)},
                                                        await plugin.snapshot_config()),
                                           observed={"memcached_bytes": float(memcached_server.stats()["bytes"])}))
        assert risk.rule_id == "memcached.memory_limit_lowered"
        with pytest.raises(ActionError, match="forbidden"):
            await plugin.execute("memcached.flush_all", {})
        with pytest.raises(ActionError, match="'megabytes'"):
            await plugin.execute("memcached.set_memory_limit", {"megabytes": 2})
    finally:
        await plugin.close()


async def test_a_server_without_evictions_refuses_stores(no_evictions_server: MemcachedServer,
                                                         unique: str) -> None:
    plugin = plugin_for(no_evictions_server)
    try:
        assert "memcached.out_of_memory" not in rules(await plugin.check_health())
        replies = fill(no_evictions_server, f"full-{unique}", 12)
        assert b"SERVER_ERROR out of memory storing object" in replies
        finding = rules(await plugin.check_health())["memcached.out_of_memory"]
        assert finding.severity == "critical" and finding.evidence["evictions_setting"] == "off"
        assert finding.evidence["store_no_memory"] >= 1 and "-M" in finding.message
        assert offers("memcached.out_of_memory", finding.evidence) == [{"megabytes": 10}]
    finally:
        await plugin.close()


async def test_a_value_over_item_size_max(memcached_server: MemcachedServer, plugin: MemcachedPlugin) -> None:
    await plugin.check_health()
    with memcached_server.connect() as app:
        assert memcached_server.set(app, "report", b"r" * 2_000_000).startswith(b"SERVER_ERROR object too large")
    finding = rules(await plugin.check_health())["memcached.items_too_large"]
    assert finding.evidence["store_too_large"] == 1 and finding.evidence["item_size_max"] == 1024 * 1024


async def test_a_flood_of_connections_fills_the_table_and_is_refused(memcached_server: MemcachedServer,
                                                                     plugin: MemcachedPlugin) -> None:
    await plugin.check_health()  # the baseline, and the plugin's own connection in before the flood
    flood: list[socket.socket] = []
    try:
        for _ in range(110):
            flood.append(memcached_server.connect())
        refused = 0
        for sock in flood[-10:]:
            sock.settimeout(2)
            refused += sock.recv(100).startswith(b"ERROR Too many open connections")
        assert refused
        found = rules(await plugin.check_health())
    finally:
        for sock in flood:
            sock.close()
    near, rejected = found["memcached.connections_near_max"], found["memcached.rejected_connections"]
    assert near.evidence["max_connections"] == 100 and near.evidence["connections_used_ratio"] >= 0.8
    assert rejected.severity == "critical" and rejected.evidence["rejected_connections"] >= refused


async def test_gets_that_miss(memcached_server: MemcachedServer, unique: str) -> None:
    plugin = plugin_for(memcached_server, hit_ratio_min_gets=100)
    try:
        await plugin.check_health()
        with memcached_server.connect() as app:
            memcached_server.set(app, f"hot-{unique}", b"1")
            for i in range(150):
                key = f"hot-{unique}" if i % 10 == 0 else f"cold-{unique}-{i}"
                memcached_server.call(app, f"get {key}\r\n".encode(), until=b"END\r\n")
        finding = rules(await plugin.check_health())["memcached.low_hit_ratio"]
        assert finding.evidence["get_hits"] == 15 and finding.evidence["get_misses"] == 135
        assert finding.evidence["hit_ratio"] == 0.1
        assert offers("memcached.low_hit_ratio", finding.evidence | {"evictions": 0}) == []  # no memory offered
        assert offers("memcached.low_hit_ratio", finding.evidence | {"evictions": 40}) == [{"megabytes": 10}]
    finally:
        await plugin.close()


def test_log_source_only_when_kept(tmp_path: Path) -> None:
    assert MemcachedPlugin.create(MemcachedConfig()).log_sources() == []
    kept = MemcachedPlugin.create(MemcachedConfig(log_path=str(tmp_path / "memcached.log"))).log_sources()
    assert [s.path for s in kept] == [str(tmp_path / "memcached.log")]
