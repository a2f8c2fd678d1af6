"""Configuration drift along the topology: the pure comparison on declared agreements, then real primary/replica
pairs (a Redis replica, a PostgreSQL standby: their real snapshots and peers through the stage), and one drift
end to end through the real worker and broker, answered by a proposal with the primary's value."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from kubestack.agents.configdiff import digest
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigSnapshot, HealthReport, IncidentSignal, SignalKind
from kubestack.errors import TargetUnreachableError
from kubestack.pipeline.drift import DriftWatch, compare, member_drifts
from kubestack.pipeline.proposals import supported
from kubestack.pipeline.topology import Topology
from kubestack.plugins.agreement import AT_LEAST, EQUAL, Agreement, PeerAgreements
from kubestack.plugins.kafka.declaration import AGREEMENTS as KAFKA
from kubestack.plugins.postgresql import PostgreSQLPlugin
from kubestack.plugins.postgresql.declaration import AGREEMENTS as POSTGRESQL
from kubestack.plugins.redis import RedisPlugin
from kubestack.plugins.redis.declaration import ACTIONS as REDIS_ACTIONS
from kubestack.plugins.redis.declaration import AGREEMENTS as REDIS
from tests.factories import SOURCE
from tests.services.postgresql import PostgresServer, standby_of
from tests.services.redis import RedisServer
from tests.test_plugin_postgresql import config_for as pg_config
from tests.test_plugin_redis import config_for as redis_config

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


# --- the pure comparison ---------------------------------------------------------------------------------


def test_replica_below_or_unlike_its_primary_drifts_and_unlimited_is_above_all() -> None:
    primary = {"maxmemory": "104857600", "maxmemory-policy": "allkeys-lru"}
    assert compare(REDIS, primary, dict(primary)) == []
    drifts = compare(REDIS, primary, {"maxmemory": "52428800", "maxmemory-policy": "noeviction"})
    assert [(d.setting, d.rule, d.value, d.peer_value, d.side) for d in drifts] == [
        ("maxmemory", AT_LEAST, "52428800", "104857600", "replica"),
        ("maxmemory-policy", EQUAL, "noeviction", "allkeys-lru", "replica")]
    assert compare(REDIS, primary, {"maxmemory": "0", "maxmemory-policy": "allkeys-lru"}) == []   # 0: no limit
    assert [d.setting for d in compare(REDIS, {"maxmemory": "0"}, {"maxmemory": "1048576"})] == ["maxmemory"]
    assert compare(REDIS, primary, {"maxmemory": "209715200"}) == [], "more memory, policy unknown: no drift"


def test_standby_settings_must_be_at_least_the_primarys_and_members_compare_only_equal_ones() -> None:
    primary = {"max_connections": "200", "max_worker_processes": "8", "max_locks_per_transaction": "64"}
    standby = {"max_connections": "100", "max_worker_processes": "16", "max_locks_per_transaction": "64"}
    assert [(d.setting, d.value, d.peer_value) for d in compare(POSTGRESQL, primary, standby)] == [
        ("max_connections", "100", "200")]
    assert compare(POSTGRESQL, primary, standby, directed=False) == [], "members of a service: equal ones only"
    mixed = PeerAgreements("x.drift", (Agreement("mode"), Agreement("limit", AT_LEAST)))
    assert [d.side for d in compare(mixed, {"mode": "a", "limit": "5"}, {"mode": "B", "limit": "1"}, False)] == [
        "member"]
    with pytest.raises(ValueError, match="neither"):
        Agreement("limit", "greater")


def test_kafka_brokers_of_one_snapshot_that_differ_from_the_others() -> None:
    config = {"broker.1.min.insync.replicas": "2", "broker.2.min.insync.replicas": "2",
              "broker.10.min.insync.replicas": "1", "broker.1.default.replication.factor": "3",
              "broker.2.default.replication.factor": "3", "broker.10.default.replication.factor": "3",
              "broker.1.log.retention.hours": "168", "broker.2.log.retention.hours": "24",
              "topic.orders.min.insync.replicas": "1"}
    found = member_drifts(KAFKA, config)
    assert [(m, d.setting, d.value, d.peer_value) for m, d in found] == [("10", "min.insync.replicas", "1", "2")]
    watch = DriftWatch("acme")
    cluster = ResourceRef(kind="kafka", name="events", host="kafka-1")
    snapshot = ConfigSnapshot(source=SOURCE, resource=cluster, tenant="acme", ts=NOW, config=config,
                              digest=digest(config))
    [risk] = watch.observe(snapshot, Topology(), SOURCE)
    assert risk.detector == "config-risk" and risk.signal == "kafka.broker_config_drift"
    assert "member(s) 10" in risk.details["message"]
    assert watch.observe(snapshot, Topology(), SOURCE) == [], "the same drift is raised once"
    assert "broker.1.log.retention.hours" not in watch.configs[cluster.key]["config"], "only declared settings kept"


# --- real pairs --------------------------------------------------------------------------------------------


def listening(name: str, host: str, port: int, kind: str) -> ResourceRef:
    return ResourceRef(kind=kind, name=name, host="db-1", labels={"address": f"{host}:{port}"})


async def observed(plugin, ref: ResourceRef, tenant: str = "acme") -> tuple[ConfigSnapshot, HealthReport]:
    config = await plugin.snapshot_config()
    return (ConfigSnapshot(source=SOURCE, resource=ref, tenant=tenant, ts=NOW, config=config, digest=digest(config)),
            HealthReport(source=SOURCE, resource=ref, tenant=tenant, ts=NOW, peers=await plugin.peers()))


def signal_of(anomaly) -> IncidentSignal:
    return IncidentSignal(event_id=anomaly.event_id, kind=SignalKind.ANOMALY,
                          name=f"{anomaly.detector}:{anomaly.signal}", resource=anomaly.resource.key,
                          severity=anomaly.severity, first_seen=anomaly.ts, last_seen=anomaly.ts,
                          summary=anomaly.details["message"], details={"evidence": anomaly.details["evidence"]})


async def redis_pair(primary: RedisServer, replica: RedisServer) -> dict:
    refs = {"primary": listening("primary", primary.host, primary.port, "redis"),
            "replica": listening("replica", replica.host, replica.port, "redis")}
    out = {}
    for role, server in (("primary", primary), ("replica", replica)):
        plugin = RedisPlugin.create(redis_config(server))
        try:
            out[role] = await observed(plugin, refs[role])
        finally:
            await plugin.close()
    return out


@pytest.fixture()
def drifted_replica(redis_server: RedisServer, redis_replica: RedisServer):
    """The session's replica with half its primary's maxmemory and another policy; put back afterwards."""
    primary, replica = redis_server.connect(), redis_replica.connect()
    saved = {k: replica.config_get(k)[k] for k in ("maxmemory", "maxmemory-policy")}
    limit = int(primary.config_get("maxmemory")["maxmemory"]) or 256 * 2**20
    primary_saved = primary.config_get("maxmemory")["maxmemory"]
    primary.config_set("maxmemory", limit)
    replica.config_set("maxmemory", limit // 2)
    replica.config_set("maxmemory-policy", "volatile-ttl")
    try:
        yield limit
    finally:
        for key, value in saved.items():
            replica.config_set(key, value)
        primary.config_set("maxmemory", primary_saved)


async def test_real_redis_replica_with_less_memory_and_another_policy_is_a_risk_with_the_primarys_values(
        redis_server: RedisServer, redis_replica: RedisServer, drifted_replica: int) -> None:
    pair = await redis_pair(redis_server, redis_replica)
    topology, watch = Topology(), DriftWatch("acme")
    topology.learn(pair["replica"][1])   # the replica names its primary: either side's report links them
    assert watch.observe(pair["primary"][0], topology, SOURCE) == []
    [risk] = watch.observe(pair["replica"][0], topology, SOURCE)
    assert risk.resource.name == "replica" and risk.signal == "redis.peer_config_drift"
    drifts = {d["setting"]: d for d in risk.details["evidence"]["drifts"]}
    assert drifts["maxmemory"]["value"] == str(drifted_replica // 2)
    assert drifts["maxmemory"]["peer_value"] == str(drifted_replica)
    assert drifts["maxmemory-policy"]["value"] == "volatile-ttl"
    offers = {(a.id, tuple(sorted(p.items()))) for a, p, _, _ in supported([signal_of(risk)], REDIS_ACTIONS)}
    assert offers == {("redis.set_maxmemory", (("bytes", str(drifted_replica)),)),
                      ("redis.set_maxmemory_policy", (("policy", drifts["maxmemory-policy"]["peer_value"]),))}
    assert watch.check(risk.resource.key, topology, NOW, SOURCE) == [], "raised once per drift"


async def test_real_redis_pair_that_agrees_raises_nothing_and_a_health_report_links_it_later(
        redis_server: RedisServer, redis_replica: RedisServer) -> None:
    replica = redis_replica.connect()
    primary = redis_server.connect()
    assert replica.config_get("maxmemory") == primary.config_get("maxmemory")
    pair = await redis_pair(redis_server, redis_replica)
    topology, watch = Topology(), DriftWatch("acme")
    for role in ("primary", "replica"):
        assert watch.observe(pair[role][0], topology, SOURCE) == []   # not linked yet: nothing to compare
    replica.config_set("maxmemory-policy", "allkeys-random")
    try:
        changed = (await redis_pair(redis_server, redis_replica))["replica"]
        assert watch.observe(changed[0], topology, SOURCE) == [], "unlinked peers are not compared"
        topology.learn(pair["primary"][1])   # the primary's report names the replica: now they are linked
        [risk] = watch.check(changed[0].resource.key, topology, NOW, SOURCE)
        assert [d["setting"] for d in risk.details["evidence"]["drifts"]] == ["maxmemory-policy"]
    finally:
        replica.config_set("maxmemory-policy", primary.config_get("maxmemory-policy")["maxmemory-policy"])


async def test_real_postgresql_standby_is_compared_with_its_primary(postgresql_server: PostgresServer) -> None:
    with standby_of(postgresql_server) as port:
        refs = {"primary": listening("primary", postgresql_server.host, postgresql_server.port, "postgresql"),
                "standby": listening("standby", postgresql_server.host, port, "postgresql")}
        seen = {}
        for role, config in (("primary", pg_config(postgresql_server)),
                             ("standby", pg_config(postgresql_server, port=port))):
            plugin = PostgreSQLPlugin.create(config)
            try:
                async with asyncio.timeout(60):
                    while role not in seen:   # the standby accepts sessions once it reached consistency
                        try:
                            seen[role] = await observed(plugin, refs[role])
                        except TargetUnreachableError:
                            await asyncio.sleep(0.2)
            finally:
                await plugin.close()
    topology, watch = Topology(), DriftWatch("acme")
    topology.learn(seen["standby"][1])   # pg_stat_wal_receiver names the primary
    assert watch.observe(seen["primary"][0], topology, SOURCE) == []
    assert watch.observe(seen["standby"][0], topology, SOURCE) == [], "a running hot standby is >= its primary"
    stored = watch.configs[refs["standby"].key]["config"]
    assert set(stored) == {a.setting for a in POSTGRESQL.settings}
    # the standby as it is once the primary raised max_connections (and restarted): replay pauses there
    raised = dict(seen["primary"][0].config, max_connections=str(int(stored["max_connections"]) + 50))
    primary_later = seen["primary"][0].model_copy(update={"config": raised, "digest": digest(raised)})
    [risk] = watch.observe(primary_later, topology, SOURCE)
    assert risk.resource.name == "standby"
    assert [(d["setting"], d["rule"]) for d in risk.details["evidence"]["drifts"]] == [("max_connections", AT_LEAST)]


# --- end to end through the real worker --------------------------------------------------------------------


@pytest.mark.kafka
async def test_worker_raises_the_drift_of_a_real_replica_with_a_proposal_to_align_it(
        kafka, unique, tmp_path, redis_server: RedisServer, redis_replica: RedisServer, drifted_replica: int) -> None:
    from kubestack.contract.topics import ANOMALIES, CONFIG_SNAPSHOTS, HEALTH, REMEDIATION_PROPOSALS
    from tests.cli import cli_env, follow
    from tests.kafka_io import consume, produce

    pair = await redis_pair(redis_server, redis_replica)
    prefix, app_id = f"test.{unique}.", f"test-worker-{unique}"
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=prefix,
                  KUBESTACK_WORKER__APP_ID=app_id, KUBESTACK_HOME=str(tmp_path))
    worker = follow("worker", env=env)
    try:
        assert worker.wait_for("Worker ready"), worker.output
        await produce(kafka, CONFIG_SNAPSHOTS.qualified(prefix),
                      [CONFIG_SNAPSHOTS.encode(pair[r][0]) for r in ("primary", "replica")])
        await produce(kafka, HEALTH.qualified(prefix), [HEALTH.encode(pair["replica"][1])])
        records = await consume(kafka, ANOMALIES.qualified(prefix), 1, f"{app_id}-an", timeout_s=60)
        [risk] = [ANOMALIES.decode(r.value) for r in records]
        assert (risk.signal, risk.resource.name) == ("redis.peer_config_drift", "replica"), worker.output[-4000:]
        proposals = await consume(kafka, REMEDIATION_PROPOSALS.qualified(prefix), 2, f"{app_id}-prop", timeout_s=60)
        offered = {(p.action, tuple(sorted(p.params.items())))
                   for p in map(REMEDIATION_PROPOSALS.decode, (r.value for r in proposals))}
        assert ("redis.set_maxmemory", (("bytes", str(drifted_replica)),)) in offered, worker.output[-4000:]
        assert all(p.resource.name == "replica" for p in map(REMEDIATION_PROPOSALS.decode, (r.value for r in proposals)))
    finally:
        code = worker.stop()
    assert code == 0, worker.output[-4000:]
