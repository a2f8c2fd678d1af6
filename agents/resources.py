"""Publishing for a plugin that watches many resources (``ResourceWatcher``): each resource's metrics, health
state and configuration go to the same topics as a target's own, under the target's source and tenant; a
configuration is diffed against what was last seen of that resource (kept in the agent's state across restarts),
so only changes are sent."""

from __future__ import annotations

import logging

from kubestack.agents.configdiff import diff, digest
from kubestack.agents.metrics import AgentMetrics
from kubestack.agents.publisher import Publisher
from kubestack.agents.state import StateStore
from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import (
    ConfigChange,
    ConfigSnapshot,
    Finding,
    HealthReport,
    MetricBatch,
    Peer,
    Sample,
)
from kubestack.contract.topics import CONFIG_CHANGES, CONFIG_SNAPSHOTS, HEALTH, METRICS

log = logging.getLogger(__name__)

MAX_SAMPLES_PER_BATCH = 2000


class ResourcePublisher:
    """The ``ResourceSink`` of one target's watcher."""

    def __init__(self, *, target: str, source: Source, tenant: str, publisher: Publisher, state: StateStore,
                 metrics: AgentMetrics) -> None:
        self.target = target
        self.source = source
        self.tenant = tenant
        self.publisher = publisher
        self.state = state
        self.agent_metrics = metrics

    def _common(self, resource: ResourceRef) -> dict:
        return {"source": self.source, "resource": resource, "tenant": self.tenant}

    async def metrics(self, resource: ResourceRef, samples: list[Sample]) -> None:
        if not samples:
            return
        self.agent_metrics.samples.labels(self.target).inc(len(samples))
        await self.publisher.publish_many([
            (METRICS, MetricBatch.of_samples(samples[i:i + MAX_SAMPLES_PER_BATCH], **self._common(resource)))
            for i in range(0, len(samples), MAX_SAMPLES_PER_BATCH)])

    async def health(self, resource: ResourceRef, findings: list[Finding], peers: list[Peer] = ()) -> None:
        await self.publisher.publish(HEALTH, HealthReport(**self._common(resource), findings=findings,
                                                          peers=list(peers)))

    async def config(self, resource: ResourceRef, config: dict[str, str]) -> None:
        key = f"config-{self.target}-{resource.key}"
        previous = self.state.load(key)
        current = digest(config)
        if previous is not None and previous["digest"] == current:
            return
        events = [(CONFIG_SNAPSHOTS, ConfigSnapshot(**self._common(resource), config=config, digest=current))]
        if previous is not None:
            changes = diff(previous["config"], config)
            events.append((CONFIG_CHANGES, ConfigChange(**self._common(resource), previous_digest=previous["digest"],
                                                        digest=current, changes=changes)))
            log.info("%s: configuration of %s changed: %s", self.target, resource.key,
                     ", ".join(c.key for c in changes))
        await self.publisher.publish_many(events)
        self.state.save(key, {"digest": current, "config": config})
