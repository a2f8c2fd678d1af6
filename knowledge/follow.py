"""Incident memory as incidents resolve: follow the incidents and root-cause topics, and remember each resolved
incident with its last root-cause report in the knowledge base (``memory.remember``), so the next similar
incident finds what happened before. A separate consumer group: the worker never loads the index."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from kubestack.bus import client_options
from kubestack.contract.events import Incident, IncidentStatus, RcaReport, SignalKind
from kubestack.contract.topics import INCIDENTS, RCA_REPORTS
from kubestack.errors import EventDecodeError
from kubestack.knowledge.memory import remember
from kubestack.settings import KafkaSettings

log = logging.getLogger(__name__)

MAX_REPORTS = 2000
GROUP = "kubestack-knowledge"


class Memory:
    """The last report of each open incident, until it resolves. Pure."""

    def __init__(self) -> None:
        self.reports: OrderedDict[str, RcaReport] = OrderedDict()

    def on_report(self, report: RcaReport) -> None:
        self.reports[report.incident_id] = report
        self.reports.move_to_end(report.incident_id)
        while len(self.reports) > MAX_REPORTS:
            self.reports.popitem(last=False)

    def on_incident(self, incident: Incident) -> tuple[RcaReport | None, list[str]] | None:
        """For a resolved incident: its last report and the names of its signals; None otherwise."""
        if incident.status != IncidentStatus.RESOLVED:
            return None
        names = []
        for signal in incident.signals:
            if signal.kind == SignalKind.ANOMALY and signal.details.get("metric"):
                names.append(str(signal.details["metric"]))
            else:
                names.append(signal.name.split(":", 1)[1] if signal.name.startswith("config-risk:") else signal.name)
        return self.reports.pop(incident.incident_id, None), sorted(set(names))


async def follow(kafka: KafkaSettings, folder: Path, idle_exit_s: float | None = None) -> int:
    """Remember resolved incidents until cancelled (or ``idle_exit_s`` without a record); how many were."""
    specs = {spec.qualified(kafka.topic_prefix): spec for spec in (RCA_REPORTS, INCIDENTS)}
    consumer = AIOKafkaConsumer(*specs, **client_options(kafka), group_id=GROUP, auto_offset_reset="earliest",
                                enable_auto_commit=True)
    memory, remembered = Memory(), 0
    await consumer.start()
    try:
        idle_since = asyncio.get_running_loop().time()
        while idle_exit_s is None or asyncio.get_running_loop().time() - idle_since < idle_exit_s:
            batches = await consumer.getmany(timeout_ms=500)
            if batches:
                idle_since = asyncio.get_running_loop().time()
            for tp, records in batches.items():
                spec = specs[tp.topic]
                for record in records:
                    try:
                        event = spec.decode(record.value)
                    except EventDecodeError as exc:  # the worker dead-letters; here it is only skipped
                        log.warning("skipping %s[%d]@%d: %s", tp.topic, tp.partition, record.offset, exc)
                        continue
                    if isinstance(event, RcaReport):
                        memory.on_report(event)
                    elif (found := memory.on_incident(event)) is not None:
                        report, signals = found
                        await asyncio.to_thread(remember, folder, event, report, signals=signals)
                        remembered += 1
    finally:
        await consumer.stop()
    return remembered
