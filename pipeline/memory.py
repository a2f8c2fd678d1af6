"""Incident memory: the similar past incidents of a tenant, with what was done about them and whether it worked. Pure.

The worker keeps two small digests (``stages.py`` / ``loopstages.py`` hold them in tables, bounded per tenant):

- a ``PastIncident`` per incident, written by the root-cause stage for each revision it ranks: its title and text,
  its signals' *signature* (``feedback.signature``: the ``<kind>:<cause>`` of its signals), its resources and its
  top-ranked cause;
- a ``PastAction`` per proposal, folded from the audit trail (``proposal.<status>`` entries carry the incident id
  and the action): its last status and who approved it.

For a new incident revision, ``similar`` scores every earlier incident of the tenant::

    0.45 x Jaccard(signatures) + 0.25 x Jaccard(resources) + 0.20 x (same top cause on the same kind)
      + 0.10 x Jaccard(title and summary words)

and keeps the best ``MAX_SIMILAR`` at or above ``MIN_SIMILARITY``: the same fault on the same resource scores 1,
the same fault on another Redis ~0.7, another fault on the same resource ~0.4 (left out). ``seen_before`` words
each as one line for notices: "Seen before: <id> "<title>" on 2026-12-04 09:00 UTC (100% alike), fixed by
redis.config_set (verified), approved by otto".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from pydantic import BaseModel, Field

from kubestack.contract.events import AuditRecord, Incident, PastAction, RcaReport, ResultStatus, SimilarIncident
from kubestack.pipeline.feedback import signature, similarity

MAX_SIMILAR = 3
MIN_SIMILARITY = 0.5
MAX_INCIDENTS_PER_TENANT = 200
MAX_ACTIONS_PER_TENANT = 1000
WEIGHTS = {"signature": 0.45, "resources": 0.25, "cause": 0.20, "text": 0.10}
RESULT_PREFIX = "proposal."
_APPROVERS = ("policy:auto", "policy:earned")
"""Doers whose result means the action ran without a person's approval."""
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]{2,}")
_ENDED = {ResultStatus.VERIFIED: "fixed by {action} (verified)", ResultStatus.ROLLED_BACK: "{action} was rolled back",
          ResultStatus.FAILED: "{action} failed", ResultStatus.EXECUTED: "{action} ran (not verified)",
          ResultStatus.REJECTED: "{action} was rejected", ResultStatus.APPROVED: "{action} was approved",
          ResultStatus.PENDING: "{action} waited for approval"}
_PREFERRED = [ResultStatus.VERIFIED, ResultStatus.ROLLED_BACK, ResultStatus.FAILED, ResultStatus.EXECUTED,
              ResultStatus.APPROVED, ResultStatus.REJECTED, ResultStatus.PENDING]


class PastIncident(BaseModel):
    """Table state (not a bus message): what the memory keeps of one incident."""

    incident_id: str
    tenant: str
    title: str
    opened_at: datetime
    signature: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    cause: str | None = None
    component: str | None = None
    kind: str | None = None


class KeptAction(PastAction):
    """Table state: a proposal's ``PastAction`` with the incident it was about and when it last changed."""

    incident_id: str
    tenant: str
    ts: datetime


def words(text: str) -> list[str]:
    """The lower-case words of ``text`` (3 characters or more), sorted, once each."""
    return sorted(set(_WORD.findall(text.lower())))


def remember(incident: Incident, report: RcaReport | None) -> PastIncident:
    """The digest of ``incident`` (its latest revision) and its top-ranked cause in ``report``."""
    top = report.hypotheses[0] if report is not None and report.hypotheses else None
    kinds = {r.key: r.kind for r in incident.resources}
    return PastIncident(incident_id=incident.incident_id, tenant=incident.tenant, title=incident.title,
                        opened_at=incident.opened_at, signature=signature(incident),
                        resources=sorted({r.key for r in incident.resources} | {s.resource for s in incident.signals}),
                        words=words(f"{incident.title} {incident.summary}"),
                        cause=top.cause if top else None, component=top.component if top else None,
                        kind=kinds.get(top.component) if top else None)


def fold_action(kept: KeptAction | None, record: AuditRecord) -> KeptAction | None:
    """``kept`` after the audit ``record`` (None when the record is no remediation result: ``proposal.<status>``
    with the incident id and the action in its details)."""
    if not record.action.startswith(RESULT_PREFIX):
        return None
    try:
        status = ResultStatus(record.action.removeprefix(RESULT_PREFIX))
    except ValueError:
        return None
    incident_id, action = record.details.get("incident_id"), record.details.get("action")
    if not isinstance(incident_id, str) or not isinstance(action, str):
        return None
    approved_by = kept.approved_by if kept is not None else None
    if status is ResultStatus.APPROVED or (approved_by is None and record.actor in _APPROVERS):
        approved_by = record.actor  # a person, or the policy that let it run alone
    return KeptAction(proposal_id=record.subject_id, action=action, status=status, approved_by=approved_by,
                      incident_id=incident_id, tenant=record.tenant, ts=record.ts)


def score(mine: PastIncident, past: PastIncident) -> float:
    """How alike two incidents are, 0..1 (see the module's docstring)."""
    same_cause = mine.cause is not None and (mine.cause, mine.kind) == (past.cause, past.kind)
    total = (WEIGHTS["signature"] * similarity(mine.signature, past.signature)
             + WEIGHTS["resources"] * similarity(mine.resources, past.resources)
             + WEIGHTS["cause"] * same_cause
             + WEIGHTS["text"] * similarity(mine.words, past.words))
    return round(min(total, 1.0), 3)


def outcome(actions: Iterable[PastAction]) -> str:
    """What was done and whether it worked, for people: the most telling action first."""
    ordered = sorted(actions, key=lambda a: _PREFERRED.index(a.status))
    if not ordered:
        return "no action recorded"
    parts = []
    for done in ordered[:2]:
        text = _ENDED[done.status].format(action=done.action)
        if done.approved_by and done.status not in (ResultStatus.PENDING, ResultStatus.REJECTED):
            text += f", approved by {done.approved_by}"
        parts.append(text)
    return "; ".join(parts)


def similar(mine: PastIncident, past: Iterable[PastIncident], actions: Iterable[KeptAction],
            limit: int = MAX_SIMILAR) -> list[SimilarIncident]:
    """The past incidents of ``mine``'s tenant opened before it and alike enough, most alike first, each with the
    actions taken on it (``actions``: ``KeptAction``s of the tenant)."""
    by_incident: dict[str, list[PastAction]] = {}
    for kept in actions:
        by_incident.setdefault(kept.incident_id, []).append(
            PastAction(proposal_id=kept.proposal_id, action=kept.action, status=kept.status,
                       approved_by=kept.approved_by))
    scored = [(score(mine, p), p) for p in past if p.tenant == mine.tenant and p.incident_id != mine.incident_id
              and p.opened_at < mine.opened_at]
    scored = sorted(((s, p) for s, p in scored if s >= MIN_SIMILARITY),
                    key=lambda sp: (-sp[0], -sp[1].opened_at.timestamp()))
    out = []
    for value, p in scored[:limit]:
        done = by_incident.get(p.incident_id, [])
        out.append(SimilarIncident(incident_id=p.incident_id, title=p.title, opened_at=p.opened_at,
                                   similarity=value, resources=p.resources, cause=p.cause, component=p.component,
                                   actions=done, outcome=outcome(done)))
    return out


def seen_before(found: Iterable[SimilarIncident]) -> list[str]:
    """One line per similar past incident, for notices. The time is absolute ("3 days ago" would change with each
    revision of the report, and a notice that says nothing new must stay a repeat)."""
    return [f"Seen before: {s.incident_id} \"{s.title}\" on {s.opened_at:%Y-%m-%d %H:%M} UTC "
            f"({s.similarity:.0%} alike), {s.outcome}" for s in found]


def evictions(opened: Mapping[str, datetime], limit: int) -> list[str]:
    """The keys to drop so that at most ``limit`` of ``opened`` (key -> when) stay: the oldest first."""
    if len(opened) <= limit:
        return []
    return sorted(opened, key=lambda key: opened[key])[: len(opened) - limit]
