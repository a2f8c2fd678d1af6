"""Operators' verdicts on ranked causes, and the small prior they give the causes of future similar incidents. Pure.

An operator marks a hypothesis of an incident's root-cause report right or wrong (``CauseVerdict``). The verdict
keeps what it was about: the cause (``redis.maxmemory_lowered``), the kind of resource it was named on, and the
incident's *signature*: the set of ``<kind>:<cause>`` of its signals (``redis:redis.maxmemory_lowered``,
``host:host.cpu_saturated``), which is what makes two incidents alike whatever their ids, times and names.

For a new incident, ``learned`` weighs each component's lead cause by the verdicts on the same cause and kind of
past incidents whose signature is similar enough (Jaccard >= ``MIN_SIMILAR``): each counts its similarity, + for
right, - for wrong; the component's score is multiplied by ``STEP ** vote`` (the vote capped at ``MAX_VOTE``
either way), and the cause carries a note saying so. Small and explainable: two right marks on the same incident
make a cause 1.5^2 = 2.25 times as likely, which moves a close second to first and leaves a clear first alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

from kubestack.contract.events import Incident, IncidentSignal
from kubestack.pipeline.causes import cause_of, lead

AUDIT_ACTION = "rca.feedback"
"""How a verdict is kept: an audit entry of this action with the verdict as its details (the API writes it, the
worker folds it from the audit topic)."""
STEP = 1.5
MAX_VOTE = 3.0
MIN_SIMILAR = 0.3


class CauseVerdict(BaseModel):
    """One operator's verdict on one ranked cause of one incident."""

    incident_id: str
    component: str = Field(description="Resource key the cause was named on")
    cause: str
    kind: str = Field(description="Kind of that resource")
    right: bool
    actor: str
    ts: datetime
    signature: list[str] = Field(default_factory=list, description="<kind>:<cause> of the incident's signals")


@dataclass(frozen=True)
class Learned:
    """What the verdicts say about one component's cause: the factor on its score and why."""

    factor: float
    note: str
    right: int
    wrong: int


def _kind(key: str, incident: Incident) -> str:
    kinds = {r.key: r.kind for r in incident.resources}
    return kinds.get(key, key.split("/")[2] if key.count("/") >= 3 else "unknown")


def signature(incident: Incident) -> list[str]:
    """The ``<kind>:<cause>`` of every signal of ``incident``, sorted, once each."""
    return sorted({f"{_kind(s.resource, incident)}:{cause_of(s)}" for s in incident.signals})


def similarity(a: Iterable[str], b: Iterable[str]) -> float:
    """Jaccard similarity of two signatures (0 when both are empty)."""
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 0.0


def verdict(incident: Incident, component: str, right: bool, actor: str, ts: datetime,
            cause: str | None = None) -> CauseVerdict:
    """The verdict on ``component``'s cause in ``incident`` (by default its lead signal's cause)."""
    signals: list[IncidentSignal] = [s for s in incident.signals if s.resource == component]
    if cause is None:
        if not signals:
            raise ValueError(f"incident {incident.incident_id} has no signal on {component}")
        cause = cause_of(lead(signals))
    return CauseVerdict(incident_id=incident.incident_id, component=component, cause=cause,
                        kind=_kind(component, incident), right=right, actor=actor, ts=ts,
                        signature=signature(incident))


def learned(incident: Incident, verdicts: Iterable[CauseVerdict]) -> dict[str, Learned]:
    """Per component of ``incident`` whose lead cause verdicts on similar past incidents speak about: the factor
    on its score, with a note. Verdicts on ``incident`` itself count too (an operator corrects a live ranking)."""
    mine = signature(incident)
    similar = [(v, 1.0 if v.incident_id == incident.incident_id else similarity(mine, v.signature))
               for v in verdicts]
    similar = [(v, s) for v, s in similar if s >= MIN_SIMILAR]
    by_resource: dict[str, list[IncidentSignal]] = {}
    for signal in incident.signals:
        by_resource.setdefault(signal.resource, []).append(signal)
    out: dict[str, Learned] = {}
    for component, signals in by_resource.items():
        cause, kind = cause_of(lead(signals)), _kind(component, incident)
        about = [(v, s) for v, s in similar if v.cause == cause and v.kind == kind]
        if not about:
            continue
        vote = sum(s if v.right else -s for v, s in about)
        vote = max(-MAX_VOTE, min(MAX_VOTE, vote))
        right = sum(1 for v, _ in about if v.right)
        wrong = len(about) - right
        factor = STEP ** vote
        out[component] = Learned(factor, f"operators marked {cause} on {kind} right {right}, wrong {wrong} time(s) "
                                         f"on similar incidents (x{factor:.2f})", right, wrong)
    return out
