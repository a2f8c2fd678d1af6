"""Ranking the components of an incident by how likely each is its root cause: the one engine behind
``kubestack rca replay`` and the worker's cause ranking. Pure and deterministic; every score carries its evidence.

It takes what a live incident has: the metric movements (``rootcause_metrics``), the onset, the symptom (the
alert that opened the incident: a component and one of its metrics), the call graph (caller -> callee), and
prior signals per component (config changes, health findings, log anomalies, forecasts) as weights.

1. **Anomaly of a component**: its strongest movement, ``log(1 + z)``, times the share of the baseline that
   metric covers, plus ``BREADTH`` of its strongest in another family (a fault shows on more than one front:
   an error injection also slows requests). A family is a measurement with its statistics (``latency_p99``,
   ``latency_Average``: ``latency``). With a symptom: the symptom's family on its own component is no evidence
   (it is why we are looking); the symptom's family is what travels between components, so other families count
   ``OTHER_FAMILY``; each movement weighs by how closely the symptom's metric followed it (a cause shapes its
   effect).
2. **Attribution** (with a symptom and a baseline long enough to learn from, ``rootcause_attribution``): up to
   ``1 + ATTRIBUTION`` for the share of the symptom's movement a component's movement accounts for, as the
   baseline saw the two move together.
3. **Along the call graph** (latency and errors travel from callee to caller; the walk of the literature from the
   symptom along callees, keeping the components that moved while their callees did not):
   - a component one of whose callees moved at least half as much, in the family that travels, is more likely
     that callee's *victim*: ``VICTIM``;
   - a component *explains* the anomalous components among its callers, transitively: the larger that share of
     all anomalous components, the more likely it is the cause, up to ``1 + EXPLAIN``;
   - with a symptom, a component the symptom cannot reach along callees cannot have caused it through calls:
     ``UNREACHABLE``.
4. **Priors** add their weights (a risky config change is the strongest: something changed, then things broke):
   a component's strongest, and ``BREADTH`` of its strongest of another kind (ten series of one full cache that
   a detector flagged are one story, not ten; a config change and the finding it caused are two).
5. **Earliest sustained change**: the first component whose movement held gets ``1 + EARLIEST``, one that
   followed ``EARLIEST_HALF_ROWS`` rows later half that bonus, and so on (effects follow causes; at a coarse
   sampling, components that moved in the same row stay level); a prior's time counts as a movement.
6. **Learned** (optional): a factor per component from operators' verdicts on the causes of similar past
   incidents (``pipeline.feedback``), with its note.

Settings chosen on the PetShop development issues and the synthetic cases of ``bench/rca`` side by side (a
setting had to hold on both).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from kubestack.models.rootcause_attribution import symptom_shares
from kubestack.models.rootcause_metrics import (MetricTable, Movement, find_onset, median_step, movements,
                                                split_rows)

OTHER_FAMILY = 0.5
ANOMALOUS = 0.5 * math.log1p(3.0)   # a component whose travelling anomaly reaches this counts as anomalous
VICTIM = 0.5
VICTIM_SHARE = 0.5
EXPLAIN = 1.0
UNREACHABLE = 0.5
EARLIEST = 0.5
EARLIEST_HALF_ROWS = 2.0
SIGNAL_STEP_S = 10.0    # the row, for timing, of an incident known only from signals: the agent's collection interval
ATTRIBUTION = 1.0
BREADTH = 0.5
EVIDENCE_SHOWN = 5
STATISTICS = {"average", "avg", "mean", "median", "min", "max", "sum", "count", "total", "last"}


@dataclass(frozen=True)
class Symptom:
    """The alert that opened the incident: a component and one of its metrics (a column of the table)."""

    component: str
    metric: str


@dataclass(frozen=True)
class Prior:
    """A signal other than a metric's movement that points at a component, as a weight on the scale of the
    movements (``log(1 + z)``: 2.0 is about as telling as a metric 6 scales off): a config change, a health
    finding, a log anomaly, a forecast. ``at``: when it was first seen (epoch seconds), if known; ``ref``: the
    caller's id for it (an event id), handed back on the cause it supports."""

    component: str
    kind: str
    weight: float
    note: str
    at: float | None = None
    ref: str = ""


@dataclass
class Cause:
    component: str
    score: float = 0.0
    evidence: list[Movement] = field(default_factory=list)
    priors: list[Prior] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    moved_at: float | None = None

    def as_dict(self) -> dict:
        notes = [p.note for p in self.priors] + self.notes
        return {"component": self.component, "score": round(self.score, 4),
                "evidence": [e.as_dict() for e in self.evidence[:EVIDENCE_SHOWN]] + [{"note": n} for n in notes]}


@dataclass(frozen=True)
class Ranking:
    onset: float
    onset_given: bool
    causes: list[Cause]    # most likely first


def rank_causes(metrics: MetricTable | None = None, *, onset: float | None = None, symptom: Symptom | None = None,
                edges: Iterable[tuple[str, str]] = (), priors: Iterable[Prior] = (),
                learned: Mapping[str, tuple[float, str]] | None = None) -> Ranking:
    """Every component of ``metrics`` and ``priors``, most likely root cause first. ``edges`` are (caller,
    callee); without ``metrics`` (a live incident known only from its signals) the priors, their times and the
    graph decide."""
    priors = list(priors)
    metrics = metrics if metrics is not None else MetricTable(np.empty(0), [], np.empty((0, 0)))
    given = onset is not None
    if onset is None:
        onset = find_onset(metrics) if len(metrics.timestamps) else min(
            (p.at for p in priors if p.at is not None), default=0.0)
    # a symptom whose metric is not in the table still anchors the walk along calls, but gives no shape to match,
    # no family to follow and nothing to exclude
    measured = symptom if symptom and metrics.column(symptom.component, symptom.metric) is not None else None
    moves = movements(metrics, onset, metrics.column(measured.component, measured.metric) if measured else None) \
        if len(metrics.timestamps) else []
    causes = {c: Cause(c) for c in metrics.components}
    for prior in priors:
        causes.setdefault(prior.component, Cause(prior.component)).priors.append(prior)
    base, travelling = _anomaly(causes, moves, measured)
    for name, cause in causes.items():
        cause.score = base[name]
    edges = list(edges)
    if measured is not None:
        _attribution(causes, metrics, onset, measured, edges)
    if edges:
        _graph(causes, edges, travelling, symptom)
    stamps = metrics.timestamps
    _earliest(causes, median_step(stamps) if len(stamps) > 1 else SIGNAL_STEP_S)
    for name, (factor, note) in (learned or {}).items():  # operators' verdicts on similar incidents (feedback.py)
        if name in causes:
            causes[name].score *= factor
            causes[name].notes.append(note)
    ranked = sorted(causes.values(), key=lambda c: (-c.score, c.component))
    return Ranking(onset, given, ranked)


def _anomaly(causes: dict[str, Cause], moves: list[Movement],
             symptom: Symptom | None) -> tuple[dict[str, float], dict[str, float]]:
    """(anomaly per component with its priors; the anomaly in the symptom's family, which travels)."""
    family = _family(symptom.metric) if symptom else None
    best = {name: 0.0 for name in causes}
    travelling: dict[str, float | None] = {name: None for name in causes}
    weighed: dict[str, list[tuple[float, Movement]]] = {name: [] for name in causes}
    for move in moves:
        same_family = family is not None and _family(move.metric) == family
        if symptom and same_family and move.component == symptom.component:
            continue
        score = math.log1p(move.z) * move.coverage
        if symptom and not same_family:
            score *= OTHER_FAMILY
        if move.tracking is not None:
            score *= move.tracking
        weighed[move.component].append((score, move))
        best[move.component] = max(best[move.component], score)
        if same_family:
            travelling[move.component] = max(travelling[move.component] or 0.0, score)
    base, travels = {}, {}
    for name, cause in causes.items():
        weighed[name].sort(key=lambda pair: (-pair[0], pair[1].metric))
        cause.evidence = [move for _, move in weighed[name]]
        if weighed[name]:
            lead = _family(cause.evidence[0].metric)
            best[name] += BREADTH * max((s for s, m in weighed[name] if _family(m.metric) != lead), default=0.0)
        moved = [m.moved_at for m in cause.evidence if m.moved_at is not None]
        moved += [p.at for p in cause.priors if p.at is not None]
        cause.moved_at = min(moved) if moved else None
        pushed = _pushed(cause.priors)
        base[name] = best[name] + pushed
        own = travelling[name] if travelling[name] is not None else (
            best[name] * OTHER_FAMILY if symptom else best[name])
        travels[name] = own + pushed
    return base, travels


def _pushed(priors: list[Prior]) -> float:
    """The strongest prior, and BREADTH of the strongest of another kind."""
    if not priors:
        return 0.0
    first = max(priors, key=lambda p: p.weight)
    other = max((p.weight for p in priors if p.kind != first.kind), default=0.0)
    return max(first.weight, 0.0) + BREADTH * max(other, 0.0)


def _attribution(causes: dict[str, Cause], metrics: MetricTable, onset: float, symptom: Symptom,
                 edges: list[tuple[str, str]]) -> None:
    """Up to ``1 + ATTRIBUTION`` for the share of the symptom's movement a component's own movement accounts for
    (its callees' only, when the call graph is known)."""
    callees: dict[str, set[str]] = {}
    for caller, callee in edges:
        callees.setdefault(caller, set()).add(callee)
    allowed = _closure(symptom.component, callees) if edges else set(causes) - {symptom.component}
    candidates = {name: j for name in sorted(allowed)
                  if (j := metrics.column(name, symptom.metric)) is not None}
    after = split_rows(metrics.timestamps, onset)
    shares = symptom_shares(metrics.values, after, metrics.column(symptom.component, symptom.metric), candidates)
    for name, share in shares.items():
        if share > 0 and name in causes:
            causes[name].score *= 1.0 + ATTRIBUTION * share
            causes[name].notes.append(f"accounts for {share:.0%} of the symptom's movement "
                                      f"({symptom.metric}, as the baseline saw them move together)")


def _family(metric: str) -> str:
    """``latency_p99``, ``latency_Average`` -> ``latency``: the statistics of one measurement are one family;
    a name without a statistic is its own family (``error_rate``, ``used_memory``)."""
    stem, _, last = metric.rpartition("_")
    last = last.lower()
    return stem if stem and (last in STATISTICS or (last[:1] == "p" and last[1:].isdigit())) else metric


def _graph(causes: dict[str, Cause], edges: list[tuple[str, str]], travelling: dict[str, float],
           symptom: Symptom | None) -> None:
    callees: dict[str, set[str]] = {}
    callers: dict[str, set[str]] = {}
    for caller, callee in edges:
        callees.setdefault(caller, set()).add(callee)
        callers.setdefault(callee, set()).add(caller)
    anomalous = {name for name, value in travelling.items() if value >= ANOMALOUS}
    if symptom is not None:
        anomalous.add(symptom.component)
    reach = _closure(symptom.component, callees) | {symptom.component} if symptom else None
    for name, cause in causes.items():
        victim_of = sorted(d for d in callees.get(name, ()) if d in anomalous and d != name
                           and travelling.get(d, 0.0) >= VICTIM_SHARE * travelling.get(name, 0.0))
        if victim_of:
            cause.score *= VICTIM
            cause.notes.append(f"calls {', '.join(victim_of[:3])}, which moved as much")
        explained = sorted((_closure(name, callers) & anomalous) - {name})
        if explained and anomalous:
            cause.score *= 1.0 + EXPLAIN * len(explained) / len(anomalous)
            cause.notes.append(f"explains {len(explained)} of {len(anomalous)} anomalous components upstream "
                               f"({', '.join(explained[:3])})")
        if reach is not None and name not in reach:
            cause.score *= UNREACHABLE
            cause.notes.append(f"not reachable from the symptom {symptom.component} along calls")


def _closure(start: str, step: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in step.get(stack.pop(), ()):
            if nxt not in seen and nxt != start:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _earliest(causes: dict[str, Cause], step: float) -> None:
    """Up to ``1 + EARLIEST`` for the first to move, halving every EARLIEST_HALF_ROWS rows after it."""
    moved = [c for c in causes.values() if c.moved_at is not None and c.score > 0]
    if len(moved) < 2 or step <= 0:
        return
    first = min(c.moved_at for c in moved)
    for cause in moved:
        cause.score *= 1.0 + EARLIEST * 0.5 ** ((cause.moved_at - first) / (EARLIEST_HALF_ROWS * step))
