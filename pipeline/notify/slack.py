"""A notice as a Slack incoming-webhook message (Block Kit), within Slack's limits.

Every message: a header, a section with severity, status, resources and the summary, what the notice adds (the
likely cause, the proposal, the output, the forecast), and a context line with the subject id and a console link
``<console>/#/incidents/<id>``. A proposal waiting for approval ends with an ``actions`` block: buttons
``approve`` (primary) and ``reject`` (danger) whose ``value`` is ``{"proposal_id": ..., "incident_id": ...}``,
which the API's Slack callback turns into a ``RemediationDecision``. A root-cause report's cause carries buttons
``cause_right`` / ``cause_wrong`` whose ``value`` is ``{"incident_id": ..., "component": ..., "cause": ...}``: an
operator's verdict on it (``pipeline.feedback``), through the same callback; and one line per similar past incident
(``pipeline.memory``) says what was done last time.

Whatever comes from events is redacted, then escaped (``&``, ``<``, ``>``): a summary cannot ping ``<!channel>``
or fake a link, and the ``<redacted>`` markers show as written.
"""

from __future__ import annotations

import json
from typing import Any

from kubestack.contract.events import (
    Incident,
    Prediction,
    RcaReport,
    RemediationProposal,
    RemediationResult,
    Risk,
    Severity,
)
from kubestack.pipeline.earned import line_in
from kubestack.pipeline.memory import seen_before
from kubestack.pipeline.notify.notice import Notice, proposal_target
from kubestack.redaction import redact

HEADER_MAX = 150
TEXT_MAX = 3000
FIELD_MAX = 2000
MAX_FIELDS = 10
_EMOJI = {Severity.CRITICAL: ":red_circle:", Severity.WARNING: ":large_orange_circle:",
          Severity.INFO: ":large_blue_circle:"}
_CLEARED = {"resolved", "withdrawn", "verified", "executed", "restored"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(text, FIELD_MAX)}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, TEXT_MAX)}}


def _fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "section", "fields": [_mrkdwn(f"*{name}*\n{value}") for name, value in pairs[:MAX_FIELDS]]}


def incident_url(console_url: str, incident_id: str) -> str:
    return f"{console_url.rstrip('/')}/#/incidents/{incident_id}"


def approval_actions(proposal_id: str, incident_id: str) -> dict[str, Any]:
    value = json.dumps({"proposal_id": proposal_id, "incident_id": incident_id})
    return {"type": "actions", "block_id": f"proposal:{proposal_id}"[:255], "elements": [
        {"type": "button", "action_id": "approve", "style": "primary", "value": value,
         "text": {"type": "plain_text", "text": "Approve", "emoji": True}},
        {"type": "button", "action_id": "reject", "style": "danger", "value": value,
         "text": {"type": "plain_text", "text": "Reject", "emoji": True}},
    ]}


def feedback_actions(incident_id: str, component: str, cause: str) -> dict[str, Any]:
    """Buttons marking the ranked cause ``cause`` on ``component`` right or wrong."""
    value = json.dumps({"incident_id": incident_id, "component": component, "cause": cause})
    return {"type": "actions", "block_id": f"cause:{incident_id}"[:255], "elements": [
        {"type": "button", "action_id": "cause_right", "value": value,
         "text": {"type": "plain_text", "text": "Right cause", "emoji": True}},
        {"type": "button", "action_id": "cause_wrong", "value": value,
         "text": {"type": "plain_text", "text": "Wrong cause", "emoji": True}},
    ]}


class SlackRenderer:
    def __init__(self, console_url: str, *, redact_ips: bool = False) -> None:
        self.console_url = console_url.rstrip("/")
        self.redact_ips = redact_ips

    def t(self, text: object) -> str:
        """Event content made safe for mrkdwn: redacted, then escaped."""
        safe = redact(str(text), ips=self.redact_ips)
        return safe.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def code(self, text: str, limit: int = TEXT_MAX - 100) -> str:
        return f"```{_cut(self.t(text), limit)}```"

    def resources(self, incident: Incident | None, notice: Notice) -> str:
        keys = [r.key for r in incident.resources] if incident and incident.resources else [notice.resource.key]
        shown = ", ".join(f"`{self.t(key)}`" for key in keys[:5])
        return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    def cause(self, report: RcaReport, limit: int = 1) -> str:
        lines = []
        for h in report.hypotheses[:limit]:
            line = f"*Likely cause* ({h.confidence:.0%}): {self.t(h.cause)} on `{self.t(h.component)}`"
            if h.runbooks:
                line += f"\n*Runbook*: {self.t(', '.join(h.runbooks))}"
            lines.append(line if limit == 1 else f"{h.rank}. {line}")
        return "\n".join(lines) or "*Likely cause*: none found from the evidence so far"

    def incident_blocks(self, notice: Notice, incident: Incident) -> list[dict[str, Any]]:
        blocks = [_fields([("Severity", incident.severity.value.upper()), ("Status", incident.status.value),
                           ("Resources", self.resources(incident, notice)),
                           ("Opened", f"{incident.opened_at:%Y-%m-%d %H:%M} UTC")]),
                  _section(self.t(notice.text))]
        if notice.context.rca is not None:
            blocks.append(_section(self.cause(notice.context.rca)))
            blocks += self.seen_before(notice.context.rca)
        return blocks

    def seen_before(self, report: RcaReport) -> list[dict[str, Any]]:
        lines = seen_before(report.similar)
        return [_section("\n".join(f":repeat: {self.t(line)}" for line in lines))] if lines else []

    def rca_blocks(self, notice: Notice, report: RcaReport) -> list[dict[str, Any]]:
        blocks = [_fields([("Severity", notice.severity.value.upper()),
                           ("Resources", self.resources(notice.context.incident, notice)),
                           ("Written by", self.t(report.narrator))]),
                  _section(self.cause(report, limit=3))]
        if report.hypotheses:
            top = report.hypotheses[0]
            blocks.append(feedback_actions(report.incident_id, top.component, top.cause))
        if report.narrative:
            blocks.append(_section(self.t(report.narrative)))
        return blocks + self.seen_before(report)

    def proposal_blocks(self, proposal: RemediationProposal) -> list[dict[str, Any]]:
        blocks = [_fields([("Action", f"`{self.t(proposal.action)}`"), ("Target", f"`{self.t(proposal.resource.key)}`"),
                           ("Risk", proposal.risk.value.upper()),
                           ("Expected effect", self.t(proposal.expected_effect or "not stated")),
                           ("Rollback", self.t(proposal.rollback or "none stated"))])]
        if proposal.params:
            blocks.append(_section("*Parameters*\n" + self.code(json.dumps(proposal.params, indent=1, sort_keys=True,
                                                                           default=str))))
        if proposal.preconditions:
            blocks.append(_section("*Preconditions*\n" + "\n".join(f"• {self.t(p)}" for p in proposal.preconditions)))
        if proposal.dry_run:
            blocks.append(_section("*Dry run*\n" + self.code(proposal.dry_run)))
        return blocks

    def result_blocks(self, notice: Notice, result: RemediationResult) -> list[dict[str, Any]]:
        proposal = notice.context.proposal
        if notice.kind == "approval":
            blocks = self.proposal_blocks(proposal) if proposal else [_section(self.t(notice.text))]
            if proposal is not None and line_in(result.output):  # the action's earned record (earned.py)
                blocks.append(_section(self.t(line_in(result.output))))
            if proposal is not None and proposal.risk is Risk.FORBIDDEN:
                blocks.append(_section("This action is *forbidden* by policy: it cannot be approved here."))
            else:
                blocks.append(approval_actions(result.proposal_id, result.incident_id))
            return blocks
        action, target = proposal_target(proposal, result)
        blocks = [_fields([("Action", f"`{self.t(action)}`"), ("Target", f"`{self.t(target)}`"),
                           ("Status", result.status.value), ("By", self.t(result.actor))])]
        if result.output:
            blocks.append(_section("*Output*\n" + self.code(result.output)))
        return blocks

    def prediction_blocks(self, notice: Notice, prediction: Prediction) -> list[dict[str, Any]]:
        pairs = [("Signal", f"`{self.t(prediction.signal)}`"), ("Resource", f"`{self.t(prediction.resource.key)}`"),
                 ("Severity", prediction.severity.value.upper()), ("Status", prediction.status.value)]
        if prediction.exhaustion_at and prediction.exhaustion_lower_bound:
            pairs += [("Runs out (likely)", f"{prediction.exhaustion_at:%Y-%m-%d %H:%M} UTC"),
                      ("Runs out (earliest)", f"{prediction.exhaustion_lower_bound:%Y-%m-%d %H:%M} UTC"),
                      ("Capacity", f"{prediction.capacity:g}"), ("Confidence", f"{prediction.confidence:.0%}")]
        return [_fields(pairs), _section(self.t(notice.text))]

    def context(self, notice: Notice) -> dict[str, Any]:
        if notice.incident_id:
            url = incident_url(self.console_url, notice.incident_id)
            where = f"Incident `{self.t(notice.incident_id)}` · <{url}|Open in console>"
            if notice.kind in ("approval", "result"):
                where = f"Proposal `{self.t(notice.subject_id)}` · {where}"
        elif notice.kind == "prediction":
            where = f"Prediction `{self.t(notice.subject_id)}` · <{self.console_url}/#/predictions|Open in console>"
        else:
            where = f"KubeStack-AI notifier · <{self.console_url}/|Console>"
        return {"type": "context", "elements": [_mrkdwn(f"{where} · tenant `{self.t(notice.tenant)}`")]}

    def message(self, notice: Notice) -> dict[str, Any]:
        """The webhook payload."""
        emoji = ":white_check_mark:" if notice.status in _CLEARED else (
            ":warning:" if notice.kind == "channel" else _EMOJI[notice.severity])
        title = redact(f"Resolved: {notice.title}" if notice.status == "resolved" else notice.title,
                       ips=self.redact_ips)
        subject = notice.subject
        if isinstance(subject, Incident):
            body = self.incident_blocks(notice, subject)
        elif isinstance(subject, RcaReport):
            body = self.rca_blocks(notice, subject)
        elif isinstance(subject, RemediationResult):
            body = self.result_blocks(notice, subject)
        elif isinstance(subject, Prediction):
            body = self.prediction_blocks(notice, subject)
        else:
            body = [_section(self.t(notice.text))]
        header = {"type": "header", "text": {"type": "plain_text", "text": _cut(f"{emoji} {title}", HEADER_MAX),
                                             "emoji": True}}
        fallback = self.t(f"[{notice.severity.value.upper()}] {title}")
        return {"text": _cut(fallback, TEXT_MAX), "blocks": [header, *body, self.context(notice)]}
