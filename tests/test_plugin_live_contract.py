"""The same live conformance checks for every installed plugin, against a real server of its middleware: what it
collects is named ``<plugin>_<what>`` and finite, its configuration snapshot is text, and every rule its health
checks report is one it declares. Each plugin names here the fixture-started server it is checked against; a plugin
without one fails (its live tests are part of being a plugin)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import pytest

from kubestack.contract.events import Peer
from kubestack.plugins.base import PeerDiscovery, ResourceWatcher
from kubestack.plugins.registry import GROUP, plugins


def _redis(request: pytest.FixtureRequest) -> dict[str, Any]:
    server = request.getfixturevalue("redis_server")
    return {"host": server.host, "port": server.port, "password": {"value": server.password}}


def _mysql(request: pytest.FixtureRequest) -> dict[str, Any]:
    server = request.getfixturevalue("mariadb_server")
    return {"host": server.host, "port": server.port, "user": server.user, "password": {"value": server.password}}


def _postgresql(request: pytest.FixtureRequest) -> dict[str, Any]:
    server = request.getfixturevalue("postgresql_server")
    return {"host": server.host, "port": server.port, "dbname": server.dbname, "user": server.user,
            "password": {"value": server.password}}


def _kafka(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"bootstrap": request.getfixturevalue("kafka_bootstrap"), "timeout_s": 15}  # a fresh broker is slow once


def _kubernetes(request: pytest.FixtureRequest) -> dict[str, Any]:
    cluster = request.getfixturevalue("kube_cluster")
    return {"server": cluster.server, "token": {"value": cluster.token}, "ca_file": str(cluster.ca_file)}


def _local(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {}


LIVE: dict[str, Callable[[pytest.FixtureRequest], dict[str, Any]]] = {
    "redis": _redis, "mysql": _mysql, "postgresql": _postgresql, "kafka": _kafka, "kubernetes": _kubernetes,
    "host": _local, "agent": _local,
}
"""Plugin name -> the config of a real server its tests start (empty: its example config, this machine's host and
agent)."""
NAMES = sorted(ep.name for ep in entry_points(group=GROUP))


@pytest.fixture(params=NAMES)
def live(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """(plugin name, config of its real server); the servers' fixtures start outside the test's event loop."""
    name = request.param
    assert name in LIVE, f"plugin {name} names no real server to be checked against"
    return name, LIVE[name](request)


async def test_a_live_round_follows_the_contract(live: tuple[str, dict[str, Any]]) -> None:
    name, server = live
    plugin_cls = plugins()[name]
    config = plugin_cls.config_model.model_validate(server or plugin_cls.example_config())
    plugin = plugin_cls.create(config)
    try:
        samples = await plugin.collect()
        snapshot = await plugin.snapshot_config()
        findings = await plugin.check_health()
        peers = await plugin.peers() if isinstance(plugin, PeerDiscovery) else []
    finally:
        await plugin.close()
    assert samples or isinstance(plugin, ResourceWatcher), "a round collects metrics (a watcher's come from its watch)"
    assert [s.name for s in samples if not re.fullmatch(rf"{name}_[a-z0-9_]+", s.name)] == []
    assert [s.name for s in samples if not math.isfinite(s.value)] == []
    assert snapshot and all(isinstance(k, str) and isinstance(v, str) for k, v in snapshot.items())
    assert sorted({f.rule_id for f in findings} - set(plugin_cls.rules)) == [], "findings of undeclared rules"
    assert all(isinstance(p, Peer) for p in peers)
