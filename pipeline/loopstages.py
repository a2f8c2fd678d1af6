"""The stages that close the loop, thin like the others (``stages.py``):

    remediation-proposals, remediation-decisions ─► remediate ─► remediation-results, audit-entries
    audit-entries (one partition) ─► chain ─► audit, local store
    audit (one partition) ─► earn ─► the earned-autonomy table (``earned.py``), read by remediate; audit-entries;
                                     operators' verdicts on causes (``feedback.py``), read by the RCA stage
    incidents, rca-reports, proposals, results, predictions ─► notify ─► Slack, PagerDuty, webhooks; notifications

The remediation state of each proposal lives in a changelog-backed table, so a replayed proposal or decision
never acts twice. Acting (and watching the result) happens inside the stream: the proposals of one partition
wait for each other, which keeps one target from being changed by two actions at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import faust
from faust.types import EventT

from kubestack.agents.targets import TargetSet
from kubestack.approval import DecisionKeys
from kubestack.approval import default_path as decision_keys_path
from kubestack.contract.events import AuditEntry, Notification, ResultStatus
from kubestack.errors import ConfigError
from kubestack.contract.topics import (
    AUDIT,
    AUDIT_ENTRIES,
    INCIDENTS,
    NOTIFICATIONS,
    PREDICTIONS,
    RCA_REPORTS,
    REMEDIATION_DECISIONS,
    REMEDIATION_PROPOSALS,
    REMEDIATION_RESULTS,
)
from kubestack.pipeline.app import contract_topic
from kubestack.pipeline.audit import AuditChain
from kubestack.pipeline.auditstore import AuditStore, default_path
from kubestack.pipeline import earned, recall
from kubestack.pipeline.feedback import AUDIT_ACTION as FEEDBACK_ACTION
from kubestack.pipeline.feedback import CauseVerdict
from kubestack.pipeline.executor import carry_out
from kubestack.pipeline.notify.notifier import Notifier
from kubestack.pipeline.remediation import Transition, admit, audit_result, decide, finished, result

log = logging.getLogger(__name__)


def register(stages) -> None:
    """``stages``: the ``Stages`` of ``stages.py`` (its app, settings, topics, ``guarded`` agents, ``emit``)."""
    records = _earn(stages)
    _remediate(stages, records)
    _chain_audit(stages)
    _notify(stages)


def _earn(stages) -> faust.Table:
    """The earned-autonomy records, folded from the audit topic into a changelog-backed table of one partition
    (the audit topic's), so they survive a restart. The worker that holds the audit partition holds the records;
    on another worker the table is empty there and every proposal waits for a person, as without the policy."""
    app, needed = stages.app, stages.settings.remediation.auto_approve_earned
    entries = contract_topic(app, AUDIT_ENTRIES, stages.kafka)
    table = app.Table("remediation-earned", partitions=stages.kafka.partitions_of(AUDIT),
                      schema=faust.Schema(key_serializer="json", value_serializer="json"))
    stages.verdict_table = app.Table("rca-verdicts", partitions=stages.kafka.partitions_of(AUDIT),
                                     schema=faust.Schema(key_serializer="json", value_serializer="json"))

    async def on_record(event: EventT) -> None:
        record = AUDIT.decode(event.value)
        recall.on_audit(stages.memory_actions, record)  # what was done about an incident, for the memory
        if record.action == FEEDBACK_ACTION:  # an operator's verdict on a ranked cause: the latest per operator
            made = CauseVerdict.model_validate(record.details)
            stages.verdict_table[f"{record.tenant}|{made.incident_id}|{made.component}|{made.actor}"] = \
                made.model_dump(mode="json")
            return
        action = record.details.get("action")
        if not isinstance(action, str):
            return
        key = earned.record_key(record.tenant, action, record.resource)
        step = earned.fold(table.get(key), record, needed, datetime.now(timezone.utc))
        if step is None:
            return
        table[key] = step[0].model_dump(mode="json")
        for entry in step[1]:
            log.info("%s: %s (%s)", entry.action, entry.details["record"], entry.subject_id)
        await stages.emit(entries, AUDIT_ENTRIES, step[1])

    stages._agent(contract_topic(app, AUDIT, stages.kafka), "earn", on_record)
    return table


def verdicts(stages, tenant: str) -> list[CauseVerdict]:
    """The operators' verdicts on ranked causes of ``tenant``'s incidents (``feedback.py``), for the RCA stage."""
    table = getattr(stages, "verdict_table", None)
    if table is None:
        return []
    return [CauseVerdict.model_validate(value) for key, value in table.items() if key.startswith(f"{tenant}|")]


def _remediate(stages, records: faust.Table) -> None:
    app, settings = stages.app, stages.settings.remediation
    prefix = stages.prefix
    results = contract_topic(app, REMEDIATION_RESULTS, stages.kafka)
    entries = contract_topic(app, AUDIT_ENTRIES, stages.kafka)
    table = app.Table("remediation", partitions=stages.kafka.partitions_of(REMEDIATION_PROPOSALS),
                      schema=faust.Schema(key_serializer="json", value_serializer="json"))
    targets = TargetSet.load(settings.targets)
    keys_path = settings.decision_keys or decision_keys_path(stages.settings.home)
    proposals_topic = REMEDIATION_PROPOSALS.qualified(prefix)
    resets: dict[str, dict] = {}  # the last reset this stage produced per earned record (earned.as_of)

    async def apply(transition: Transition, key: str) -> None:
        if transition.state is not None:
            table[key] = transition.state
        await stages.emit(results, REMEDIATION_RESULTS, transition.results)
        await stages.emit(entries, AUDIT_ENTRIES, transition.entries)
        if transition.execute:
            await act(key, transition)

    async def act(key: str, transition: Transition) -> None:
        proposal = REMEDIATION_PROPOSALS.model.model_validate(transition.state["proposal"])
        ran = False
        async for step in carry_out(proposal, targets, settings):
            ran = ran or step.status == ResultStatus.EXECUTED
            if earned.resets(step.status.value, ran):
                resets[earned.record_key(proposal.tenant, proposal.action, proposal.resource)] = {
                    "proposal_id": proposal.proposal_id, "outcome": step.status.value}
            outcome = result(proposal, step.status, step.output, stages.source, datetime.now(timezone.utc))
            table[key] = finished(table[key], step.status)
            await stages.emit(results, REMEDIATION_RESULTS, [outcome])
            await stages.emit(entries, AUDIT_ENTRIES, [audit_result(proposal, outcome)])
            log.info("proposal %s (%s on %s): %s", proposal.proposal_id, proposal.action, proposal.resource.key,
                     step.status.value)
            if step.status == ResultStatus.FAILED:
                log.warning("proposal %s failed: %s", proposal.proposal_id, step.output)

    async def on_event(event: EventT) -> None:
        now = datetime.now(timezone.utc)
        if event.message.topic == proposals_topic:
            proposal = REMEDIATION_PROPOSALS.decode(event.value)
            record_key = earned.record_key(proposal.tenant, proposal.action, proposal.resource)
            transition = admit(table.get(proposal.proposal_id), proposal, settings, stages.source, now,
                               earned.as_of(records.get(record_key), resets.get(record_key)),
                               stages.silences.for_resource(proposal.resource, proposal.tenant, now))
            key = proposal.proposal_id
        else:
            decision = REMEDIATION_DECISIONS.decode(event.value)
            transition = decide(table.get(decision.proposal_id), decision, settings, stages.source, now,
                                _decision_keys(keys_path))
            key = decision.proposal_id
            if transition is not None and transition.state is None:
                log.warning("decision on %s claiming to be by %s refused: %s", key, decision.actor,
                            transition.entries[0].details["reason"])
            if transition is None:
                log.info("decision on %s by %s ignored: the proposal is no longer pending", key, decision.actor)
        if transition is not None:
            await apply(transition, key)

    channel = app.topic(proposals_topic, REMEDIATION_DECISIONS.qualified(prefix), key_serializer="raw",
                        value_serializer="raw")
    stages._agent(channel, "remediate", on_event)


def _decision_keys(path) -> DecisionKeys | None:
    """The ring the API signs decisions with, read for every decision (people decide seldom; a rotated key is
    known at once); without one every decision is refused (and the reason logged)."""
    if not path.exists():
        log.error("no decision key ring at %s: every decision is refused until the API makes it "
                  "(remediation.decision_keys)", path)
        return None
    try:
        return DecisionKeys.load(path)
    except ConfigError as exc:
        log.error("%s: every decision will be refused", exc)
        return None


def _chain_audit(stages) -> None:
    app, settings = stages.app, stages.settings
    records = contract_topic(app, AUDIT, stages.kafka)
    store = AuditStore(settings.audit.store or default_path(settings.home))
    chain: list[AuditChain] = []

    async def on_entry(event: EventT) -> None:
        if not chain:  # the store is opened (and locked) by the worker that owns the partition
            store.open()
            chain.append(AuditChain.resume(store.last(), recent=store.tail(10_000)))
        record = chain[0].link(AUDIT_ENTRIES.decode(event.value))
        if record is None:
            return  # an entry replayed after a restart: chained already
        store.append(record)
        await stages.emit(records, AUDIT, [record])

    stages._agent(contract_topic(app, AUDIT_ENTRIES, stages.kafka), "audit", on_entry)


def _notify(stages) -> None:
    """One notifier per worker: it remembers the incidents, reports and proposals it saw to word the notices, so
    with several workers a notice may lack the report another worker saw (it is still sent)."""
    app = stages.app
    specs = {spec.qualified(stages.prefix): spec
             for spec in (INCIDENTS, RCA_REPORTS, REMEDIATION_PROPOSALS, REMEDIATION_RESULTS, PREDICTIONS)}
    notices = contract_topic(app, NOTIFICATIONS, stages.kafka)
    entries = contract_topic(app, AUDIT_ENTRIES, stages.kafka)
    notifier = Notifier(stages.settings.notify, source=stages.source, silences=stages.silences)

    async def publish(events: list) -> None:
        await stages.emit(notices, NOTIFICATIONS, [e for e in events if isinstance(e, Notification)])
        await stages.emit(entries, AUDIT_ENTRIES, [e for e in events if isinstance(e, AuditEntry)])

    async def on_event(event: EventT) -> None:
        await publish(await notifier.handle(specs[event.message.topic].decode(event.value)))

    stages._agent(app.topic(*specs, key_serializer="raw", value_serializer="raw"), "notify", on_event)

    @app.timer(interval=1.0)
    async def send_deferred() -> None:  # notices a rate limit held back, once their channel has a token again
        await publish(await notifier.flush())

