"""A notice as a PagerDuty Events API v2 event.

PagerDuty keeps one alert per ``dedup_key``: a ``trigger`` opens it or, when it is open, updates it; ``resolve``
closes it. So an incident triggers with ``dedup_key`` = its id on every open or updated revision (and again when
its root-cause report arrives, with the cause in ``custom_details``) and resolves when it resolves. A prediction
does the same with its prediction id (resolved when withdrawn), a failing notification channel with
``kubestack-channel-<name>``. Proposals and remediation results do not page.
"""

from __future__ import annotations

from typing import Any

from kubestack.contract.events import Incident, IncidentStatus, Prediction, RcaReport, Severity
from kubestack.pipeline.memory import seen_before
from kubestack.pipeline.notify.notice import ChannelAlert, ChannelState, Notice
from kubestack.pipeline.notify.slack import incident_url

SUMMARY_MAX = 1024
CLIENT = "KubeStack-AI"
_SEVERITY = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rca_details(report: RcaReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {"narrative": report.narrative, "narrator": report.narrator,
            "hypotheses": [{"rank": h.rank, "component": h.component, "cause": h.cause,
                            "confidence": round(h.confidence, 3), "runbooks": h.runbooks}
                           for h in report.hypotheses[:3]],
            "seen_before": seen_before(report.similar)}


def _incident_trigger(incident: Incident, rca: RcaReport | None, console_url: str) -> dict[str, Any]:
    url = incident_url(console_url, incident.incident_id)
    ref = incident.resource
    top = rca.hypotheses[0] if rca is not None and rca.hypotheses else None
    summary = f"[{incident.severity.value.upper()}] {incident.title}"
    if top is not None:
        summary += f" - likely cause: {top.cause} on {top.component} ({top.confidence:.0%})"
    elif incident.summary:
        summary += f" - {incident.summary}"
    details = {
        "incident_id": incident.incident_id, "status": incident.status.value, "tenant": incident.tenant,
        "resources": [r.key for r in incident.resources],
        "signals": [{"name": s.name, "resource": s.resource, "severity": s.severity.value, "summary": s.summary,
                     "first_seen": s.first_seen.isoformat(), "details": s.details} for s in incident.signals[:20]],
        "rca": _rca_details(rca), "console": url,
    }
    payload = {
        "summary": _cut(summary, SUMMARY_MAX), "source": ref.key, "severity": _SEVERITY[incident.severity],
        "timestamp": incident.ts.isoformat(), "component": f"{ref.kind}/{ref.name}",
        "group": ref.labels.get("service") or ref.namespace or ref.host or ref.cluster or ref.kind,
        "class": incident.signals[0].name if incident.signals else "incident",
        "custom_details": details,
    }
    return {"event_action": "trigger", "dedup_key": incident.incident_id, "payload": payload, "client": CLIENT,
            "client_url": url, "links": [{"href": url, "text": "Incident in the KubeStack console"}]}


def _prediction_trigger(prediction: Prediction, notice: Notice, console_url: str) -> dict[str, Any]:
    ref = prediction.resource
    details = {"prediction_id": prediction.prediction_id, "signal": prediction.signal,
               "capacity": prediction.capacity, "confidence": prediction.confidence, "model": prediction.model,
               "exhaustion_at": prediction.exhaustion_at.isoformat() if prediction.exhaustion_at else None,
               "exhaustion_lower_bound": prediction.exhaustion_lower_bound.isoformat()
               if prediction.exhaustion_lower_bound else None, "tenant": prediction.tenant}
    payload = {"summary": _cut(f"[{prediction.severity.value.upper()}] {notice.title}", SUMMARY_MAX),
               "source": ref.key, "severity": _SEVERITY[prediction.severity], "timestamp": prediction.ts.isoformat(),
               "component": f"{ref.kind}/{ref.name}", "class": "capacity_forecast",
               "group": ref.labels.get("service") or ref.namespace or ref.host or ref.cluster or ref.kind,
               "custom_details": details}
    return {"event_action": "trigger", "dedup_key": prediction.prediction_id, "payload": payload, "client": CLIENT,
            "client_url": f"{console_url.rstrip('/')}/#/predictions"}


def _channel_event(alert: ChannelAlert, notice: Notice) -> dict[str, Any]:
    dedup_key = f"kubestack-channel-{alert.channel}"
    if alert.state is ChannelState.RESTORED:
        return {"event_action": "resolve", "dedup_key": dedup_key}
    payload = {"summary": _cut(notice.title, SUMMARY_MAX), "source": "kubestack-notifier", "severity": "error",
               "component": alert.channel, "class": "notification_channel_down",
               "custom_details": {"failures": alert.failures, "last_error": alert.error}}
    return {"event_action": "trigger", "dedup_key": dedup_key, "payload": payload, "client": CLIENT}


def pagerduty_event(notice: Notice, console_url: str) -> dict[str, Any] | None:
    """The event without ``routing_key`` (the sender adds it), or None when the notice does not page."""
    subject = notice.subject
    if isinstance(subject, Incident):
        if subject.status is IncidentStatus.RESOLVED:
            return {"event_action": "resolve", "dedup_key": subject.incident_id}
        return _incident_trigger(subject, notice.context.rca, console_url)
    if isinstance(subject, RcaReport):
        incident = notice.context.incident
        if incident is None or incident.status is IncidentStatus.RESOLVED:
            return None
        return _incident_trigger(incident, subject, console_url)
    if isinstance(subject, Prediction):
        if notice.status == "withdrawn":
            return {"event_action": "resolve", "dedup_key": subject.prediction_id}
        return _prediction_trigger(subject, notice, console_url)
    if isinstance(subject, ChannelAlert):
        return _channel_event(subject, notice)
    return None
