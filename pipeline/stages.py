"""Faust agents: thin glue between topics and the pure functions of the stages.

Each agent decodes at the edge, dead-letters what it cannot process (with the reason) and goes on.
"""

from __future__ import annotations

import logging

import faust

from kubestack.contract.topics import DEAD_LETTER, METRICS
from kubestack.errors import EventDecodeError
from kubestack.pipeline.app import contract_topic
from kubestack.pipeline.edge import dead_letter
from kubestack.pipeline.inventory import ResourceSeen, observe
from kubestack.settings import Settings

log = logging.getLogger(__name__)


def register(app: faust.App, settings: Settings) -> None:
    """Every stage that exists so far."""
    register_intake(app, settings)


def register_intake(app: faust.App, settings: Settings) -> faust.types.AgentT:
    prefix = settings.kafka.topic_prefix
    metrics = contract_topic(app, METRICS, prefix)
    dead_letters = contract_topic(app, DEAD_LETTER, prefix)
    inventory = app.Table("resource-inventory", partitions=METRICS.partitions,
                          schema=faust.Schema(key_serializer="json", value_serializer="json"))

    async def reject(event: faust.types.EventT, error: Exception) -> None:
        message = event.message
        letter = dead_letter(topic=message.topic, raw=event.value, key=event.key, partition=message.partition,
                             offset=message.offset, error=error, stage="intake", tenant=settings.tenant)
        key, value = DEAD_LETTER.encode(letter)
        await dead_letters.send(key=key, value=value)
        log.warning("dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset, letter.reason)

    @app.agent(metrics, name="intake")
    async def intake(stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                batch = METRICS.decode(event.value)
                key = batch.resource.key
                stored = inventory.get(key)
                previous = ResourceSeen.model_validate(stored) if stored is not None else None
                inventory[key] = observe(previous, batch).model_dump(mode="json")
            except EventDecodeError as exc:
                await reject(event, exc)
            except Exception as exc:  # one per long-running loop: keep the stream alive, keep the message
                log.exception("intake failed on %s@%d", event.message.topic, event.message.offset)
                await reject(event, exc)

    return intake
