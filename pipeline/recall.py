"""The incident memory's Faust glue (the logic is ``memory.py``): two changelog-backed tables on the worker, bounded
per tenant, and the call the root-cause stage makes for each revision it reports.

- ``incident-memory`` (the incidents topic's partitions, written by the root-cause stage): a ``PastIncident`` per
  incident, ``<tenant>|<incident id>``;
- ``incident-actions`` (the audit topic's one partition, folded by the ``earn`` agent of ``loopstages``): a
  ``KeptAction`` per proposal, ``<tenant>|<proposal id>``.

Like the operators' verdicts, a worker sees the incidents of the partitions it holds: with several workers, an
incident finds the similar ones that went through the same worker (all of them with one).
"""

from __future__ import annotations

import logging

import faust

from kubestack.contract.events import AuditRecord, Incident, RcaReport
from kubestack.contract.topics import AUDIT, INCIDENTS
from kubestack.pipeline import memory
from kubestack.settings import KafkaSettings

log = logging.getLogger(__name__)


def tables(app: faust.App, kafka: KafkaSettings) -> tuple[faust.Table, faust.Table]:
    """(incidents, actions) tables of the memory, partitioned as the incidents and audit topics."""
    schema = faust.Schema(key_serializer="json", value_serializer="json")
    return (app.Table("incident-memory", partitions=kafka.partitions_of(INCIDENTS), schema=schema),
            app.Table("incident-actions", partitions=kafka.partitions_of(AUDIT), schema=schema))


def _of(table: faust.Table, tenant: str) -> dict[str, dict]:
    return {key: value for key, value in list(table.items()) if key.startswith(f"{tenant}|")}


def on_audit(actions: faust.Table, record: AuditRecord) -> None:
    """Keep what a remediation result in the audit says about its proposal."""
    key = f"{record.tenant}|{record.subject_id}"
    kept = actions.get(key)
    step = memory.fold_action(memory.KeptAction.model_validate(kept) if kept else None, record)
    if step is None:
        return
    actions[key] = step.model_dump(mode="json")
    mine = _of(actions, record.tenant)
    for gone in memory.evictions({k: memory.KeptAction.model_validate(v).ts for k, v in mine.items()},
                                 memory.MAX_ACTIONS_PER_TENANT):
        actions.pop(gone, None)


def recall(incidents: faust.Table, actions: faust.Table, incident: Incident, report: RcaReport) -> RcaReport:
    """``report`` with the similar past incidents of its tenant; ``incident`` is remembered (this revision)."""
    mine = memory.remember(incident, report)
    past = [memory.PastIncident.model_validate(v) for v in _of(incidents, incident.tenant).values()]
    done = [memory.KeptAction.model_validate(v) for v in _of(actions, incident.tenant).values()]
    found = memory.similar(mine, past, done)
    incidents[f"{incident.tenant}|{incident.incident_id}"] = mine.model_dump(mode="json")
    opened = {f"{p.tenant}|{p.incident_id}": p.opened_at for p in past} | {
        f"{mine.tenant}|{mine.incident_id}": mine.opened_at}
    for gone in memory.evictions(opened, memory.MAX_INCIDENTS_PER_TENANT):
        incidents.pop(gone, None)
    if found:
        log.info("incident %s: %d similar past incident(s), the closest %s (%.2f)", incident.incident_id,
                 len(found), found[0].incident_id, found[0].similarity)
    return report.model_copy(update={"similar": found})
