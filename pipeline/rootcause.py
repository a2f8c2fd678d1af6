"""The root-cause stage's work: the causes of one incident revision ranked by the one engine
(``models.rootcause.rank_causes``, also behind ``kubestack rca replay``, so a replay scores what the worker
decides), as hypotheses with the runbooks that match them, and remediation proposals built from the plugins'
actions. Pure: the Faust agent calls ``rank_incident_causes`` and publishes what it returns. (Running a target's
health checks now is another thing: ``kubestack diagnose``, ``agents.targets.check_target``, POST /diagnose.)

What the engine is given, from the incident:

- **symptom**: what clients felt (``symptom_signal``): the first symptom finding on a resource that calls where the
  incident opened, else the signal that opened it; its resource and metric (a finding's rule id);
- **onset**: when the incident opened;
- **priors**: every signal at its ``first_seen``, weighing ``causes.weight`` (a risky config change most, then a
  target down, findings by severity, forecasts, anomalies by score), citing its event id;
- **metric series** when the caller holds them (``series``: (resource, metric) -> points): columns of the
  table, and the detector's anomaly of such a column is then not also a prior;
- **calls**: the incident's links, source -> target (the source calls, replicates from or consumes from the
  target), but not a ``client`` seen by a server at its own host's address (any process there could be it); a
  resource sharing a host with the host itself depends on it, and the host calls nothing; other links without a
  direction (``same_host``, ``service``) go both ways: either may have affected the other.

Each ranked resource's *lead* signal (``causes.lead``) names its cause; confidence is its share of the scores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
from kubestack.models.rootcause import SIGNAL_STEP_S, Cause, Prior, Ranking, Symptom, rank_causes
from kubestack.models.rootcause_metrics import MetricTable
from kubestack.pipeline.causes import cause_of, evidence_kind, is_symptom, lead, metric_of, weight
from kubestack.pipeline.feedback import CauseVerdict, learned
from kubestack.pipeline.proposals import propose
from kubestack.plugins.base import ActionSpec

log = logging.getLogger(__name__)

MAX_HYPOTHESES = 5
UNDIRECTED = ("same_host", "service")
CLIENT = "client"
HOST_KIND = "host"

RunbookLookup = Callable[[list[str], str], list[str]]
"""(signal names: rule ids, metric names, log lines; middleware) -> runbook ids, best first."""
ActionLookup = Callable[[str], tuple[ActionSpec, ...]]
"""Resource kind -> the actions its plugin offers."""
Series = Mapping[tuple[str, str], Iterable[tuple[float, float]]]
"""(resource key, metric) -> (epoch seconds, value) points, as ``MetricTable.from_series`` takes them."""


@dataclass(frozen=True)
class RootCause:
    report: RcaReport
    proposals: list[RemediationProposal]
    top_cause: str
    """'<resource>|<cause>' of the first hypothesis: the stage narrates and proposes again when it changes."""


def rank_incident_causes(incident: Incident, source: Source, runbooks: RunbookLookup, actions: ActionLookup,
                         now: datetime, series: Series | None = None,
                         step: float = SIGNAL_STEP_S, verdicts: Iterable[CauseVerdict] = ()) -> RootCause | None:
    """The report and proposals for one revision of ``incident`` (stamped ``now``); None when it carries no
    signals. ``series``: metric points the caller holds, on a grid of ``step`` seconds (the agents' interval).
    ``verdicts``: operators' verdicts on past causes (``feedback.py``), a small prior for similar incidents."""
    if not incident.signals:
        return None
    ranking = rank_signals(incident, series, step, verdicts)
    columns = set(series or ())
    by_resource: dict[str, list[IncidentSignal]] = {}
    for signal in incident.signals:
        by_resource.setdefault(signal.resource, []).append(signal)
    causes = [c for c in ranking.causes if c.component in by_resource]   # a cause is named by a signal
    total = sum(c.score for c in causes) or 1.0
    kinds = {r.key: r.kind for r in incident.resources}
    hypotheses = []
    for rank, cause in enumerate(causes[:MAX_HYPOTHESES], start=1):
        signals = by_resource[cause.component]
        first = lead(signals)
        ordered = [first] + [s for s in signals if s is not first]
        cited = {p.ref for p in cause.priors} | {s.event_id for s in signals if _is_column(s, columns)}
        hypotheses.append(Hypothesis(
            rank=rank, component=cause.component, cause=cause_of(first), confidence=round(cause.score / total, 3),
            evidence_ids=[s.event_id for s in ordered if s.event_id in cited],
            runbooks=runbooks([_lookup_name(s) for s in ordered], _kind(cause.component, kinds))))
    report = RcaReport(source=source, resource=incident.resource, tenant=incident.tenant, ts=now,
                       event_id=f"{incident.event_id}-rca", incident_id=incident.incident_id,
                       hypotheses=hypotheses, narrative=_narrative(causes[0], hypotheses, by_resource),
                       narrator="rules")
    top = causes[0].component
    log.debug("incident %s: %s ranked first of %d resources (%.3f)", incident.incident_id, hypotheses[0].cause,
              len(causes), hypotheses[0].confidence)
    proposals = propose(incident, top, by_resource[top], actions(_kind(top, kinds)), source, now)
    return RootCause(report, proposals, f"{top}|{hypotheses[0].cause}")


def rank_signals(incident: Incident, series: Series | None = None, step: float = SIGNAL_STEP_S,
                 verdicts: Iterable[CauseVerdict] = ()) -> Ranking:
    """The engine's ranking of the incident's resources from everything it carries (and ``series``, if given)."""
    table = MetricTable.from_series(series, step) if series else None
    columns = set(series or ())
    opening = symptom_signal(incident)
    priors = [Prior(s.resource, evidence_kind(s), weight(s), s.summary, at=s.first_seen.timestamp(), ref=s.event_id)
              for s in incident.signals if not _is_column(s, columns)]
    return rank_causes(table, onset=incident.opened_at.timestamp(),
                       symptom=Symptom(opening.resource, metric_of(opening)), edges=call_edges(incident),
                       priors=priors, learned={component: (found.factor, found.note)
                                               for component, found in learned(incident, verdicts).items()})


def opening_signal(incident: Incident) -> IncidentSignal:
    """The signal that opened the incident: on its first resource, seen when it opened (held signals that joined
    later may be older)."""
    first = [s for s in incident.signals if s.resource == incident.resource.key] or incident.signals
    return next((s for s in first if s.first_seen == incident.opened_at), first[0])


def symptom_signal(incident: Incident) -> IncidentSignal:
    """What clients felt: the earliest signal its plugin declares a symptom (slow or failing requests), on a
    resource from which the opening one is reached along calls; else the opening signal. A cause's own finding
    (a lock wait, a target down) often opens the incident a round before the application suffering it reports."""
    opening = opening_signal(incident)
    callees: dict[str, set[str]] = {}
    for caller, callee in call_edges(incident):
        callees.setdefault(caller, set()).add(callee)

    def reaches(start: str) -> bool:
        seen, stack = {start}, [start]
        while stack:
            for nxt in callees.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return opening.resource in seen

    felt = [s for s in incident.signals if s.kind == SignalKind.FINDING and is_symptom(s.name) and reaches(s.resource)]
    return min(felt, key=lambda s: s.first_seen) if felt else opening


def call_edges(incident: Incident) -> list[tuple[str, str]]:
    """(caller, callee) pairs of the incident's links: a directed link as it is; a resource sharing a host with
    the host depends on the host, which calls nothing (a server's clients seen at the host's address are the
    processes running on it); another undirected link both ways."""
    kinds = {r.key: r.kind for r in incident.resources}
    edges = []
    places = {r.key: (r.host, r.cluster) for r in incident.resources if r.host}
    for link in incident.links:
        if kinds.get(link.source) == HOST_KIND and link.reason not in UNDIRECTED:
            continue
        if link.reason == CLIENT and link.source in places and places[link.source] == places.get(link.target):
            continue  # the target saw a client at its own host's address: any process there could be it
        if link.reason not in UNDIRECTED:
            edges.append((link.source, link.target))
        elif link.reason == "same_host" and HOST_KIND in (kinds.get(link.source), kinds.get(link.target)):
            host, other = (link.source, link.target) if kinds.get(link.source) == HOST_KIND else \
                (link.target, link.source)
            edges.append((other, host))
        else:
            edges += [(link.source, link.target), (link.target, link.source)]
    on_host = [(r.key, h.key) for h in incident.resources if h.kind == HOST_KIND for r in incident.resources
               if r.kind != HOST_KIND and r.host and (r.host, r.cluster) == (h.host, h.cluster)]
    return edges + [edge for edge in on_host if edge not in edges]


def _is_column(signal: IncidentSignal, columns: set[tuple[str, str]]) -> bool:
    return signal.kind == SignalKind.ANOMALY and "metric" in signal.details and \
        (signal.resource, metric_of(signal)) in columns


def _kind(key: str, kinds: dict[str, str]) -> str:
    return kinds.get(key, key.split("/")[2] if key.count("/") >= 3 else "unknown")


def _lookup_name(signal: IncidentSignal) -> str:
    if signal.kind == SignalKind.ANOMALY:
        if signal.details.get("metric"):
            return str(signal.details["metric"])
        if signal.details.get("line"):
            return str(signal.details["line"])
    if signal.kind == SignalKind.PREDICTION:
        return signal.name.split("{")[0]
    return cause_of(signal)


def _narrative(top: Cause, hypotheses: list[Hypothesis], by_resource: dict[str, list[IncidentSignal]]) -> str:
    first = hypotheses[0]
    summary = lead(by_resource[top.component]).summary.strip()
    text = [f"Most likely cause: {first.cause} on {top.component} (confidence {first.confidence:.0%})."]
    if summary:
        text.append(summary if summary.endswith((".", "!", "?")) else f"{summary}.")
    text += [f"{note[0].upper()}{note[1:]}." for note in top.notes]
    others = [f"{h.component} ({h.cause})" for h in hypotheses[1:3]]
    if others:
        text.append(f"Also considered: {', '.join(others)}.")
    if first.runbooks:
        text.append(f"Runbook: {first.runbooks[0]}.")
    return " ".join(text)
