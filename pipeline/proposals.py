"""Remediation proposals for the most likely cause of an incident, from the remedies the plugins declare on their
actions (``plugins/remedy.py``): each signal, strongest first, is offered to the actions of the resource's plugin;
a remedy that answers it derives the action's parameters from its evidence, and the offer is kept only when those
parameters validate against the action's typed model. Pure: nothing here reaches a target, and nothing here
knows a plugin, a rule or an evidence key; the remediation stage re-checks each action's preconditions just
before acting. Forbidden actions are never proposed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Incident, IncidentSignal, RemediationProposal, Risk, SignalKind
from kubestack.pipeline.causes import CONFIG_RISK, cause_of, is_symptom, weight
from kubestack.plugins.base import ActionSpec
from kubestack.plugins.remedy import Clue, Remedy

MAX_PROPOSALS = 3
LOG_SIGNAL = "log/"

Candidate = tuple[ActionSpec, dict, str, IncidentSignal]
"""(action, params, expected effect, the signal whose evidence supports it)"""


def propose(incident: Incident, resource: str, signals: list[IncidentSignal], offered: tuple[ActionSpec, ...],
            source: Source, now: datetime) -> list[RemediationProposal]:
    """Up to ``MAX_PROPOSALS`` proposals against ``resource`` (the top hypothesis's component), strongest
    evidence first. Proposal ids are stable for the same incident, action and parameters, so a later revision of
    the incident re-proposes nothing already proposed."""
    target = next((r for r in incident.resources if r.key == resource), incident.resource)
    findings = sorted({s.name for s in signals if s.kind == SignalKind.FINDING and not is_symptom(s.name)})
    proposals = []
    for action, params, why, origin in supported(signals, offered, target)[:MAX_PROPOSALS]:
        watched = [origin.name] if origin.kind == SignalKind.FINDING else (findings or answered(action))
        digest = hashlib.sha256(f"{incident.incident_id}|{action.id}|{sorted(params.items())}".encode()).hexdigest()
        proposals.append(RemediationProposal(
            source=source, resource=target, tenant=incident.tenant, ts=now, proposal_id=f"prop-{digest[:20]}",
            incident_id=incident.incident_id, action=action.id, params=params, risk=action.risk,
            preconditions=list(action.preconditions), expected_effect=why, rollback=action.rollback,
            dry_run=f"{action.id} {' '.join(f'{k}={v}' for k, v in params.items())}".strip(), verify_rules=watched))
    return proposals


def answered(action: ActionSpec) -> list[str]:
    """The health rules ``action`` is declared to remedy: what a proposal made from a risky change or a log line is
    verified by when the incident holds no finding yet (else it would run with nothing to check it)."""
    return sorted({rule for remedy in action.answers for rule in remedy.findings})


def supported(signals: list[IncidentSignal], offered: tuple[ActionSpec, ...],
              target: ResourceRef | None = None) -> list[Candidate]:
    """Every (action, params, why, signal) the evidence supports, strongest signal first, each action and
    parameters once."""
    usable = [a for a in offered if a.risk != Risk.FORBIDDEN]
    out: list[Candidate] = []
    seen: set[tuple] = set()
    for signal in sorted(signals, key=lambda s: -weight(s)):
        for action in usable:
            for remedy in action.answers:
                for clue in clues(signal, remedy, _plugin(action.id), target):
                    for params, why in remedy.derive(clue):
                        key = (action.id, tuple(sorted(params.items())))
                        if key not in seen and action.accepts(params):
                            seen.add(key)
                            out.append((action, params, why, signal))
    return out


def clues(signal: IncidentSignal, remedy: Remedy, plugin: str, target: ResourceRef | None) -> Iterable[Clue]:
    """What ``signal`` tells ``remedy`` (of an action of ``plugin``): nothing when the remedy does not answer it."""
    cause = cause_of(signal)
    evidence = signal.details.get("evidence") or {}
    if cause in remedy.findings:
        yield Clue(rule=cause, evidence=evidence, resource=target)
    if remedy.changes and signal.name.startswith(f"{CONFIG_RISK}:") and _plugin(cause) == plugin:
        risky = evidence.get("setting")  # the one key the finding is about, when it names it: not every key changed
        for change in signal.details.get("changes", []):
            if remedy.undoes(str(change.get("key"))) and risky in (None, change.get("key")):
                yield Clue(rule=cause, evidence=evidence, resource=target, change=change)
    if remedy.logs and signal.name.startswith(LOG_SIGNAL):
        line = str(signal.details.get("line", ""))
        if (match := remedy.log_match(line)) is not None:
            yield Clue(rule=cause, evidence=evidence, resource=target, line=line, match=match)


def _plugin(rule_or_action: str) -> str:
    return rule_or_action.split(".", 1)[0]
