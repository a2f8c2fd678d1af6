"""A real three-node cluster with TLS and SASL/SCRAM, as a user's Strimzi, MSK or Confluent cluster: the contract's
topics at replication factor 3 and min.insync.replicas 2; acks=all writes that survive a broker stopped or killed;
unauthenticated, mis-authenticated and untrusting clients refused; the agent, a real worker, the API and the CLI
each working through it with their own credentials from settings."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAuthorizationFailedError
from pydantic import SecretStr

from kubestack.agents.metrics import AgentMetrics
from kubestack.agents.sender import SpoolingPublisher
from kubestack.agents.spool import Spool
from kubestack.api.app import create_app
from kubestack.api.publisher import Publisher
from kubestack.api.auth import new_token, token_spec
from kubestack.apisettings import ApiSettings, Role
from kubestack.bus import client_options, create_topics, describe_cluster, ensure_topics, producer_options
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import Decision, Finding, HealthReport, IncidentStatus, RemediationDecision, Severity
from kubestack.contract.topics import HEALTH, INCIDENTS, REMEDIATION_DECISIONS, TOPICS
from kubestack.deploy.kafka.acls import create_acls, topic_acls
from kubestack.errors import ActionError, KafkaError, KafkaUnavailableError, PreconditionFailedError
from kubestack.pipeline.drift import member_drifts
from kubestack.plugins.base import SecretRef
from kubestack.plugins.kafka import KafkaPlugin
from kubestack.plugins.kafka.config import KafkaPluginConfig
from kubestack.plugins.kafka.declaration import AGREEMENTS as KAFKA_AGREEMENTS
from kubestack.settings import KafkaCredentials, KafkaSettings, Settings
from tests.cli import follow, run
from tests.factories import SOURCE
from tests.kafka_io import consume, consume_all
from tests.services.process import free_port

pytestmark = pytest.mark.kafka


async def _replication(kafka: KafkaSettings, topics: list[str]) -> dict[str, tuple[set[int], set[int], str]]:
    """topic → (replica counts of its partitions, in-sync replica counts, min.insync.replicas)."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await admin.close()
    min_isr = {}
    for response in configs:
        for _code, _message, _type, name, entries in response.resources:
            min_isr[name] = next(value for key, value, *_ in entries if key == "min.insync.replicas")
    return {t["topic"]: ({len(p["replicas"]) for p in t["partitions"]}, {len(p["isr"]) for p in t["partitions"]},
                         min_isr[t["topic"]]) for t in described}


async def _leader(kafka: KafkaSettings, topic: str) -> int:
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return described["partitions"][0]["leader"]


async def _wait_in_sync(kafka: KafkaSettings, topic: str, replicas: int = 3, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (isr := (await _replication(kafka, [topic]))[topic][1]) != {replicas}:
        assert time.monotonic() < deadline, f"{topic} still has {isr} in-sync replicas, not {replicas}"
        await asyncio.sleep(1)


async def test_three_brokers_and_every_contract_topic_replicated_three_times(kafka_cluster) -> None:
    status = run("kafka", "status", "--brokers", "3", "--secure", "--json", env=kafka_cluster.env)
    assert status.returncode == 0, status.stdout + status.stderr
    state = json.loads(status.stdout)
    assert len(state["cluster"]["brokers"]) == 3 and all(state["nodes"].values()), state
    assert state["secure"] and state["client_settings"] == str(kafka_cluster.client_file)

    names = [spec.qualified("") for spec in TOPICS]
    replication = await _replication(kafka_cluster.kafka, names)
    assert set(replication) == set(names)
    assert {name: r for name, r in replication.items() if r != ({3}, {3}, "2")} == {}, "RF 3, all in sync, min ISR 2"
    settings = kafka_cluster.kafka
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2), "clients create topics alike"
    print(f"3-node secure cluster started in {kafka_cluster.started_in_s:.1f}s")


@pytest.mark.parametrize("how", ["stop", "kill -9"])
async def test_acks_all_writes_survive_the_leader_lost_and_it_comes_back(kafka_cluster, unique, how) -> None:
    kafka = kafka_cluster.kafka.for_component("agent")
    topic = f"test.cluster.{unique}"
    await create_topics(kafka, [NewTopic(topic, 1, 1)])  # replicated as the settings say: 3, min ISR 2
    await _wait_in_sync(kafka, topic)
    assert producer_options(kafka)["acks"] == "all"
    producer = AIOKafkaProducer(**producer_options(kafka))
    await producer.start()
    leader = await _leader(kafka, topic)
    try:
        for i in range(20):
            await producer.send_and_wait(topic, f"before-{i}".encode())
        if how == "stop":
            await asyncio.to_thread(kafka_cluster.local.stop, 60.0, [leader])
        else:
            kafka_cluster.local.kill(leader)
        assert kafka_cluster.local.node(leader).pid() is None
        lost_at = time.monotonic()
        for i in range(20):  # two in-sync replicas are left: min.insync.replicas is met, every write is acked
            await asyncio.wait_for(producer.send_and_wait(topic, f"after-{i}".encode()), 90)
        print(f"{how}: writes acked again {time.monotonic() - lost_at:.1f}s after the leader went")
        assert await _leader(kafka, topic) != leader
    finally:
        await producer.stop()
        if kafka_cluster.local.node(leader).pid() is None:
            await asyncio.to_thread(kafka_cluster.restart, leader)
    await _wait_in_sync(kafka, topic)  # it came back and caught up
    values = [r.value.decode() for r in await consume_all(kafka, topic, f"test-group-{unique}")]
    assert values == [f"before-{i}" for i in range(20)] + [f"after-{i}" for i in range(20)], "none lost or doubled"


async def test_clients_without_the_right_credentials_or_ca_are_refused(kafka_cluster, caplog) -> None:
    kafka = kafka_cluster.kafka.model_copy(update={"request_timeout_s": 5})
    refused = {
        "plaintext": KafkaSettings(bootstrap=kafka.bootstrap, request_timeout_s=5),
        "SaslAuthenticationFailed": kafka.model_copy(update={"sasl_password": SecretStr("not-the-password")}),
        "CERTIFICATE_VERIFY_FAILED": kafka.model_copy(update={"ssl_cafile": None}),  # trusts only the system's CAs
    }
    for reason, settings in refused.items():
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaUnavailableError):
            await describe_cluster(settings)
        if reason != "plaintext":  # a plaintext client only sees the connection closed
            assert reason in caplog.text, caplog.text
    assert len((await describe_cluster(kafka)).brokers) == 3


async def test_agent_worker_api_and_cli_work_through_it_with_their_own_credentials(kafka_cluster, unique,
                                                                                   tmp_path) -> None:
    prefix, app_id = f"test.{unique}.", f"test-worker-{unique}"
    kafka = kafka_cluster.kafka.model_copy(update={"topic_prefix": prefix})
    assert {c: client_options(kafka.for_component(c))["sasl_plain_username"] for c in ("agent", "worker", "api")} == {
        "agent": "kubestack-agent", "worker": "kubestack-worker", "api": "kubestack-api"}
    await ensure_topics(kafka)
    await kafka_cluster.local.grant(prefix)  # each component writes only its own topics under this prefix
    env = {**kafka_cluster.env, "KUBESTACK_KAFKA__TOPIC_PREFIX": prefix, "KUBESTACK_WORKER__APP_ID": app_id,
           "KUBESTACK_HOME": str(tmp_path / "worker")}
    worker = follow("worker", env=env)  # settings from the cluster's client.yaml: SASL_SSL as kubestack-worker
    try:  # the agent's part while the worker starts: the worker reads the health topic from its beginning
        # The agent's own identity, proven by a wrong password for it alone: nothing leaves its spool.
        wrong = kafka.model_copy(update={"components": kafka.components | {
            "agent": KafkaCredentials(username="kubestack-agent", password=SecretStr("wrong"))}})
        refused = SpoolingPublisher(wrong, Spool(tmp_path / "refused-spool"), AgentMetrics())
        refused.start()
        cache = ResourceRef(kind="redis", name="cache-1", host="db-1", labels={"service": "shop"})
        await refused.publish(HEALTH, HealthReport(source=SOURCE, resource=cache, tenant="acme", findings=[]))
        assert not await refused.flush(5) and refused.spool.pending == 1
        await refused.stop(flush_timeout_s=0.1)

        agent = SpoolingPublisher(kafka, Spool(tmp_path / "spool"), AgentMetrics())
        agent.start()
        try:
            await agent.publish(HEALTH, HealthReport(source=SOURCE, resource=cache, tenant="acme", findings=[
                Finding(rule_id="redis.evictions", severity=Severity.CRITICAL, message="evicting keys")]))
            assert await agent.flush(60), "the agent's credentials were refused"
        finally:
            await agent.stop()

        assert worker.wait_for("Worker ready", timeout_s=240), worker.output[-6000:]
        records = await consume(kafka, INCIDENTS.qualified(prefix), 1, f"{app_id}-incidents", timeout_s=120)
        assert records, worker.output[-6000:]
        incident = INCIDENTS.decode(records[0].value)
        assert incident.status == IncidentStatus.OPEN and "redis.evictions" in incident.title
        await _only_the_api_writes_decisions(kafka, incident.incident_id)

        await _api_reads_it(kafka, tmp_path, incident.incident_id)
        # The CLI as the shared identity: `knowledge follow` reads the incidents topic (this one is open, so it is
        # not remembered); with a wrong password it cannot. Both at once: each is a CLI start of its own.
        cli, refused = await asyncio.gather(
            asyncio.to_thread(run, "knowledge", "follow", "--idle-exit", "3", env=env, timeout=180),
            asyncio.to_thread(run, "knowledge", "follow", "--idle-exit", "3",
                              env={**env, "KUBESTACK_KAFKA__SASL_PASSWORD": "wrong"}, timeout=180))
        assert cli.returncode == 0 and "0 resolved incident(s) remembered" in cli.stderr, cli.stdout + cli.stderr
        assert refused.returncode == 1 and "SaslAuthenticationFailed" in refused.stderr, refused.stderr[-3000:]
    finally:
        code = worker.stop()
    assert code == 0, worker.output[-6000:]


async def _only_the_api_writes_decisions(kafka: KafkaSettings, incident_id: str) -> None:
    """Least privilege: the agent's credentials cannot write a decision nor grant themselves the right to; the
    API's can."""
    decision = RemediationDecision(source=SOURCE, resource=ResourceRef(kind="redis", name="cache-1", host="db-1"),
                                   tenant="acme", incident_id=incident_id, proposal_id="p-1",
                                   decision=Decision.APPROVE, actor="mallory", via="cli")
    key, value = REMEDIATION_DECISIONS.encode(decision)
    agent = AIOKafkaProducer(**producer_options(kafka.for_component("agent")))
    await agent.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await agent.send_and_wait(REMEDIATION_DECISIONS.qualified(kafka.topic_prefix), value, key=key)
    finally:
        await agent.stop()
    with pytest.raises(KafkaError, match="error 31"):  # CLUSTER_AUTHORIZATION_FAILED: ACLs take the super user
        await create_acls(kafka.for_component("agent"), topic_acls(kafka.topic_prefix, {
            "agent": "kubestack-agent", "worker": "kubestack-agent", "api": "kubestack-agent"}))
    api = Publisher(kafka)
    await api.start()
    try:
        await api.send(REMEDIATION_DECISIONS, decision)
    finally:
        await api.stop()
    (record,) = await consume(kafka, REMEDIATION_DECISIONS.qualified(kafka.topic_prefix), 1, f"d-{incident_id[:8]}")
    assert REMEDIATION_DECISIONS.decode(record.value).actor == "mallory", "the API's decision, the agent's refused"


async def _api_reads_it(kafka: KafkaSettings, tmp_path, incident_id: str) -> None:
    """The API as kubestack-api: its feed reads the incident the worker wrote, and its health finds Kafka."""
    token = new_token()
    api = ApiSettings(port=free_port(), tokens=[token_spec(token, "ada", Role.ADMIN, None)],
                      feed_group=f"test-api-{incident_id[:8]}")
    app = create_app(Settings(home=tmp_path / "api", kafka=kafka), api)
    server = uvicorn.Server(uvicorn.Config(app, host=api.host, port=api.port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://{api.host}:{api.port}", timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            deadline = time.monotonic() + 90
            while (response := await client.get(f"/api/v1/incidents/{incident_id}")).status_code != 200:
                assert time.monotonic() < deadline, f"the API never read the incident: {response.text[:300]}"
                await asyncio.sleep(0.5)
            health = (await client.get("/api/v1/health")).json()
        assert health["kafka_reachable"] and health["feed"]["running"] and not health["feed"].get("error"), health
    finally:
        server.should_exit = True
        await task


def _plugin_config(kafka: KafkaSettings) -> KafkaPluginConfig:
    """The Kafka plugin reaching the secure cluster with the identity of ``kafka`` (its password as a SecretRef)."""
    return KafkaPluginConfig(bootstrap=kafka.bootstrap, security_protocol=kafka.security_protocol,
                             sasl_mechanism=kafka.sasl_mechanism, sasl_username=kafka.sasl_username,
                             sasl_password=SecretRef(value=kafka.sasl_password), ssl_cafile=kafka.ssl_cafile,
                             ssl_check_hostname=kafka.ssl_check_hostname, timeout_s=10)


async def test_every_broker_is_in_the_snapshot_and_kafka_4_refuses_a_per_broker_min_insync_replicas(
        kafka_cluster) -> None:
    """The snapshot describes each broker (a drift names one); aligning a broker's min.insync.replicas is
    dry-run as a change from its value to the others', but Kafka 4 with eligible leader replicas (ELR, on by default)
    refuses any broker-level min.insync.replicas, so the action reports Kafka's refusal and nothing changes: on such
    a cluster the drift can only come from a broker's server.properties (the runbook's restart)."""
    plugin = KafkaPlugin.create(_plugin_config(kafka_cluster.local.admin_settings()))  # the super user may alter
    try:
        snapshot = await plugin.snapshot_config()
        values = {k.split(".")[1]: v for k, v in snapshot.items()
                  if k.startswith("broker.") and k.endswith(".min.insync.replicas")}
        assert len(values) == 3 and len(set(values.values())) == 1, values
        assert member_drifts(KAFKA_AGREEMENTS, snapshot) == []
        broker, common = max(values, key=int), next(iter(values.values()))
        params = {"broker": int(broker), "setting": "min.insync.replicas", "value": int(common) + 1}
        dry = await plugin.execute("kafka.set_broker_config", params, dry_run=True)
        assert dry.output.startswith(f"would set min.insync.replicas on broker {broker}: {common} → {int(common) + 1}")
        assert dry.undo == ("kafka.set_broker_config", {"broker": int(broker), "setting": "min.insync.replicas",
                                                        "value": None}), "no override before: undo removes it"
        with pytest.raises(ActionError, match="cannot be altered while ELR is enabled"):
            await plugin.execute("kafka.set_broker_config", params)
        with pytest.raises(PreconditionFailedError, match="no broker 99"):
            await plugin.execute("kafka.set_broker_config", params | {"broker": 99}, dry_run=True)
        assert await plugin.snapshot_config() == snapshot, "nothing changed"
    finally:
        await plugin.close()


async def _settled(plugin: KafkaPlugin, setting: str, want, timeout_s: float = 20.0) -> dict[str, str]:
    """The snapshot once ``want(values of setting per broker)`` holds (a broker applies an override a moment after
    AlterConfigs answers)."""
    deadline = time.monotonic() + timeout_s
    while True:
        snapshot = await plugin.snapshot_config()
        values = {k.split(".")[1]: v for k, v in snapshot.items()
                  if k.startswith("broker.") and k.endswith(f".{setting}")}
        if want(values) or time.monotonic() > deadline:
            return snapshot
        await asyncio.sleep(0.5)


async def test_a_broker_whose_message_max_bytes_drifts_is_named_and_aligned_as_proposed(kafka_cluster) -> None:
    """A real drift on the real cluster: one broker given a smaller ``message.max.bytes`` (a per-broker override,
    which Kafka 4 allows) is named by the drift rule with the others' value as evidence; the proposal made from that
    evidence (the others' value: ``tests/test_kafka_drift_action.py`` makes it), carried out, aligns it, and the drift
    is gone; the override is removed again at the end."""
    plugin = KafkaPlugin.create(_plugin_config(kafka_cluster.local.admin_settings()))
    setting = "message.max.bytes"
    broker = None
    try:
        snapshot = await plugin.snapshot_config()
        values = {k.split(".")[1]: v for k, v in snapshot.items()
                  if k.startswith("broker.") and k.endswith(f".{setting}")}
        assert len(values) == 3 and len(set(values.values())) == 1, values
        broker, common = max(values, key=int), int(next(iter(values.values())))
        smaller = {"broker": int(broker), "setting": setting, "value": common // 2}
        await plugin.execute("kafka.set_broker_config", smaller)
        drifted = await _settled(plugin, setting, lambda v: v.get(broker) == str(common // 2))
        [(member, drift)] = member_drifts(KAFKA_AGREEMENTS, drifted)
        assert (member, drift.setting, drift.value, drift.peer_value) == (broker, setting, str(common // 2),
                                                                          str(common))
        aligned = await plugin.execute("kafka.set_broker_config", {"broker": int(broker), "setting": setting,
                                                                   "value": int(drift.peer_value)})
        assert aligned.undo == ("kafka.set_broker_config", smaller), "its undo puts the broker's override back"
        after = await _settled(plugin, setting, lambda v: len(set(v.values())) == 1)
        assert member_drifts(KAFKA_AGREEMENTS, after) == [], "aligned: no drift"
    finally:
        if broker is not None:
            await plugin.execute("kafka.set_broker_config", {"broker": int(broker), "setting": setting,
                                                             "value": None})
        await plugin.close()
