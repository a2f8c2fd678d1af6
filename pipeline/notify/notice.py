"""What a notice says, before any channel shapes it: one ``Notice`` per event worth telling people about.

- ``Incident``: every revision (kind ``incident``, subject the incident id, status open/updated/resolved);
- ``RcaReport``: kind ``rca``, subject the incident id;
- ``RemediationResult``: ``pending`` (waiting for a person) is kind ``approval``, any other status kind ``result``,
  subject the proposal id; the proposal itself comes from the ``Context`` (the notifier remembers proposals);
- ``Prediction``: kind ``prediction``, subject the prediction id, status active/updated/withdrawn;
- a failing or restored channel (``ChannelAlert``): kind ``channel``.

A ``RemediationProposal`` alone is no notice: the executor's ``pending`` result says when a person must act.
The fingerprint covers what people read, not timestamps or event ids, so a refresh that says nothing new is a
repeat.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from kubestack.contract.base import Event, ResourceRef
from kubestack.contract.events import (
    Incident,
    Prediction,
    PredictionStatus,
    RcaReport,
    RemediationProposal,
    RemediationResult,
    ResultStatus,
    Severity,
)
from kubestack.pipeline.earned import line_in
from kubestack.pipeline.memory import seen_before

_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
_NEEDS_ATTENTION = {ResultStatus.PENDING, ResultStatus.FAILED, ResultStatus.ROLLED_BACK}


def severity_rank(severity: Severity) -> int:
    return _SEVERITY_RANK[severity]


class ChannelState(StrEnum):
    DOWN = "down"
    RESTORED = "restored"


@dataclass(frozen=True)
class ChannelAlert:
    """A channel failed ``failures`` notices in a row (``DOWN``), or delivers again (``RESTORED``)."""

    channel: str
    state: ChannelState
    failures: int
    error: str | None
    since: datetime


@dataclass(frozen=True)
class Context:
    """What the notifier already knows about the subject's incident and proposal."""

    incident: Incident | None = None
    rca: RcaReport | None = None
    proposal: RemediationProposal | None = None


Subject = Incident | RcaReport | RemediationResult | Prediction | ChannelAlert


@dataclass(frozen=True)
class Notice:
    kind: str
    subject_id: str
    status: str
    severity: Severity
    title: str
    text: str
    tenant: str
    resource: ResourceRef
    subject: Subject
    context: Context = field(default_factory=Context)

    @property
    def incident_id(self) -> str | None:
        if isinstance(self.subject, Incident):
            return self.subject.incident_id
        return getattr(self.subject, "incident_id", None)

    @property
    def services(self) -> list[str]:
        """What a route's ``services`` globs are matched against: kinds, keys and 'service' labels."""
        resources = [self.resource]
        incident = self.subject if isinstance(self.subject, Incident) else self.context.incident
        if incident is not None:
            resources += incident.resources
        out: list[str] = []
        for ref in resources:
            out += [ref.kind, ref.key] + ([ref.labels["service"]] if "service" in ref.labels else [])
        return list(dict.fromkeys(out))

    @property
    def fingerprint(self) -> str:
        content = json.dumps([self.kind, self.status, self.severity, self.title, self.text, _details(self)],
                             sort_keys=True, default=str)
        return hashlib.sha256(content.encode()).hexdigest()


def _details(notice: Notice) -> object:
    """What people read beyond title and text, without timestamps: resources, signals, the cause."""
    subject = notice.subject
    rca = subject if isinstance(subject, RcaReport) else notice.context.rca
    causes = [(h.rank, h.component, h.cause, round(h.confidence, 2), h.runbooks) for h in rca.hypotheses[:3]] \
        if rca is not None else []
    if isinstance(subject, Incident):
        signals = sorted({(s.name, s.resource, s.severity.value) for s in subject.signals})
        return [sorted(r.key for r in subject.resources), signals, causes]
    return causes


def human_duration(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 3600:
        return f"~{max(round(seconds / 60), 1)} min"
    if seconds < 48 * 3600:
        return f"~{round(seconds / 3600)} h"
    return f"~{round(seconds / 86400)} days"


def proposal_target(proposal: RemediationProposal | None, result: RemediationResult) -> tuple[str, str]:
    """(action, target resource key) of a result, from its proposal when known."""
    if proposal is None:
        return f"proposal {result.proposal_id}", result.resource.key
    return proposal.action, proposal.resource.key


def _incident_notice(incident: Incident, context: Context) -> Notice:
    lines = [incident.summary] if incident.summary else []
    lines += [f"- {s.name} on {s.resource} ({s.severity.value}){': ' + s.summary if s.summary else ''}"
              for s in incident.signals[:10]]
    return Notice("incident", incident.incident_id, incident.status.value, incident.severity, incident.title,
                  "\n".join(lines) or incident.title, incident.tenant, incident.resource, incident, context)


def _rca_notice(report: RcaReport, context: Context) -> Notice:
    severity = context.incident.severity if context.incident else Severity.INFO
    top = report.hypotheses[0] if report.hypotheses else None
    about = context.incident.title if context.incident else f"incident {report.incident_id}"
    title = f"Root cause of {about}: {top.cause} on {top.component}" if top else f"No root cause found for {about}"
    text = report.narrative or (f"{top.cause} on {top.component} ({top.confidence:.0%})" if top else title)
    text = "\n".join([text, *seen_before(report.similar)])  # what was done last time (memory.py)
    return Notice("rca", report.incident_id, "reported", severity, title, text, report.tenant, report.resource,
                  report, context)


def _result_notice(result: RemediationResult, context: Context) -> Notice:
    action, target = proposal_target(context.proposal, result)
    pending = result.status is ResultStatus.PENDING
    if context.incident is not None:
        severity = context.incident.severity
    else:
        severity = Severity.WARNING if result.status in _NEEDS_ATTENTION else Severity.INFO
    title = f"Approval needed: {action} on {target}" if pending else \
        f"Remediation {result.status.value}: {action} on {target}"
    proposal = context.proposal
    text = (f"{proposal.expected_effect} (risk {proposal.risk.value})" if pending and proposal else result.output) \
        or title
    record = line_in(result.output) if pending and proposal else None
    text += f"\n{record}" if record else ""  # the action's earned record on this target class (earned.py)
    return Notice("approval" if pending else "result", result.proposal_id, result.status.value, severity, title,
                  text, result.tenant, result.resource, result, context)


def _prediction_notice(prediction: Prediction, context: Context) -> Notice:
    where = f"{prediction.signal} on {prediction.resource.name}"
    if prediction.status is PredictionStatus.WITHDRAWN or prediction.exhaustion_lower_bound is None:
        title, text = f"Forecast withdrawn: {where}", f"{where} is no longer expected to run out"
    else:
        what = f"{prediction.outcome} ({prediction.resource.name})" if prediction.outcome else f"{where} runs out"
        title = f"{what} in {human_duration(prediction.exhaustion_lower_bound - prediction.ts)}"
        text = (f"{prediction.signal} of {prediction.resource.key} is expected to reach its capacity "
                f"{prediction.capacity:g} at {prediction.exhaustion_at:%Y-%m-%d %H:%M} UTC, at the earliest "
                f"{prediction.exhaustion_lower_bound:%Y-%m-%d %H:%M} UTC (confidence {prediction.confidence:.0%})")
    return Notice("prediction", prediction.prediction_id, prediction.status.value, prediction.severity, title, text,
                  prediction.tenant, prediction.resource, prediction, context)


def notice_for(event: Event, context: Context | None = None) -> Notice | None:
    """The notice an event makes, or None when it makes none."""
    context = context or Context()
    if isinstance(event, Incident):
        return _incident_notice(event, context)
    if isinstance(event, RcaReport):
        return _rca_notice(event, context)
    if isinstance(event, RemediationResult):
        return _result_notice(event, context)
    if isinstance(event, Prediction):
        return _prediction_notice(event, context)
    return None


def channel_notice(alert: ChannelAlert, tenant: str = "default") -> Notice:
    if alert.state is ChannelState.DOWN:
        title = f"Notifications to {alert.channel} are failing"
        text = (f"{alert.failures} notices in a row could not be delivered to {alert.channel} since "
                f"{alert.since:%Y-%m-%d %H:%M:%S} UTC; last error: {alert.error or 'unknown'}. Other channels "
                f"still receive notices.")
    else:
        title = f"Notifications to {alert.channel} are delivered again"
        text = f"{alert.channel} accepted a notice again at {alert.since:%Y-%m-%d %H:%M:%S} UTC."
    resource = ResourceRef(kind="notify-channel", name=alert.channel)
    return Notice("channel", f"channel:{alert.channel}", alert.state.value, Severity.WARNING, title, text, tenant,
                  resource, alert)
