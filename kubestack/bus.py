"""Talking to Kafka: client options from settings, readiness, and creating the registry's topics."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError as AIOKafkaError
from aiokafka.helpers import create_ssl_context

from kubestack.contract.topics import TOPICS, TopicSpec
from kubestack.errors import KafkaError, KafkaUnavailableError
from kubestack.commonsettings import KafkaSettings

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments shared by aiokafka producers, consumers and admin clients."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": kafka.effective_client_id,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": int(kafka.request_timeout_s * 1000),
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context = create_ssl_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None,
            certfile=str(kafka.ssl_certfile) if kafka.ssl_certfile else None,
            keyfile=str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None,
        )
        context.check_hostname = kafka.ssl_check_hostname
        options["ssl_context"] = context
    credentials = kafka.credentials
    if credentials is not None:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = credentials.username
        options["sasl_plain_password"] = credentials.password.get_secret_value()
    return options


def producer_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments of every product producer: a write counts once every in-sync replica has it
    (``acks=all``; with ``min.insync.replicas`` 2 of 3 it survives a broker lost), and a retry never duplicates."""
    return {**client_options(kafka), "acks": "all", "enable_idempotence": True}


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str | None
    controller_id: int | None
    brokers: list[str]
    topics: list[str]


async def describe_cluster(kafka: KafkaSettings) -> ClusterInfo:
    """One real metadata round-trip; ``KafkaUnavailableError`` if nothing answers."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    try:
        await admin.start()
        meta = await admin.describe_cluster()
        topics = await admin.list_topics()
    except (KafkaConnectionError, AIOKafkaError, OSError) as exc:
        raise KafkaUnavailableError(f"Kafka at {kafka.bootstrap} does not answer: {exc}") from exc
    finally:
        await admin.close()
    brokers = [f"{b['host']}:{b['port']}" for b in meta.get("brokers", [])]
    return ClusterInfo(meta.get("cluster_id"), meta.get("controller_id"), brokers, sorted(topics))


async def wait_for_cluster(kafka: KafkaSettings, timeout_s: float, interval_s: float = 0.5) -> ClusterInfo:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await describe_cluster(kafka)
        except KafkaUnavailableError:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(interval_s)


async def ensure_topics(kafka: KafkaSettings, specs: tuple[TopicSpec, ...] = TOPICS) -> dict[str, str]:
    """Create the registry's topics with the partitions the settings give them and the registry's retention;
    name → 'created' or 'exists'."""
    return await create_topics(kafka, [
        NewTopic(spec.qualified(kafka.topic_prefix), kafka.partitions_of(spec), kafka.replication_factor,
                 topic_configs=spec.topic_configs)
        for spec in specs
    ])


def replicated(kafka: KafkaSettings, topic: NewTopic) -> NewTopic:
    """``topic`` with the replication ``kafka`` asks of every topic the product creates: its replication factor and
    min.insync.replicas are the cluster's, whatever the caller built the topic with."""
    configs = dict(topic.topic_configs)
    if kafka.min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(kafka.min_insync_replicas)
    return NewTopic(topic.name, topic.num_partitions, kafka.replication_factor, topic_configs=configs)


async def create_topics(kafka: KafkaSettings, new: list[NewTopic]) -> dict[str, str]:
    """Create topics that do not exist yet, replicated as ``kafka`` says; name → 'created' or 'exists'."""
    new = [replicated(kafka, topic) for topic in new]
    admin = AIOKafkaAdminClient(**client_options(kafka))
    try:
        await admin.start()
        response = await admin.create_topics(new)
        outcome = _created(response.topic_errors)
        await _until_led(admin, [name for name, state in outcome.items() if state == "created"])
    except (KafkaConnectionError, AIOKafkaError, OSError) as exc:
        raise KafkaUnavailableError(f"cannot create topics on {kafka.bootstrap}: {exc}") from exc
    finally:
        await admin.close()
    log.info("topics: %s", ", ".join(f"{n} {s}" for n, s in sorted(outcome.items())))
    return outcome


async def partition_counts(kafka: KafkaSettings, names: list[str]) -> dict[str, int]:
    """Partitions of each of ``names`` that exists on the cluster (a topic that does not is left out)."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    try:
        await admin.start()
        described = await admin.describe_topics(sorted(set(names)))
    except (KafkaConnectionError, AIOKafkaError, OSError) as exc:
        raise KafkaUnavailableError(f"cannot describe topics on {kafka.bootstrap}: {exc}") from exc
    finally:
        await admin.close()
    return {topic.get("topic", topic.get("name")): len(topic.get("partitions") or [])
            for topic in described if topic.get("error_code", 0) == 0 and topic.get("partitions")}


def _created(topic_errors) -> dict[str, str]:
    outcome = {}
    for name, code, *rest in topic_errors:
        if code == 0:
            outcome[name] = "created"
        elif code == _TOPIC_ALREADY_EXISTS:
            outcome[name] = "exists"
        else:
            message = rest[0] if rest else ""
            raise KafkaError(f"creating topic {name} failed with Kafka error {code}: {message}")
    return outcome


async def _until_led(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 30.0) -> None:
    """Wait until every partition of the just created ``names`` has a leader in the metadata the broker serves.
    CreateTopics answers once the controller has the topics; a producer asking a broker that has not caught up yet
    gets UnknownTopicOrPartition (seen on a loaded machine). After ``timeout_s`` the caller goes on and the clients'
    own retries take over; the wait is logged."""
    deadline = time.monotonic() + timeout_s
    waiting = set(names)
    while waiting:
        for topic in await admin.describe_topics(sorted(waiting)):
            partitions = topic.get("partitions") or []
            led = partitions and all(p.get("leader", p.get("leader_id", -1)) >= 0 for p in partitions)
            if topic.get("error_code", 0) == 0 and led:
                waiting.discard(topic.get("topic", topic.get("name")))
        if not waiting:
            return
        if time.monotonic() > deadline:
            log.warning("topics created but without a leader after %.0fs: %s", timeout_s, ", ".join(sorted(waiting)))
            return
        await asyncio.sleep(0.2)
