"""Root cause of an incident, from the evidence the incident carries: ranked hypotheses, the runbooks that match
them, and remediation proposals built from the plugins' actions. Deterministic; the words only explain the
ranking. Pure: the Faust agent calls ``diagnose`` and publishes what it returns.

Each resource of the incident is a candidate; its *lead* signal names the cause. Scores:

- **what the lead is**: a risky configuration change is the strongest prior (something changed, then things
  broke), then a target that cannot be reached at all, then critical and warning health findings, exhaustion
  forecasts, and detector anomalies (scaled by their score);
- **who moved first**: the earlier a candidate's first signal, the larger its bonus (effects follow causes);
- **along the links**: a candidate that depends on (calls, replicates from, consumes from) another candidate
  whose signals came no later is more likely its victim and loses weight; one that others depend on and that
  moved first gains;
- **breadth**: a little for each further distinct signal of the same candidate.

Confidence is the candidate's share of the total score.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kubestack.contract.base import Source
from kubestack.contract.events import (
    Hypothesis,
    Incident,
    IncidentSignal,
    RcaReport,
    RemediationProposal,
    SignalKind,
)
from kubestack.pipeline.causes import cause_of, weight
from kubestack.pipeline.proposals import propose
from kubestack.plugins.base import ActionSpec

log = logging.getLogger(__name__)

MAX_HYPOTHESES = 5

RunbookLookup = Callable[[list[str], str], list[str]]
"""(signal names: rule ids, metric names, log lines; middleware) -> runbook ids, best first."""
ActionLookup = Callable[[str], tuple[ActionSpec, ...]]
"""Resource kind -> the actions its plugin offers."""


@dataclass
class Candidate:
    resource: str
    kind: str
    signals: list[IncidentSignal]
    score: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def lead(self) -> IncidentSignal:
        return max(self.signals, key=lambda s: (weight(s), -s.first_seen.timestamp()))

    @property
    def started(self) -> datetime:
        return min(s.first_seen for s in self.signals)


@dataclass(frozen=True)
class Diagnosis:
    report: RcaReport
    proposals: list[RemediationProposal]
    top_cause: str


def diagnose(incident: Incident, source: Source, runbooks: RunbookLookup, actions: ActionLookup,
             now: datetime) -> Diagnosis | None:
    """The report and proposals for one revision of ``incident`` (stamped ``now``); None when it carries no
    signals."""
    candidates = _candidates(incident)
    if not candidates:
        return None
    _score(candidates, incident)
    ranked = sorted(candidates, key=lambda c: (-c.score, c.started, c.resource))[:MAX_HYPOTHESES]
    total = sum(c.score for c in candidates) or 1.0
    hypotheses = []
    for rank, candidate in enumerate(ranked, start=1):
        lead = candidate.lead
        ordered = [lead] + [s for s in candidate.signals if s is not lead]
        hypotheses.append(Hypothesis(
            rank=rank, component=candidate.resource, cause=cause_of(lead), confidence=round(candidate.score / total, 3),
            evidence_ids=[s.event_id for s in ordered],
            runbooks=runbooks([_lookup_name(s) for s in ordered], candidate.kind)))
    report = RcaReport(source=source, resource=incident.resource, tenant=incident.tenant, ts=now,
                       event_id=f"{incident.event_id}-rca", incident_id=incident.incident_id,
                       hypotheses=hypotheses, narrative=_narrative(ranked, hypotheses), narrator="rules")
    top = ranked[0]
    proposals = propose(incident, top.resource, top.signals, actions(top.kind), source, now)
    return Diagnosis(report, proposals, f"{top.resource}|{hypotheses[0].cause}")


def _candidates(incident: Incident) -> list[Candidate]:
    kinds = {r.key: r.kind for r in incident.resources}
    by_resource: dict[str, list[IncidentSignal]] = {}
    for signal in incident.signals:
        by_resource.setdefault(signal.resource, []).append(signal)
    return [Candidate(key, kinds.get(key, key.split("/")[2] if key.count("/") >= 3 else "unknown"), signals)
            for key, signals in by_resource.items()]


def _score(candidates: list[Candidate], incident: Incident) -> None:
    for candidate in candidates:
        distinct = {s.name for s in candidate.signals}
        candidate.score = weight(candidate.lead) + 0.1 * min(len(distinct) - 1, 5)
    order = sorted(candidates, key=lambda c: (c.started, c.resource))
    if len(order) > 1:
        for position, candidate in enumerate(order):
            candidate.score *= 1.0 + 0.3 * (1 - position / (len(order) - 1))
    by_key = {c.resource: c for c in candidates}
    for link in incident.links:
        if link.reason in ("same_host", "service"):
            continue  # related, but with no direction: nothing to say who follows whom
        caller, callee = by_key.get(link.source), by_key.get(link.target)
        if caller is None or callee is None or callee.started > caller.started:
            continue
        caller.score *= 0.7
        caller.notes.append(f"depends on {callee.resource} ({link.reason}), whose signals came first")
        callee.score *= 1.15
        callee.notes.append(f"{caller.resource} depends on it ({link.reason}) and followed")


def _lookup_name(signal: IncidentSignal) -> str:
    if signal.kind == SignalKind.ANOMALY:
        if signal.details.get("metric"):
            return str(signal.details["metric"])
        if signal.details.get("line"):
            return str(signal.details["line"])
    if signal.kind == SignalKind.PREDICTION:
        return signal.name.split("{")[0]
    return cause_of(signal)


def _narrative(ranked: list[Candidate], hypotheses: list[Hypothesis]) -> str:
    top, first = ranked[0], hypotheses[0]
    lead = top.lead
    text = [f"Most likely cause: {first.cause} on {top.resource} (confidence {first.confidence:.0%}). "
            f"{lead.summary}".strip()]
    text += [f"{note[0].upper()}{note[1:]}." for note in top.notes]
    others = [f"{h.component} ({h.cause})" for h in hypotheses[1:3]]
    if others:
        text.append(f"Also considered: {', '.join(others)}.")
    if first.runbooks:
        text.append(f"Runbook: {first.runbooks[0]}.")
    return " ".join(text)
