"""A notice as an Opsgenie Alert API v2 request (``Authorization: GenieKey <key>``; every answer is 202
``{"result": "Request will be processed", "took": ..., "requestId": ...}``, processed asynchronously).

Opsgenie keeps one open alert per ``alias``, like PagerDuty's dedup key: an incident creates its alert with
alias = incident id on every open or updated revision (Opsgenie counts the repeats), its root-cause report adds a
note, a person approving its remediation acknowledges it (someone is on it), any other remediation news is a
note, and the incident resolving closes it. A prediction is an alert by prediction id (closed when withdrawn), a
failing notification channel one by ``kubestack-channel-<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kubestack.contract.events import Incident, IncidentStatus, Prediction, RcaReport, RemediationResult, ResultStatus
from kubestack.notifysettings import OpsgenieSettings
from kubestack.pipeline.notify.digest import Digest, cut
from kubestack.pipeline.notify.notice import ChannelAlert, ChannelState, Notice

MESSAGE_MAX = 130
ALIAS_MAX = 512
DESCRIPTION_MAX = 15000
NOTE_MAX = 25000
DETAIL_MAX = 8000
SOURCE = "KubeStack-AI"
USER = "kubestack-notifier"
_PRIORITY = {"critical": "P1", "warning": "P3", "info": "P5"}


@dataclass(frozen=True)
class OpsgenieRequest:
    path: str
    """Under the base URL: ``/v2/alerts`` or ``/v2/alerts/<alias>/<acknowledge|close|notes>?identifierType=alias``."""
    payload: dict[str, Any]


def _description(d: Digest) -> str:
    lines = [d.text, "", *(f"{name}: {value}" for name, value in d.facts)]
    if d.cause:
        lines += ["", "Likely cause:", d.cause]
    lines += ["", *(f"{link.label}: {link.url}" for link in [*d.decisions, *d.links]), d.footer]
    return cut("\n".join(lines), DESCRIPTION_MAX)


def _create(alias: str, d: Digest, notice: Notice, settings: OpsgenieSettings) -> OpsgenieRequest:
    details = {"subject_id": notice.subject_id, "kind": notice.kind, "status": notice.status,
               "tenant": notice.tenant, **{name: cut(value, DETAIL_MAX) for name, value in d.facts}}
    if d.links:
        details["console"] = d.links[0].url
    payload: dict[str, Any] = {"message": cut(d.title, MESSAGE_MAX), "alias": alias[:ALIAS_MAX],
                               "description": _description(d), "priority": _PRIORITY.get(d.severity, "P3"),
                               "entity": cut(notice.resource.key, 512), "source": SOURCE, "user": USER,
                               "tags": list(settings.tags), "details": details}
    if settings.responders:
        payload["responders"] = [dict(r) for r in settings.responders]
    return OpsgenieRequest("/v2/alerts", payload)


def _on(alias: str, action: str, note: str) -> OpsgenieRequest:
    path = f"/v2/alerts/{quote(alias[:ALIAS_MAX], safe='')}/{action}?identifierType=alias"
    return OpsgenieRequest(path, {"source": SOURCE, "user": USER, "note": cut(note, NOTE_MAX)})


def opsgenie_request(notice: Notice, d: Digest, settings: OpsgenieSettings) -> OpsgenieRequest | None:
    """The request for a notice (``d`` is its redacted digest), or None when Opsgenie does not carry it."""
    subject = notice.subject
    if isinstance(subject, Incident):
        if subject.status is IncidentStatus.RESOLVED:
            return _on(subject.incident_id, "close", f"Resolved in KubeStack-AI. {d.text}")
        return _create(subject.incident_id, d, notice, settings)
    if isinstance(subject, RcaReport):
        return _on(subject.incident_id, "notes", f"{d.title}\n{d.cause or ''}\n{d.text}")
    if isinstance(subject, RemediationResult):
        action = "acknowledge" if subject.status is ResultStatus.APPROVED else "notes"
        links = "\n".join(f"{link.label}: {link.url}" for link in d.decisions)
        return _on(subject.incident_id, action, "\n".join(filter(None, [d.title, d.text, links])))
    if isinstance(subject, Prediction):
        if notice.status == "withdrawn":
            return _on(subject.prediction_id, "close", d.title)
        return _create(subject.prediction_id, d, notice, settings)
    if isinstance(subject, ChannelAlert):
        alias = f"kubestack-channel-{subject.channel}"
        if subject.state is ChannelState.RESTORED:
            return _on(alias, "close", d.text)
        return _create(alias, d, notice, settings)
    return None
