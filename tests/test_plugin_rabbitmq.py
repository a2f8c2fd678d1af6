"""The RabbitMQ plugin against a real node (Debian's rabbitmq-server 3.10 with the management plugin), with every
health rule fired by a real condition: a backlog in a queue nobody consumes, a consumer holding deliveries
unacknowledged, the memory alarm (a lowered high watermark) blocking a real publisher, memory near the watermark,
the disk alarm (a raised disk_free_limit) and connection churn; then the actions live (a length cap with its dry
run, preconditions and undo; closing the stuck consumer's connection). Pure parts: the config risks, the remedies
and Kubernetes discovery."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from kubestack.agents.configdiff import diff
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigChange, ConfigDiff, PeerRole
from kubestack.errors import (
    ActionError,
    PreconditionFailedError,
    TargetAuthError,
    TargetUnreachableError,
    UnknownActionError,
)
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.kubernetes.config import DiscoveryConfig
from kubestack.plugins.kubernetes.discovery import discover_targets
from kubestack.plugins.rabbitmq import RabbitMQConfig, RabbitMQPlugin
from kubestack.plugins.rabbitmq.client import path
from kubestack.plugins.rabbitmq.declaration import ACTIONS
from kubestack.plugins.rabbitmq.checks import Observation, evaluate
from kubestack.plugins.rabbitmq.metrics import node_samples, overview_samples
from kubestack.plugins.rabbitmq.parse import parse_channels, parse_connections, parse_nodes, parse_queues
from kubestack.plugins.rabbitmq.peers import rabbitmq_peers
from kubestack.plugins.rabbitmq.risks import config_risks
from kubestack.plugins.remedy import Clue
from tests.factories import SOURCE
from tests.services.process import free_port
from tests.services.rabbitmq import RabbitMQServer


MQ = ResourceRef(kind="rabbitmq", name="mq", host="mq-0")


def rules(findings: list) -> dict:
    return {f.rule_id: f for f in findings}


def offers(rule: str, evidence: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """What each action's remedies offer for a finding, only offers whose params the action accepts."""
    found: dict[str, list[dict[str, Any]]] = {}
    for spec in ACTIONS:
        for remedy in spec.answers:
            if rule in remedy.findings:
                found.setdefault(spec.id, []).extend(
                    p for p, _ in remedy.derive(Clue(rule=rule, evidence=evidence)) if spec.accepts(p))
    return found


@pytest.fixture()
async def plugin(rabbitmq_server: RabbitMQServer) -> AsyncIterator[RabbitMQPlugin]:
    built = RabbitMQPlugin.create(RabbitMQConfig.model_validate(rabbitmq_server.config()))
    yield built
    await built.close()


def tuned(server: RabbitMQServer, **limits: Any) -> RabbitMQPlugin:
    return RabbitMQPlugin.create(RabbitMQConfig.model_validate(server.config(**limits)))


def queue_shows(server: RabbitMQServer, queue: str, **expected: int) -> bool:
    return bool(server.wait_for(f"{queue} with {expected}", lambda api: all(
        (api.get(path("queues", "/", queue)).json().get(k) == v) for k, v in expected.items())))


@pytest.fixture()
def queue(rabbitmq_server: RabbitMQServer, unique: str) -> Iterator[str]:
    name = f"orders-{unique}"
    yield name
    with rabbitmq_server.api() as api:
        api.delete(path("queues", "/", name))
        api.delete(path("policies", "/", f"kubestack-max-length-{name}"))
        api.delete(path("policies", "/", f"ttl-{name}"))


# --- pure -------------------------------------------------------------------------------------------


def change(key: str, old: str | None, new: str | None, **observed: float) -> ConfigChange:
    return ConfigChange(source=SOURCE, resource=MQ, previous_digest="a" * 64, digest="b" * 64,
                        changes=[ConfigDiff(key=key, old=old, new=new)], observed=observed)


def test_config_risks() -> None:
    [lowered] = config_risks(change("mem_limit", "1000000000", "100000000", rabbitmq_mem_used_bytes=150e6))
    assert lowered.rule_id == "rabbitmq.memory_watermark_lowered" and lowered.severity == "critical"
    assert config_risks(change("mem_limit", "100", "200")) == []
    [disk] = config_risks(change("disk_free_limit", "50000000", "1000000"))
    assert disk.rule_id == "rabbitmq.disk_limit_lowered" and disk.evidence["below_default"] is True
    policy = json.dumps({"pattern": "^orders$", "definition": {"max-length": 1000, "dead-letter-exchange": "dlx"}})
    kept = json.dumps({"pattern": "^orders$", "definition": {"dead-letter-exchange": "dlx"}})
    [removed] = config_risks(change("policy///limits", policy, kept))
    assert removed.rule_id == "rabbitmq.queue_limit_removed" and removed.evidence["removed"] == ["max-length"]
    assert config_risks(change("policy///limits", policy, None))[0].rule_id == "rabbitmq.queue_limit_removed"
    [admin] = config_risks(change("user/app", "", "administrator"))
    assert admin.rule_id == "rabbitmq.admin_granted" and admin.evidence["user"] == "app"
    assert config_risks(change("user/ops", "administrator", "administrator,monitoring")) == []


DATA = Path(__file__).parent / "data" / "rabbitmq"


def recorded(name: str) -> Any:
    """Replies of a real 3.10.8 node: queue orders (120 messages, 30 held unacknowledged by orders-worker's
    channel) and invoices (15, no consumer), two client connections."""
    return json.loads((DATA / f"{name}.json").read_text())


def recorded_observation() -> Observation:
    overview = recorded("overview")
    return Observation(node=overview["node"], nodes=parse_nodes(recorded("nodes")),
                       queues=parse_queues(recorded("queues")), connections=parse_connections(recorded("connections")),
                       channels=parse_channels(recorded("channels")))


def test_rules_and_samples_on_recorded_replies() -> None:
    obs = recorded_observation()
    limits = RabbitMQConfig(backlog_max=50, unacked_max=20, idle_queue_min_messages=10)
    found = rules(evaluate(obs, limits))
    assert sorted(found) == ["rabbitmq.no_consumers", "rabbitmq.queue_backlog", "rabbitmq.unacked_messages"]
    assert (found["rabbitmq.queue_backlog"].evidence["queue"], found["rabbitmq.queue_backlog"].evidence["messages"]) \
        == ("orders", 120)
    assert found["rabbitmq.no_consumers"].evidence["queue"] == "invoices"
    unacked = found["rabbitmq.unacked_messages"].evidence
    assert unacked["connection"] == "127.0.0.1:37222 -> 127.0.0.1:44507"
    assert unacked["channels"][0]["messages_unacknowledged"] == 30
    assert evaluate(obs, RabbitMQConfig()) == []
    ts = datetime.now(timezone.utc)
    samples = {s.name: s.value for s in overview_samples(recorded("overview"), obs.queues, ts)
               + node_samples(obs.local, obs.nodes, obs.connections, ts)}
    assert samples["rabbitmq_messages"] == 135 and samples["rabbitmq_messages_unacked"] == 30
    assert samples["rabbitmq_connections_opened_total"] == 2
    assert samples["rabbitmq_mem_used_bytes"] == 143065088 and samples["rabbitmq_memory_used_ratio"] < 0.1
    peers = rabbitmq_peers(obs.nodes, obs.node, obs.connections)
    assert sorted((p.address, p.name, p.count) for p in peers) == [("127.0.0.1", None, 2)]


def test_parsers_read_missing_fields_as_empty() -> None:
    [node] = parse_nodes([{"name": "rabbit@mq-0.mq", "running": True}])
    assert (node.host, node.mem_limit, node.memory_ratio) == ("mq-0.mq", 0.0, None)
    [q] = parse_queues({"items": [{"name": "q", "vhost": "/", "messages": 3, "consumers": True}]})
    assert (q.messages, q.consumers, q.published) == (3, 0, None)
    peers = rabbitmq_peers([node, *parse_nodes([{"name": "rabbit@mq-1.mq"}])], "rabbit@mq-0.mq", parse_connections(
        [{"name": "a", "peer_host": "10.0.0.5", "client_properties": {"connection_name": "billing"}},
         {"name": "b", "peer_host": "10.0.0.5", "client_properties": {"connection_name": "billing"}},
         {"name": "c", "peer_host": None, "type": "direct"}]))
    assert [(p.role, p.address, p.name, p.count) for p in peers] == [
        (PeerRole.SERVER, "mq-1.mq", "rabbit@mq-1.mq", 1), (PeerRole.CLIENT, "10.0.0.5", "billing", 2)]


def test_discovery_finds_a_rabbitmq_pod() -> None:
    pod = {"metadata": {"name": "mq-0", "namespace": "shop", "labels": {"app": "mq"}},
           "spec": {"containers": [{"name": "rabbitmq", "image": "docker.io/library/rabbitmq:3.13-management",
                                    "ports": [{"containerPort": 5672}, {"containerPort": 15672}]}]}}
    service = {"metadata": {"name": "mq", "namespace": "shop"},
               "spec": {"selector": {"app": "mq"}, "ports": [{"port": 5672}, {"port": 15672}]}}
    [target] = discover_targets("prod", [pod], [service], {}, DiscoveryConfig(kinds=["rabbitmq"]))
    assert target["type"] == "rabbitmq"
    assert target["config"] == {"host": "mq.shop.svc.cluster.local", "port": 15672}
    RabbitMQConfig.model_validate(target["config"])


# --- live: collection -------------------------------------------------------------------------------


async def test_a_round_collects_snapshots_and_sees_its_clients(rabbitmq_server: RabbitMQServer,
                                                             plugin: RabbitMQPlugin, queue: str) -> None:
    with rabbitmq_server.amqp("billing") as conn:
        conn.queue_declare(queue)
        conn.publish(queue, b"x" * 64, count=25)
        queue_shows(rabbitmq_server, queue, messages=25)
        rabbitmq_server.wait_for("the client's connection", lambda api: api.get("/connections").json())
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in await plugin.collect()}
        peers = await plugin.peers()
    assert samples[("rabbitmq_mem_limit_bytes", ())] > samples[("rabbitmq_mem_used_bytes", ())] > 0
    assert samples[("rabbitmq_queue_messages_ready", (("queue", queue), ("vhost", "/")))] == 25
    assert samples[("rabbitmq_published_total", ())] >= 25
    assert samples[("rabbitmq_nodes_running", ())] == 1 and samples[("rabbitmq_mem_alarm", ())] == 0
    assert [(p.role, p.address, p.name) for p in peers] == [(PeerRole.CLIENT, "127.0.0.1", "billing")]
    snapshot = await plugin.snapshot_config()
    assert snapshot["rabbitmq_version"].startswith("3.") and int(snapshot["mem_limit"]) > 0
    assert snapshot["user/kubestack"] == "administrator" and "rabbitmq_management" in snapshot["enabled_plugins"]
    assert not any("password" in k or "hash" in v for k, v in snapshot.items())


async def test_wrong_password_and_a_closed_port_are_target_errors(rabbitmq_server: RabbitMQServer) -> None:
    wrong = RabbitMQPlugin.create(RabbitMQConfig.model_validate(rabbitmq_server.config(password={"value": "no"})))
    closed = RabbitMQPlugin.create(RabbitMQConfig(port=free_port(), timeout_s=2))
    try:
        with pytest.raises(TargetAuthError, match="refused the credentials"):
            await wrong.collect()
        with pytest.raises(TargetUnreachableError, match="cannot be reached"):
            await closed.collect()
    finally:
        await wrong.close()
        await closed.close()


async def test_collection_through_curl_reads_the_same(rabbitmq_server: RabbitMQServer, queue: str) -> None:
    config = RabbitMQConfig.model_validate(rabbitmq_server.config(backlog_max=5, idle_queue_min_messages=5))
    through_curl = RabbitMQPlugin.create(config, LocalRunner())
    with rabbitmq_server.amqp() as conn:
        conn.queue_declare(queue)
        conn.publish(queue, b"y", count=10)
    queue_shows(rabbitmq_server, queue, messages=10)
    assert {"rabbitmq.queue_backlog", "rabbitmq.no_consumers"} <= set(rules(await through_curl.check_health()))
    assert (await through_curl.snapshot_config())["user/kubestack"] == "administrator"
    bad = RabbitMQPlugin.create(config.model_copy(update={"password": None}), LocalRunner())
    with pytest.raises(TargetAuthError):
        await bad.collect()
    closed = RabbitMQPlugin.create(RabbitMQConfig(port=free_port(), timeout_s=2), LocalRunner())
    with pytest.raises(TargetUnreachableError):
        await closed.collect()


# --- live: each health rule fired by a real condition -----------------------------------------------


async def test_backlog_without_consumers_and_the_length_cap(rabbitmq_server: RabbitMQServer, queue: str) -> None:
    plugin = tuned(rabbitmq_server, backlog_max=200, idle_queue_min_messages=100)
    try:
        with rabbitmq_server.amqp("orders-api") as conn:
            conn.queue_declare(queue)
            with rabbitmq_server.api() as api:  # the queue's own policy: the cap must keep its TTL
                api.put(path("policies", "/", f"ttl-{queue}"),
                        json={"pattern": f"^{queue}$", "apply-to": "queues", "definition": {"message-ttl": 3600000}})
            conn.publish(queue, b"o" * 32, count=300)
            queue_shows(rabbitmq_server, queue, messages=300)
        found = rules(await plugin.check_health())
        backlog, idle = found["rabbitmq.queue_backlog"], found["rabbitmq.no_consumers"]
        assert (backlog.evidence["queue"], backlog.evidence["messages"], backlog.evidence["consumers"]) == \
            (queue, 300, 0)
        assert idle.evidence["queue"] == queue
        [params] = offers("rabbitmq.queue_backlog", backlog.evidence)["rabbitmq.set_queue_max_length"]
        assert params == {"vhost": "/", "queue": queue, "max_length": 300, "overflow": "reject-publish"}

        with pytest.raises(PreconditionFailedError, match="drop-head would drop 200"):
            await plugin.execute("rabbitmq.set_queue_max_length", params | {"max_length": 100,
                                                                             "overflow": "drop-head"})
        dry = await plugin.execute("rabbitmq.set_queue_max_length", params, dry_run=True)
        assert dry.dry_run and "capped at 300" in dry.output and f"ttl-{queue}" in dry.output
        with rabbitmq_server.api() as api:
            assert api.get(path("policies", "/", f"kubestack-max-length-{queue}")).status_code == 404

        done = await plugin.execute("rabbitmq.set_queue_max_length", params)
        assert done.undo == ("rabbitmq.clear_queue_max_length", {"vhost": "/", "queue": queue})
        assert done.before["policy"] == f"ttl-{queue}"
        rabbitmq_server.wait_for("the cap applied", lambda api: api.get(path("queues", "/", queue)).json()
                                 .get("effective_policy_definition", {}).get("max-length") == 300)
        definition = rabbitmq_server.wait_for("the policy", lambda api: api.get(path("queues", "/", queue)).json()
                                              .get("effective_policy_definition"))
        assert definition == {"max-length": 300, "overflow": "reject-publish", "message-ttl": 3600000}
        with rabbitmq_server.amqp() as conn:  # over the cap: refused, nothing held is dropped
            conn.publish(queue, b"late", count=50)
            conn.queue_declare(queue)  # a round trip: the publishes above were handled
        queue_shows(rabbitmq_server, queue, messages=300)

        undone = await plugin.execute(*done.undo)
        assert undone.undo is not None and undone.undo[1]["max_length"] == 300
        rabbitmq_server.wait_for("the cap gone", lambda api: api.get(path("queues", "/", queue)).json()
                                 .get("policy") == f"ttl-{queue}")
        with pytest.raises(PreconditionFailedError, match="no policy"):
            await plugin.execute(*done.undo)
        with pytest.raises(PreconditionFailedError, match="no queue"):
            await plugin.execute("rabbitmq.set_queue_max_length", params | {"queue": "no-such-queue"})
    finally:
        await plugin.close()


async def test_unacked_deliveries_and_closing_the_stuck_consumer(rabbitmq_server: RabbitMQServer, queue: str,
                                                                request: pytest.FixtureRequest) -> None:
    plugin = tuned(rabbitmq_server, unacked_max=40)
    try:
        with rabbitmq_server.amqp("producer") as producer:
            producer.queue_declare(queue)
            producer.publish(queue, b"job", count=100)
        stuck = rabbitmq_server.amqp("stuck-worker")
        request.addfinalizer(stuck.sock.close)
        stuck.consume(queue, prefetch=50)
        stuck.deliveries(50)
        queue_shows(rabbitmq_server, queue, messages_unacknowledged=50)
        rabbitmq_server.wait_for("the channel's unacked", lambda api: any(
            c.get("messages_unacknowledged") == 50 for c in api.get("/channels").json()))
        finding = rules(await plugin.check_health())["rabbitmq.unacked_messages"]
        assert finding.evidence["queue"] == queue and finding.evidence["messages_unacknowledged"] == 50
        [params] = offers("rabbitmq.unacked_messages", finding.evidence)["rabbitmq.close_connection"]
        assert params["connection"] == finding.evidence["connection"]

        dry = await plugin.execute("rabbitmq.close_connection", params, dry_run=True)
        assert "50 unacknowledged deliveries to requeue" in dry.output and dry.before["client_name"] == "stuck-worker"
        done = await plugin.execute("rabbitmq.close_connection", params)
        assert done.undo is None and not done.dry_run
        with pytest.raises(Exception, match="closed the connection|Connection reset|Broken pipe"):
            stuck.deliveries(1)
        queue_shows(rabbitmq_server, queue, messages_unacknowledged=0, messages_ready=100)
        rabbitmq_server.wait_for("the connection gone", lambda api: api.get(path("connections", params["connection"]))
                                 .status_code == 404)
        with pytest.raises(PreconditionFailedError, match="no open connection"):
            await plugin.execute("rabbitmq.close_connection", params)
    finally:
        await plugin.close()


async def test_resource_alarms_block_a_real_publisher(rabbitmq_server: RabbitMQServer, queue: str) -> None:
    """The watermark lowered near what the node uses (near, and a config risk), then under it (the memory alarm,
    which blocks a publisher), and disk_free_limit raised above the free disk (the disk alarm)."""
    plugin = tuned(rabbitmq_server, memory_high_ratio=0.5)
    publisher = rabbitmq_server.amqp("checkout")
    try:
        publisher.queue_declare(queue)
        publisher.publish(queue, b"m", count=10)
        with rabbitmq_server.api() as api:
            used = api.get("/nodes").json()[0]["mem_used"]
        before = await plugin.snapshot_config()
        rabbitmq_server.eval(f"vm_memory_monitor:set_vm_memory_high_watermark({{absolute, {int(used * 1.6)}}}).")
        rabbitmq_server.wait_for("the lower watermark", lambda api: api.get("/nodes").json()[0]["mem_limit"]
                                 == int(used * 1.6))
        near = rules(await plugin.check_health())["rabbitmq.memory_near_watermark"]
        assert 0.5 <= near.evidence["memory_used_ratio"] < 1
        changes = diff(before, await plugin.snapshot_config())
        assert [c.key for c in changes] == ["mem_limit"]
        [risk] = config_risks(ConfigChange(source=SOURCE, resource=MQ, previous_digest="a" * 64, digest="b" * 64,
                                           changes=changes, observed={"rabbitmq_mem_used_bytes": float(used)}))
        assert risk.rule_id == "rabbitmq.memory_watermark_lowered" and risk.severity == "warning"

        rabbitmq_server.eval("vm_memory_monitor:set_vm_memory_high_watermark({absolute, 10000000}), "
                             "rabbit_disk_monitor:set_disk_free_limit(100000000000000).")
        rabbitmq_server.wait_for("both alarms", lambda api: all(
            api.get("/nodes").json()[0][alarm] for alarm in ("mem_alarm", "disk_free_alarm")))
        publisher.publish(queue, b"m", count=1)
        rabbitmq_server.wait_for("a blocked publisher", lambda api: any(
            c["state"] == "blocked" for c in api.get("/connections").json()))
        found = rules(await plugin.check_health())
        alarm, disk, blocked = (found[f"rabbitmq.{r}"] for r in ("memory_alarm", "disk_alarm", "blocked_publishers"))
        assert alarm.severity == "critical" and alarm.evidence["mem_limit"] == 10000000
        assert alarm.evidence["queue"] == queue  # the fullest queue, which the cap would answer
        assert disk.severity == "critical" and disk.evidence["disk_free_limit"] == 100000 * 10**9
        assert blocked.evidence["connections"][0]["client_name"] == "checkout"
        assert "memory on" in blocked.message and "disk on" in blocked.message
        assert offers("rabbitmq.memory_alarm", alarm.evidence)["rabbitmq.set_queue_max_length"][0]["queue"] == queue
        samples = {s.name: s.value for s in await plugin.collect()}
        assert samples["rabbitmq_mem_alarm"] == samples["rabbitmq_disk_free_alarm"] == 1
        assert samples["rabbitmq_blocked_connections"] >= 1
    finally:
        rabbitmq_server.eval("vm_memory_monitor:set_vm_memory_high_watermark(0.4), "
                             "rabbit_disk_monitor:set_disk_free_limit(50000000).")
        publisher.sock.close()
        await plugin.close()
    rabbitmq_server.wait_for("the alarms cleared", lambda api: not any(
        api.get("/nodes").json()[0][alarm] for alarm in ("mem_alarm", "disk_free_alarm")))


async def test_connection_churn(rabbitmq_server: RabbitMQServer) -> None:
    plugin = tuned(rabbitmq_server, churn_max_per_s=3)
    try:
        with rabbitmq_server.api() as api:
            opened = api.get("/overview").json()["churn_rates"]["connection_created"]
        assert "rabbitmq.connection_churn" not in rules(await plugin.check_health())  # the baseline
        started = time.monotonic()
        for _ in range(40):
            rabbitmq_server.amqp("flaky-client").close()
        rabbitmq_server.wait_for("the opened connections counted", lambda api: api.get("/overview").json()
                                 ["churn_rates"]["connection_created"] >= opened + 40)
        churn = rules(await plugin.check_health())["rabbitmq.connection_churn"]
        assert churn.evidence["connections_opened_per_s"] >= 40 / (time.monotonic() - started + 1) * 0.5
        assert churn.evidence["window_s"] > 0
    finally:
        await plugin.close()


# --- actions: refusals ------------------------------------------------------------------------------


async def test_actions_refuse_bad_params_unknown_ids_and_the_forbidden_purge(plugin: RabbitMQPlugin) -> None:
    with pytest.raises(ActionError, match="forbidden"):
        await plugin.execute("rabbitmq.purge_queue", {"queue": "q"})
    with pytest.raises(UnknownActionError):
        await plugin.execute("rabbitmq.delete_everything", {})
    with pytest.raises(ActionError, match="'max_length'"):
        await plugin.execute("rabbitmq.set_queue_max_length", {"queue": "q", "max_length": 0})
    with pytest.raises(ActionError, match="'overflow'"):
        await plugin.execute("rabbitmq.set_queue_max_length", {"queue": "q", "max_length": 5, "overflow": "x"})
    with pytest.raises(ActionError, match="'queue' is missing"):
        await plugin.execute("rabbitmq.clear_queue_max_length", {})
