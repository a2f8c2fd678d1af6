"""What a notice says, as plain redacted pieces, for the channels that format text themselves (Teams, e-mail,
Feishu, DingTalk, WeCom): a title, facts, the text, the likely cause, links, and for an approval the decision links.

The digest is redacted whole (``redaction.redact_value``) before any renderer sees it, so each renderer only
formats (and escapes for its markup) what is already safe; the renderers' results are checked again on the way out.
Decision links open the API's decision page (``/api/v1/teams/decide``), where a person with an operator token
approves or rejects with the same checks as the API and Slack (see ``kubestack/api/routes_teams.py``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from kubestack.contract.events import Incident, Prediction, RcaReport, RemediationResult, Risk
from kubestack.pipeline.notify.notice import Notice, proposal_target
from kubestack.pipeline.notify.slack import incident_url
from kubestack.redaction import redact, redact_value

DECIDE_PATH = "/api/v1/teams/decide"
CLEARED = frozenset({"resolved", "withdrawn", "verified", "executed", "restored"})


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Digest:
    title: str
    severity: str
    status: str
    kind: str
    facts: list[tuple[str, str]]
    text: str
    cause: str | None
    links: list[Link]
    decisions: list[Link] = field(default_factory=list)
    """Approve / reject links, only on a pending proposal that may be decided."""
    footer: str = ""

    @property
    def cleared(self) -> bool:
        return self.status in CLEARED

    @property
    def headline(self) -> str:
        return f"[{'OK' if self.cleared else self.severity.upper()}] {self.title}"


def decision_url(console_url: str, proposal_id: str, decision: str) -> str:
    query = urlencode({"proposal_id": proposal_id, "decision": decision})
    return f"{console_url.rstrip('/')}{DECIDE_PATH}?{query}"


def _resources(notice: Notice) -> str:
    incident = notice.subject if isinstance(notice.subject, Incident) else notice.context.incident
    keys = [r.key for r in incident.resources] if incident and incident.resources else [notice.resource.key]
    return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def _cause(report: RcaReport | None, limit: int) -> str | None:
    if report is None:
        return None
    lines = [f"{h.rank}. {h.cause} on {h.component} ({h.confidence:.0%})"
             + (f", runbook {', '.join(h.runbooks)}" if h.runbooks else "") for h in report.hypotheses[:limit]]
    return "\n".join(lines) or "No cause found from the evidence so far"


def _facts(notice: Notice, console_url: str) -> tuple[list[tuple[str, str]], list[Link], list[Link]]:
    subject, links, decisions = notice.subject, [], []
    facts = [("Severity", notice.severity.value.upper()), ("Status", notice.status)]
    if isinstance(subject, Incident | RcaReport):
        facts += [("Resources", _resources(notice))]
        if isinstance(subject, Incident):
            facts += [("Opened", f"{subject.opened_at:%Y-%m-%d %H:%M} UTC")]
    elif isinstance(subject, RemediationResult):
        proposal = notice.context.proposal
        action, target = proposal_target(proposal, subject)
        facts += [("Action", action), ("Target", target)]
        if proposal is not None:
            facts += [("Risk", proposal.risk.value.upper()), ("Rollback", proposal.rollback or "none stated")]
            if proposal.params:
                facts += [("Parameters", json.dumps(proposal.params, sort_keys=True, default=str))]
        if notice.kind == "result":
            facts += [("By", subject.actor)]
        elif proposal is None or proposal.risk is not Risk.FORBIDDEN:
            decisions = [Link("Approve", decision_url(console_url, subject.proposal_id, "approve")),
                         Link("Reject", decision_url(console_url, subject.proposal_id, "reject"))]
    elif isinstance(subject, Prediction):
        facts += [("Signal", subject.signal), ("Resource", subject.resource.key)]
        if subject.exhaustion_lower_bound is not None:
            facts += [("Runs out (earliest)", f"{subject.exhaustion_lower_bound:%Y-%m-%d %H:%M} UTC")]
        links.append(Link("Open in console", f"{console_url.rstrip('/')}/#/predictions"))
    if notice.incident_id:
        links.insert(0, Link("Open in console", incident_url(console_url, notice.incident_id)))
    return facts, links, decisions


def digest(notice: Notice, console_url: str, *, ips: bool = False) -> Digest:
    """The notice's redacted digest."""
    facts, links, decisions = _facts(notice, console_url)
    subject = notice.subject
    rca = subject if isinstance(subject, RcaReport) else notice.context.rca
    cause = _cause(rca, 3 if isinstance(subject, RcaReport) else 1)
    text = notice.text  # a report's: its narrative, then one line per similar past incident (memory.py)
    title = f"Resolved: {notice.title}" if notice.status == "resolved" else notice.title
    where = f"{notice.kind} {notice.subject_id}" + (f" · incident {notice.incident_id}"
                                                    if notice.incident_id and notice.incident_id != notice.subject_id
                                                    else "")
    raw = Digest(title=title, severity=notice.severity.value, status=notice.status, kind=notice.kind, facts=facts,
                 text=text, cause=cause, links=links, decisions=decisions,
                 footer=f"KubeStack-AI · {where} · tenant {notice.tenant}")
    clean = redact_value(dataclasses.asdict(raw), ips=ips)
    return Digest(title=clean["title"], severity=clean["severity"], status=clean["status"], kind=clean["kind"],
                  facts=[(str(n), str(v)) for n, v in clean["facts"]], text=clean["text"], cause=clean["cause"],
                  links=[Link(**link) for link in clean["links"]],
                  decisions=[Link(**link) for link in clean["decisions"]], footer=clean["footer"])


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut_bytes(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-8 bytes, cut on a character boundary and marked with an ellipsis."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - len("…".encode())].decode(errors="ignore") + "…"


def recheck(obj: object, *, unescape: Callable[[str], str], escape: Callable[[str], str], ips: bool) -> object:
    """The safety net for payloads whose text was escaped after redaction (HTML, lark_md): a string that redaction
    would still change, read unescaped, is redacted and escaped whole."""
    if isinstance(obj, dict):
        return {key: recheck(value, unescape=unescape, escape=escape, ips=ips) for key, value in obj.items()}
    if isinstance(obj, list):
        return [recheck(item, unescape=unescape, escape=escape, ips=ips) for item in obj]
    if not isinstance(obj, str):
        return obj
    plain = unescape(obj)
    if redact(plain, ips=ips) == plain:
        return obj
    return escape(redact(plain, ips=ips))
