"""The same live conformance checks for every installed plugin, against a real server of its middleware: what it
collects is named ``<plugin>_<what>`` and finite, its configuration snapshot is text, and every rule its health
checks report is one it declares. Each plugin's tests name the fixture-started server it is checked against (a
fixture ``<plugin>_live_config``, next to the fixture that starts the server); a plugin without one fails (its live
tests are part of being a plugin)."""

from __future__ import annotations

import math
import re
from importlib.metadata import entry_points
from typing import Any

import pytest

from kubestack.contract.events import Peer
from kubestack.plugins.base import PeerDiscovery, ResourceWatcher
from kubestack.plugins.registry import GROUP, plugins


@pytest.fixture
def redis_live_config(redis_server) -> dict[str, Any]:
    return {"host": redis_server.host, "port": redis_server.port, "password": {"value": redis_server.password}}


@pytest.fixture
def mysql_live_config(mariadb_server) -> dict[str, Any]:
    return {"host": mariadb_server.host, "port": mariadb_server.port, "user": mariadb_server.user,
            "password": {"value": mariadb_server.password}}


@pytest.fixture
def postgresql_live_config(postgresql_server) -> dict[str, Any]:
    return {"host": postgresql_server.host, "port": postgresql_server.port, "dbname": postgresql_server.dbname,
            "user": postgresql_server.user, "password": {"value": postgresql_server.password}}


@pytest.fixture
def kafka_live_config(kafka_bootstrap: str) -> dict[str, Any]:
    return {"bootstrap": kafka_bootstrap, "timeout_s": 15}  # a fresh broker is slow once


@pytest.fixture
def kubernetes_live_config(kube_cluster) -> dict[str, Any]:
    return {"server": kube_cluster.server, "token": {"value": kube_cluster.token}, "ca_file": str(kube_cluster.ca_file)}


@pytest.fixture
def host_live_config() -> dict[str, Any]:
    return {}  # this machine


@pytest.fixture
def agent_live_config() -> dict[str, Any]:
    return {}  # this agent


NAMES = sorted(ep.name for ep in entry_points(group=GROUP))


@pytest.fixture(params=NAMES)
def live(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """(plugin name, config of its real server): the fixture ``<plugin>_live_config``, found by name (the plugin's
    own ``tests/services`` module defines it; empty: its example config); the servers start outside the test's
    event loop."""
    name = request.param
    try:
        return name, request.getfixturevalue(f"{name}_live_config")
    except pytest.FixtureLookupError:
        pytest.fail(f"plugin {name} names no real server to be checked against: define a fixture "
                    f"'{name}_live_config' returning the config of one its tests start")


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
