"""Following the worker's output while faults come and go: a consumer reads the incidents, anomalies, health,
root-cause and remediation topics (and the log lines the agent ships) from the beginning as they grow, decoded
through the contract, and tests wait on them with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from kubestack.bus import client_options
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import (
    Anomaly,
    AuditRecord,
    HealthReport,
    Incident,
    IncidentStatus,
    LogBatch,
    Notification,
    RcaReport,
    RemediationProposal,
    RemediationResult,
    Severity,
)
from kubestack.contract.topics import (
    ANOMALIES,
    AUDIT,
    HEALTH,
    INCIDENTS,
    LOGS,
    NOTIFICATIONS,
    RCA_REPORTS,
    REMEDIATION_PROPOSALS,
    REMEDIATION_RESULTS,
)
from kubestack.settings import KafkaSettings


@dataclass
class Seen:
    incidents: list[Incident]
    anomalies: list[Anomaly]
    health: list[HealthReport]
    logs: list[LogBatch] = field(default_factory=list)
    reports: list[RcaReport] = field(default_factory=list)
    proposals: list[RemediationProposal] = field(default_factory=list)
    results: list[RemediationResult] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)

    def open_incidents(self) -> dict[str, Incident]:
        """The latest event of every incident not resolved yet."""
        latest: dict[str, Incident] = {}
        for incident in self.incidents:
            latest[incident.incident_id] = incident
        return {k: v for k, v in latest.items() if v.status != IncidentStatus.RESOLVED}

    def unhealthy(self, resources: Iterable[ResourceRef]) -> dict[str, list[str]]:
        """Resources whose latest health report has warnings or worse (or that never reported): their rules."""
        latest: dict[str, HealthReport] = {}
        for report in self.health:
            latest[report.resource.key] = report
        out = {}
        for resource in resources:
            report = latest.get(resource.key)
            rules = [f.rule_id for f in report.findings if f.severity != Severity.INFO] if report else ["no report"]
            if rules:
                out[resource.key] = rules
        return out

    def last_signal_age(self) -> float:
        """Seconds since the last signal the worker could correlate: an anomaly or a health report with findings."""
        stamps = [a.ts for a in self.anomalies[-50:]]
        stamps += [h.ts for h in self.health[-200:] if any(f.severity != Severity.INFO for f in h.findings)]
        if not stamps:
            return float("inf")
        return (datetime.now(timezone.utc) - max(stamps)).total_seconds()

    def incidents_since(self, since: datetime) -> list[Incident]:
        return [i for i in self.incidents if i.ts >= since]

    def log_lines(self, key: str, since: datetime) -> list[str]:
        """The log lines of resource ``key`` the agent shipped since ``since``."""
        return [line.line for batch in self.logs if batch.resource.key == key for line in batch.lines
                if line.ts >= since]


class TopicWatch:
    """A background consumer of the topics above (assigned, no group), appending to ``seen``."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.seen = Seen([], [], [])
        self._specs = {spec.qualified(kafka.topic_prefix): spec
                       for spec in (INCIDENTS, ANOMALIES, HEALTH, LOGS, RCA_REPORTS, REMEDIATION_PROPOSALS,
                                    REMEDIATION_RESULTS, NOTIFICATIONS, AUDIT)}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(**client_options(self.kafka), enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        for _ in range(50):  # topics just created may take a moment to reach every broker's metadata
            await consumer._client.force_metadata_update()
            if all(consumer.partitions_for_topic(name) for name in self._specs):
                break
            await asyncio.sleep(0.2)
        partitions = [TopicPartition(name, p) for name in self._specs
                      for p in sorted(consumer.partitions_for_topic(name) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="fault-topic-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            try:
                await self._consumer.stop()
            except asyncio.CancelledError:
                # aiokafka's fetcher, closing, awaits the fetch task it has just cancelled: one caught in its retry
                # back-off after a timed-out fetch re-raises that cancellation here (seen at the end of a session)
                if asyncio.current_task().cancelling():
                    raise

    async def _run(self) -> None:
        lists = {INCIDENTS.name: self.seen.incidents, ANOMALIES.name: self.seen.anomalies,
                 HEALTH.name: self.seen.health, LOGS.name: self.seen.logs, RCA_REPORTS.name: self.seen.reports,
                 REMEDIATION_PROPOSALS.name: self.seen.proposals, REMEDIATION_RESULTS.name: self.seen.results,
                 NOTIFICATIONS.name: self.seen.notifications, AUDIT.name: self.seen.audit}
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            if not batches:
                continue
            for tp, records in batches.items():
                spec = self._specs[tp.topic]
                lists[spec.name].extend(spec.decode(r.value) for r in records)
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[Seen], object], timeout_s: float):
        """The first truthy ``predicate(seen)`` within ``timeout_s``, else None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            found = predicate(self.seen)
            if found:
                return found
            if self._task is not None and self._task.done():
                self._task.result()  # the consumer died: say why instead of timing out
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))
