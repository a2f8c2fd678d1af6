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

import hashlib
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
    Risk,
    Severity,
    SignalKind,
)
from kubestack.plugins.base import ActionSpec

log = logging.getLogger(__name__)

CONFIG_RISK = "config-risk"
TARGET_DOWN = "agent.target_down"
MAX_HYPOTHESES = 5
MAX_PROPOSALS = 3
_FINDING = {Severity.CRITICAL: 2.0, Severity.WARNING: 1.5, Severity.INFO: 0.5}

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
        return max(self.signals, key=lambda s: (_weight(s), -s.first_seen.timestamp()))

    @property
    def started(self) -> datetime:
        return min(s.first_seen for s in self.signals)


@dataclass(frozen=True)
class Diagnosis:
    report: RcaReport
    proposals: list[RemediationProposal]
    top_cause: str


def cause_of(signal: IncidentSignal) -> str:
    """The cause a signal names: the rule id of a finding or a config risk, '<metric> exhaustion' of a forecast,
    the detector and signal of an anomaly."""
    if signal.kind == SignalKind.PREDICTION:
        return f"{signal.name.split('{')[0]} exhaustion"
    if signal.name.startswith(f"{CONFIG_RISK}:"):
        return signal.name.split(":", 1)[1]
    if signal.name.startswith("log/") and signal.details.get("template"):
        return f"{signal.name.split(':', 1)[0]}: {signal.details['template']}"[:253]
    return signal.name


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
    proposals = _proposals(incident, top, actions(top.kind), source, now)
    return Diagnosis(report, proposals, f"{top.resource}|{hypotheses[0].cause}")


def _candidates(incident: Incident) -> list[Candidate]:
    kinds = {r.key: r.kind for r in incident.resources}
    by_resource: dict[str, list[IncidentSignal]] = {}
    for signal in incident.signals:
        by_resource.setdefault(signal.resource, []).append(signal)
    return [Candidate(key, kinds.get(key, key.split("/")[2] if key.count("/") >= 3 else "unknown"), signals)
            for key, signals in by_resource.items()]


def _weight(signal: IncidentSignal) -> float:
    if signal.name.startswith(f"{CONFIG_RISK}:"):
        return 3.0
    if signal.kind == SignalKind.FINDING:
        return 2.5 if signal.name == TARGET_DOWN else _FINDING[signal.severity]
    if signal.kind == SignalKind.PREDICTION:
        return 1.2
    return 0.5 + 0.5 * (signal.score or 0.0)


def _score(candidates: list[Candidate], incident: Incident) -> None:
    for candidate in candidates:
        distinct = {s.name for s in candidate.signals}
        candidate.score = _weight(candidate.lead) + 0.1 * min(len(distinct) - 1, 5)
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


def _proposals(incident: Incident, top: Candidate, offered: tuple[ActionSpec, ...], source: Source,
               now: datetime) -> list[RemediationProposal]:
    proposals = []
    for action, params, why in _actions_for(top, offered)[:MAX_PROPOSALS]:
        if action.risk == Risk.FORBIDDEN:
            continue
        digest = hashlib.sha256(f"{incident.incident_id}|{action.id}|{sorted(params.items())}".encode()).hexdigest()
        resource = next((r for r in incident.resources if r.key == top.resource), incident.resource)
        proposals.append(RemediationProposal(
            source=source, resource=resource, tenant=incident.tenant, ts=now, proposal_id=f"prop-{digest[:20]}",
            incident_id=incident.incident_id, action=action.id, params=params, risk=action.risk,
            preconditions=list(action.preconditions), expected_effect=why, rollback=action.rollback,
            dry_run=f"{action.id} {' '.join(f'{k}={v}' for k, v in params.items())}".strip()))
    return proposals


def _actions_for(top: Candidate, offered: tuple[ActionSpec, ...]) -> list[tuple[ActionSpec, dict, str]]:
    """Actions with the parameters the evidence supports: undo a risky change (its previous value), end the
    session holding a lock (its id or pid). Only actions whose parameters are all known are proposed."""
    by_id = {a.id: a for a in offered}
    out: list[tuple[ActionSpec, dict, str]] = []
    for signal in sorted(top.signals, key=lambda s: -_weight(s)):
        for action_id, params, why in _evidence_actions(signal):
            action = by_id.get(action_id)
            if action is not None and _required(action) <= set(params):
                out.append((action, params, why))
    seen, unique = set(), []
    for action, params, why in out:
        key = (action.id, tuple(sorted(params.items())))
        if key not in seen:
            seen.add(key)
            unique.append((action, params, why))
    return unique


def _required(action: ActionSpec) -> set[str]:
    return {name for name, meaning in action.params.items() if "optional" not in meaning.lower()}


def _evidence_actions(signal: IncidentSignal) -> list[tuple[str, dict, str]]:
    details, cause = signal.details, cause_of(signal)
    plugin = cause.split(".", 1)[0]
    out = []
    for change in details.get("changes", []) if signal.name.startswith(f"{CONFIG_RISK}:") else []:
        key, old = change.get("key"), change.get("old")
        if old is None:
            continue
        why = f"restore {key} to {old} (it was changed to {change.get('new')})"
        if plugin == "redis" and key == "maxmemory":
            out.append(("redis.set_maxmemory", {"bytes": old}, why))
        elif plugin == "redis" and key == "maxmemory-policy":
            out.append(("redis.set_maxmemory_policy", {"policy": old}, why))
        elif plugin == "mysql" and key == "max_connections":
            out.append(("mysql.set_max_connections", {"value": old}, why))
        elif plugin == "postgresql":
            out.append(("postgresql.alter_system_set", {"name": key, "value": old}, why))
    evidence = details.get("evidence") or {}
    out += _limit_actions(cause, evidence)
    if cause == "mysql.row_lock_waits":
        for blocker in sorted({w.get("blocking_id") for w in evidence.get("waits", []) if w.get("blocking_id")}):
            out.append(("mysql.kill_connection", {"id": blocker}, f"end connection {blocker}, which holds the lock"))
    if cause == "postgresql.lock_wait" and evidence.get("blocking_pid"):
        pid = evidence["blocking_pid"]
        out.append(("postgresql.terminate_backend", {"pid": pid}, f"end backend {pid}, which holds the lock"))
    return out


def _limit_actions(cause: str, evidence: dict) -> list[tuple[str, dict, str]]:
    """A limit that is being reached: room to breathe (raise it a quarter or a half, within what the
    preconditions say), or free what is held for nothing."""
    out = []
    if cause in ("redis.memory_near_limit", "redis.noeviction_memory_high") and evidence.get("maxmemory"):
        current = int(evidence["maxmemory"])
        raised = int(current * 1.25)
        out.append(("redis.set_maxmemory", {"bytes": str(raised)},
                    f"raise maxmemory by a quarter, from {current} to {raised} bytes, if the host has the memory"))
        if evidence.get("maxmemory_policy") == "noeviction":
            out.append(("redis.set_maxmemory_policy", {"policy": "allkeys-lru"},
                        "let Redis evict the least recently used keys instead of refusing writes (a cache only)"))
    if cause == "mysql.connections_near_max" and evidence.get("max_connections"):
        current = int(evidence["max_connections"])
        out.append(("mysql.set_max_connections", {"value": str(int(current * 1.5))},
                    f"raise max_connections by half, from {current}, while the clients are fixed"))
    if cause == "postgresql.connections_near_max" and evidence.get("by_state", {}).get("idle in transaction"):
        idle = evidence["by_state"]["idle in transaction"]
        out.append(("postgresql.terminate_idle_in_transaction", {"min_idle_s": "60"},
                    f"free the slots of {idle} session(s) idle in a transaction for over a minute"))
    return out
