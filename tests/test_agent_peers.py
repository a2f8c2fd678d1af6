"""The agent sends what its targets observe of their connections with every health report, and each resource
carries its own listen address, so that the worker can tell who talks to whom (real Redis primary and replica,
a real PostgreSQL, the session's Kafka)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import redis

from kubestack.agents.config import AgentConfig
from kubestack.agents.runtime import Agent
from kubestack.agents.targets import listen_address
from kubestack.bus import ensure_topics
from kubestack.contract.events import HealthReport, Peer, PeerRole
from kubestack.contract.topics import CONFIG_CHANGES, CONFIG_SNAPSHOTS, HEALTH, LOGS, METRICS
from kubestack.pipeline.topology import Topology
from kubestack.plugins.kafka import KafkaPluginConfig
from kubestack.plugins.postgresql import PostgreSQLConfig
from kubestack.plugins.redis import RedisConfig
from kubestack.settings import KafkaSettings, Settings
from tests.kafka_io import consume
from tests.services.postgresql import PostgresServer, running_postgresql
from tests.services.redis import RedisServer

pytestmark = pytest.mark.kafka

TOPICS = (METRICS, HEALTH, CONFIG_SNAPSHOTS, CONFIG_CHANGES, LOGS)


def redis_target(name: str, server: RedisServer) -> dict:
    return {"type": "redis", "name": name, "interval": "30s", "health_interval": "1s", "config_interval": "1h",
            "config": {"host": server.host, "port": server.port, "password": {"value": server.password},
                       "log_path": "/nonexistent/redis.log"}}


async def health_reports(kafka: KafkaSettings, config: dict, tmp_path, unique: str, wanted: set[str],
                         ) -> dict[str, HealthReport]:
    """Run an agent until each target in ``wanted`` has sent a health report; the last report of each."""
    agent = Agent(AgentConfig.model_validate(config), Settings(home=tmp_path, kafka=kafka))
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    latest: dict[str, HealthReport] = {}
    try:
        for attempt in range(30):
            records = await consume(kafka, HEALTH.qualified(kafka.topic_prefix), 2 * len(wanted) + 2 * attempt,
                                    f"h-{unique}-{attempt}", timeout_s=3)
            latest = {r.resource.name: r for r in map(HEALTH.decode, (rec.value for rec in records))}
            if wanted <= set(latest):
                break
    finally:
        stop.set()
        await running
    assert wanted <= set(latest), f"health reports seen only for {sorted(latest)}"
    return latest


async def test_reports_carry_peers_and_addresses_that_link_primary_and_replica(
        kafka: KafkaSettings, redis_server: RedisServer, redis_replica: RedisServer, unique: str, tmp_path) -> None:
    kafka = kafka.model_copy(update={"topic_prefix": f"test.{unique}."})
    await ensure_topics(kafka, TOPICS)
    app = redis.Redis(host=redis_server.host, port=redis_server.port, password=redis_server.password,
                      client_name=f"app-{unique}")
    app.ping()
    config = {"agent": {"name": f"peers-{unique}", "metrics_listen": None},
              "targets": [redis_target("primary", redis_server), redis_target("replica", redis_replica)]}
    try:
        reports = await health_reports(kafka, config, tmp_path, unique, {"primary", "replica"})
    finally:
        app.close()
    primary, replica = reports["primary"], reports["replica"]
    assert primary.resource.labels["address"] == f"{redis_server.host}:{redis_server.port}"
    assert replica.resource.labels["address"] == f"{redis_replica.host}:{redis_replica.port}"
    assert "redis.no_maxmemory" in {f.rule_id for f in primary.findings}, "findings travel with the peers"
    assert Peer(role=PeerRole.REPLICA, address=f"127.0.0.1:{redis_replica.port}") in primary.peers
    assert any(p.role == PeerRole.CLIENT and p.address == "127.0.0.1" for p in primary.peers)
    assert Peer(role=PeerRole.PRIMARY, address=f"{redis_server.host}:{redis_server.port}") in replica.peers
    for one_side in (primary, replica):  # either side alone tells the worker they are linked
        graph = Topology()
        graph.learn(one_side)
        assert graph.linked(primary.resource, replica.resource)


async def test_a_failed_peer_lookup_keeps_the_findings(kafka: KafkaSettings, unique: str, tmp_path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A hardened server refuses pg_stat_wal_receiver to the monitoring role: the health rules still run and
    their findings are sent, without peers."""
    kafka = kafka.model_copy(update={"topic_prefix": f"test.{unique}."})
    await ensure_topics(kafka, TOPICS)
    with running_postgresql("agent-peers") as server:
        with server.admin() as admin:  # the catalog of the database the plugin logs in to
            admin.execute("REVOKE SELECT ON pg_catalog.pg_stat_wal_receiver FROM PUBLIC")
        idle = await idle_in_transaction(server)
        config = {"agent": {"name": f"pg-{unique}", "metrics_listen": None},
                  "targets": [{"type": "postgresql", "name": "orders", "interval": "30s", "health_interval": "1s",
                               "config_interval": "1h",
                               "config": {"host": server.host, "port": server.port, "dbname": server.dbname,
                                          "user": server.user, "password": {"value": server.password},
                                          "idle_in_transaction_s": 0, "log_path": "/nonexistent/pg.log"}}]}
        try:
            reports = await health_reports(kafka, config, tmp_path, unique, {"orders"})
        finally:
            await idle.close()
    orders = reports["orders"]
    assert orders.reachable and orders.peers == [], "the idle session would be a client peer"
    assert "orders: connections not observed this round" in caplog.text and "pg_stat_wal_receiver" in caplog.text
    assert "postgresql.idle_in_transaction" in {f.rule_id for f in orders.findings}
    assert orders.resource.labels["address"] == f"{server.host}:{server.port}"


async def idle_in_transaction(server: PostgresServer) -> psycopg.AsyncConnection:
    conn = await psycopg.AsyncConnection.connect(host=server.host, port=server.port, user=server.user,
                                                 password=server.password, dbname=server.dbname)
    await conn.execute("select 1")  # opens the transaction, then sits idle in it
    return conn


def test_the_listen_address_comes_from_the_plugin_config() -> None:
    assert listen_address(RedisConfig(host="10.0.0.5", port=6380)) == "10.0.0.5:6380"
    assert listen_address(RedisConfig(host="fd00::5")) == "[fd00::5]:6379"
    assert listen_address(RedisConfig(unix_socket="/run/redis/redis.sock")) is None
    assert listen_address(PostgreSQLConfig(host="/var/run/postgresql")) == "localhost:5432"
    assert listen_address(KafkaPluginConfig()) is None  # brokers are many; groups link Kafka, not addresses


def test_a_label_set_on_the_target_wins(tmp_path) -> None:
    config = AgentConfig.model_validate({"agent": {"name": "a1", "metrics_listen": None}, "targets": [
        {"type": "redis", "name": "nat", "config": {"host": "127.0.0.1"}, "labels": {"address": "203.0.113.9:6379"}},
        {"type": "redis", "name": "plain", "config": {"host": "10.0.0.5"}, "labels": {"service": "checkout"}}]})
    agent = Agent(config, Settings(home=tmp_path))
    labels = {c.name: c.resource.labels for c in agent.collectors}
    assert labels == {"nat": {"address": "203.0.113.9:6379"},
                      "plain": {"address": "10.0.0.5:6379", "service": "checkout"}}
