"""What the API puts on the bus: people's decisions, audit entries of everything it does, dead letters."""

from __future__ import annotations

import logging
import socket
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError as AIOKafkaError

from kubestack.bus import producer_options
from kubestack.contract.base import Event, ResourceRef, Source
from kubestack.contract.events import AuditEntry
from kubestack.contract.topics import AUDIT_ENTRIES, TopicSpec
from kubestack.errors import KafkaUnavailableError
from kubestack.settings import KafkaSettings

log = logging.getLogger(__name__)

API_AGENT = "api"


def api_source() -> Source:
    return Source(agent=API_AGENT, host=socket.gethostname())


def api_resource() -> ResourceRef:
    """What an audit entry about the API itself (a refusal) is about."""
    return ResourceRef(kind="api", name="kubestack-api", host=socket.gethostname())


class Publisher:
    """One idempotent producer for the API process; ``send`` waits until the broker has the record."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka.for_component("api")
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(**producer_options(self.kafka))
        try:
            await producer.start()
        except (AIOKafkaError, OSError) as exc:
            await producer.stop()
            raise KafkaUnavailableError(f"Kafka at {self.kafka.bootstrap} does not answer: {exc}") from exc
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, spec: TopicSpec, event: Event) -> None:
        if self._producer is None:  # Kafka was away at start-up: try again now
            await self.start()
        key, value = spec.encode(event)
        try:
            await self._producer.send_and_wait(spec.qualified(self.kafka.topic_prefix), value=value, key=key)
        except (AIOKafkaError, OSError) as exc:
            raise KafkaUnavailableError(f"cannot publish to {spec.name}: {exc}") from exc

    async def audit(self, *, actor: str, action: str, subject_id: str, details: dict[str, Any], tenant: str,
                    resource: ResourceRef | None = None) -> AuditEntry:
        entry = AuditEntry(source=api_source(), resource=resource or api_resource(), tenant=tenant, actor=actor,
                           action=action, subject_id=subject_id, details=details)
        await self.send(AUDIT_ENTRIES, entry)
        log.info("audit %s by %s on %s", action, actor, subject_id)
        return entry
