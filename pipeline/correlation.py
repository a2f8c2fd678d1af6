"""Correlation: many signals (anomalies, health findings) become few incidents.

A signal joins an open incident when its resource is related to one of the incident's resources (same host,
same ``service`` label, an explicit ``depends_on`` label, a direct link of the learned dependency graph, or the
very same resource) and it arrives within
``window`` of the incident's last signal. Otherwise it opens a new incident. Repeats of a signal already in an
incident only refresh it (that is the noise reduction). Incidents resolve when their findings clear and no
signal came for ``quiet``. A signal of one of its resources within ``reopen`` of the resolution reopens it
(same id, next revision): a finding that flaps, or the evidence that follows a recovery (the slowlog entry of
the command that stalled a server), stays one incident. Incident ids are derived from the signals that opened them, so a worker that
re-reads the same signals after a restart produces the same ids.

Pure: no Faust here. ``Correlator`` state is a JSON-able dict for a Faust table.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import (
    Anomaly,
    HealthReport,
    Incident,
    IncidentLink,
    IncidentSignal,
    IncidentStatus,
    PeerRole,
    Prediction,
    PredictionStatus,
    Severity,
)
from kubestack.pipeline.topology import Topology

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
MAX_MEMBERS = 500
MAX_LINKED_RESOURCES = 30
MAX_PENDING = 200
MAX_RESOLVED_KEPT = 50
METRIC_DETECTOR = "metric/"
EVIDENCE_DETAILS = ("evidence", "changes", "metric", "labels", "template", "line", "detail")
"""What an anomaly's details may carry into its incident (small: the before/after of a config change, a log line)."""


@dataclass(frozen=True)
class Signal:
    event_id: str
    resource: ResourceRef
    ts: datetime
    severity: Severity
    kind: str  # "finding" (a health rule: clears when the next report lacks it), "anomaly", or "prediction"
    name: str   # (an exhaustion notice: clears when withdrawn)
    summary: str
    score: float | None = None
    details: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        return f"{self.resource.key}#{self.kind}:{self.name}"


def finding_key(resource: ResourceRef, rule_id: str) -> str:
    return f"{resource.key}#finding:{rule_id}"


def signals_from_anomaly(event: Anomaly) -> list[Signal]:
    summary = event.details.get("message") or f"{event.detector}: {event.signal} unusual (score {event.score:.2f})"
    details = {k: v for k, v in (("value", event.value), ("expected", event.expected)) if v is not None}
    details.update({k: event.details[k] for k in EVIDENCE_DETAILS if k in event.details})
    return [Signal(event.event_id, event.resource, event.ts, event.severity, "anomaly",
                   f"{event.detector}:{event.signal}", str(summary)[:300], event.score, details)]


def signals_from_prediction(event: Prediction) -> list[Signal]:
    """An active or updated exhaustion notice (a withdrawn one clears its signal: ``Correlator.withdraw``)."""
    if event.status == PredictionStatus.WITHDRAWN or event.exhaustion_at is None:
        return []
    return [Signal(event.event_id, event.resource, event.ts, event.severity, "prediction", event.signal,
                   runs_out(event), event.confidence,
                   {"exhaustion_at": event.exhaustion_at.isoformat(), "capacity": event.capacity,
                    "lower_bound": event.exhaustion_lower_bound.isoformat() if event.exhaustion_lower_bound else None,
                    "model": event.model})]


def runs_out(event: Prediction) -> str:
    """'redis_used_memory_bytes runs out in ~9 h (early bound 6 h)': what an incident says of a prediction."""
    text = f"{event.signal} runs out in ~{_span(event.exhaustion_at - event.ts)}"
    if event.exhaustion_lower_bound is not None and event.exhaustion_lower_bound < event.exhaustion_at:
        text += f" (early bound {_span(event.exhaustion_lower_bound - event.ts)})"
    return text


def _span(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def signals_from_health(report: HealthReport) -> list[Signal]:
    return [Signal(f"{report.event_id}:{f.rule_id}", report.resource, report.ts, f.severity, "finding", f.rule_id,
                   f.message, None, {"evidence": f.evidence, "query": f.query} if f.evidence or f.query else {})
            for f in report.findings if f.severity != Severity.INFO]


def related(a: ResourceRef, b: ResourceRef, topology: Topology | None = None) -> bool:
    """Configuration says so (same host, ``service``, ``depends_on``) or, given a topology, observed connections
    do (direct neighbours only)."""
    return a.key == b.key or relation(a, b, topology) is not None


def relation(a: ResourceRef, b: ResourceRef, topology: Topology | None = None) -> tuple[str, str, str] | None:
    """``(source, target, reason)`` when ``a`` and ``b`` are related, the source depending on (calling,
    replicating from, consuming from) the target where the relation has a direction; None otherwise. Observed
    connections come first: they say who calls whom."""
    if topology is not None:
        for reporter, other in ((a, b), (b, a)):
            role = topology.observed_role(reporter, other)
            if role is not None:
                calls_reporter = role in (PeerRole.CLIENT, PeerRole.REPLICA, PeerRole.CONSUMER_GROUP)
                pair = (other.key, reporter.key) if calls_reporter else (reporter.key, other.key)
                return (*pair, role.value)
    if _depends(a, b) or _depends(b, a):
        source, target = (a, b) if _depends(a, b) else (b, a)
        return source.key, target.key, "depends_on"
    if a.host and a.host == b.host and a.cluster == b.cluster:
        return a.key, b.key, "same_host"
    service = a.labels.get("service")
    if service and service == b.labels.get("service"):
        return a.key, b.key, "service"
    return None


def _depends(a: ResourceRef, b: ResourceRef) -> bool:
    wanted = {name.strip() for name in a.labels.get("depends_on", "").split(",") if name.strip()}
    return bool(wanted & {b.name, f"{b.kind}/{b.name}", b.key})


@dataclass
class OpenIncident:
    incident_id: str
    tenant: str
    title: str
    severity: str
    opened_at: str
    last_signal_at: str
    resources: dict[str, dict] = field(default_factory=dict)       # resource key -> ResourceRef json
    active: dict[str, str] = field(default_factory=dict)           # signal key -> last seen (ISO)
    members: list[str] = field(default_factory=list)
    signals_in: int = 0
    revision: int = 0
    notes: dict[str, str] = field(default_factory=dict)            # prediction signal key -> "runs out in ..."
    signals: dict[str, dict] = field(default_factory=dict)         # signal key -> IncidentSignal json


class Correlator:
    def __init__(self, tenant: str, window: timedelta = timedelta(minutes=10),
                 quiet: timedelta = timedelta(minutes=15), state: dict | None = None,
                 topology_max_age: timedelta = timedelta(days=1), alone_score: float = 0.9,
                 reopen: timedelta = timedelta(minutes=2)) -> None:
        self.tenant = tenant
        self.window = window
        self.quiet = quiet
        self.reopen = reopen
        self.resolved: dict[str, dict] = (state or {}).get("resolved", {})  # id -> {"at": ISO, "incident": ...}
        self.topology = Topology(topology_max_age, (state or {}).get("topology"))
        self.open: dict[str, OpenIncident] = {
            k: OpenIncident(**v) for k, v in (state or {}).get("open", {}).items()}
        self.pending: list[dict] = (state or {}).get("pending", [])  # metric anomalies waiting for company
        self.alone_score = alone_score
        self.signals_in = (state or {}).get("signals_in", 0)
        self.incidents_out = (state or {}).get("incidents_out", 0)

    def to_state(self) -> dict:
        return {"open": {k: asdict(v) for k, v in self.open.items()}, "signals_in": self.signals_in,
                "incidents_out": self.incidents_out, "topology": self.topology.to_state(), "pending": self.pending,
                "resolved": self.resolved}

    # --- signals in ------------------------------------------------------------------------------

    def learn(self, report: HealthReport) -> None:
        """Take in a health report's observed connections (every report, before its findings are added, so that
        they already correlate along the links it reveals)."""
        self.topology.learn(report)

    def add(self, signal: Signal, source: Source) -> list[Incident]:
        """The incident events ``signal`` causes. A metric anomaly short of ``alone_score`` opens no incident on
        its own: it waits (for ``window``) until another signal of the same resource, or any other signal of a
        related one, comes; a lone wobble of one series is not worth a page, two things going wrong together
        are."""
        self.signals_in += 1
        incident = self._match(signal)
        if incident is None:
            if self._needs_company(signal) and not self._company(signal):
                self._hold(signal)
                return []
            incident = self._open(signal)
            changed = True
        else:
            changed = self._join(incident, signal)
        self._absorb_pending(incident, signal.ts)
        incident.signals_in += 1
        incident.last_signal_at = max(incident.last_signal_at, signal.ts.isoformat())
        return [self._event(incident, source)] if changed else []

    def _needs_company(self, signal: Signal) -> bool:
        return signal.kind == "anomaly" and signal.name.startswith(METRIC_DETECTOR) and \
            (signal.score or 0.0) < self.alone_score

    def _company(self, signal: Signal) -> bool:
        """Another held signal that makes ``signal`` worth an incident: a different series of the same resource."""
        self._prune_pending(signal.ts)
        return any(held["key"] != signal.key and held["resource_key"] == signal.resource.key for held in self.pending)

    def _hold(self, signal: Signal) -> None:
        self.pending = [h for h in self.pending if h["key"] != signal.key][-(MAX_PENDING - 1):]
        self.pending.append({"key": signal.key, "resource_key": signal.resource.key,
                             "resource": signal.resource.model_dump(mode="json"),
                             "signal": [signal.event_id, signal.ts.isoformat(), signal.severity.value, signal.kind,
                                        signal.name, signal.summary, signal.score, signal.details]})

    def _prune_pending(self, now: datetime) -> None:
        self.pending = [h for h in self.pending if now - datetime.fromisoformat(h["signal"][1]) <= self.window]

    def _absorb_pending(self, incident: OpenIncident, now: datetime) -> None:
        """Held signals of the incident's resources (or related ones) join it: they were early evidence."""
        self._prune_pending(now)
        keep = []
        for held in self.pending:
            resource = ResourceRef.model_validate(held["resource"])
            if any(related(resource, ResourceRef.model_validate(r), self.topology) for r in incident.resources.values()):
                event_id, ts, severity, kind, name, summary, score, details = held["signal"]
                self._join(incident, Signal(event_id, resource, datetime.fromisoformat(ts), Severity(severity), kind,
                                            name, summary, score, details))
                incident.signals_in += 1
            else:
                keep.append(held)
        self.pending = keep

    def clear(self, report: HealthReport, source: Source) -> list[Incident]:
        """Findings a health report no longer has are cleared (only among the rules it speaks for, when it
        names them), and an incident whose signals have all cleared is resolved."""
        still = {finding_key(report.resource, f.rule_id) for f in report.findings if f.severity != Severity.INFO}
        prefix = f"{report.resource.key}#finding:"
        covered = {finding_key(report.resource, rule) for rule in report.rules_checked}
        out = []
        for incident in list(self.open.values()):
            gone = [k for k in incident.active if k.startswith(prefix) and k not in still
                    and (not covered or k in covered)]
            for key in gone:
                del incident.active[key]
            if gone and not incident.active:
                out.append(self._resolve(incident, source, "every finding cleared", report.ts))
        return out

    def withdraw(self, prediction: Prediction, source: Source) -> list[Incident]:
        """A withdrawn exhaustion notice clears its signal; an incident left with none resolves."""
        key = f"{prediction.resource.key}#prediction:{prediction.signal}"
        out = []
        for incident in list(self.open.values()):
            if key in incident.active:
                del incident.active[key]
                incident.notes.pop(key, None)
                if not incident.active:
                    out.append(self._resolve(incident, source, "the exhaustion forecast no longer holds", prediction.ts))
        return out

    def expire(self, now: datetime, source: Source) -> list[Incident]:
        """Resolve incidents with no signal for ``quiet`` (called from a timer). An exhaustion notice is a state,
        not a burst: an incident holding one stays open until the notice is withdrawn."""
        out = []
        for incident in list(self.open.values()):
            if incident.notes:
                continue
            if now - datetime.fromisoformat(incident.last_signal_at) >= self.quiet:
                out.append(self._resolve(incident, source, f"no signal for {self.quiet}", now))
        return out

    # --- incidents ------------------------------------------------------------------------------

    def _match(self, signal: Signal) -> OpenIncident | None:
        for incident in self.open.values():  # the same signal still active (a standing forecast): its incident
            if signal.key in incident.active:
                return incident
        for incident in self.open.values():
            last = datetime.fromisoformat(incident.last_signal_at)
            if signal.ts - last > self.window:
                continue
            if any(related(signal.resource, ResourceRef.model_validate(r), self.topology)
                   for r in incident.resources.values()):
                return incident
        return self._reopened(signal)

    def _reopened(self, signal: Signal) -> OpenIncident | None:
        """A recently resolved incident of the signal's very resource, back among the open ones."""
        self.resolved = {k: v for k, v in self.resolved.items()
                         if -self.window <= signal.ts - datetime.fromisoformat(v["at"]) <= self.reopen}
        for incident_id, entry in sorted(self.resolved.items(), key=lambda kv: kv[1]["at"], reverse=True):
            if signal.resource.key in entry["incident"]["resources"]:
                del self.resolved[incident_id]
                incident = OpenIncident(**entry["incident"])
                self.open[incident_id] = incident
                return incident
        return None

    def _open(self, signal: Signal) -> OpenIncident:
        digest = hashlib.sha256(f"{self.tenant}|{signal.key}|{signal.event_id}".encode()).hexdigest()[:20]
        incident = OpenIncident(
            incident_id=f"inc-{digest}", tenant=self.tenant,
            title=f"{signal.name}{' will run out' if signal.kind == 'prediction' else ''} on "
                  f"{signal.resource.kind}/{signal.resource.name}",
            severity=signal.severity.value, opened_at=signal.ts.isoformat(), last_signal_at=signal.ts.isoformat(),
            resources={signal.resource.key: signal.resource.model_dump(mode="json")},
            active={signal.key: signal.ts.isoformat()}, members=[signal.event_id],
            notes={signal.key: signal.summary} if signal.kind == "prediction" else {})
        _record(incident, signal)
        self.open[incident.incident_id] = incident
        return incident

    def _join(self, incident: OpenIncident, signal: Signal) -> bool:
        """Add ``signal``; True when the incident changed in a way worth telling (new signal or worse)."""
        new_signal = signal.key not in incident.active
        incident.active[signal.key] = signal.ts.isoformat()
        worse = _RANK[signal.severity] > _RANK[Severity(incident.severity)]
        if worse:
            incident.severity = signal.severity.value
        if new_signal and len(incident.members) < MAX_MEMBERS:
            incident.members.append(signal.event_id)
            incident.resources.setdefault(signal.resource.key, signal.resource.model_dump(mode="json"))
        moved = signal.kind == "prediction" and incident.notes.get(signal.key) != signal.summary
        if signal.kind == "prediction":
            incident.notes[signal.key] = signal.summary
        _record(incident, signal)
        return new_signal or worse or moved

    def _resolve(self, incident: OpenIncident, source: Source, why: str, at: datetime) -> Incident:
        del self.open[incident.incident_id]
        event = self._event(incident, source, IncidentStatus.RESOLVED, why)
        if self.reopen > timedelta(0):  # kept in the state the stage rewrites per signal: only what can reopen
            self.resolved = {k: v for k, v in self.resolved.items()
                             if at - datetime.fromisoformat(v["at"]) <= self.reopen}
            self.resolved[incident.incident_id] = {"at": at.isoformat(), "incident": asdict(incident)}
            while len(self.resolved) > MAX_RESOLVED_KEPT:
                del self.resolved[min(self.resolved, key=lambda k: self.resolved[k]["at"])]
        return event

    def _event(self, incident: OpenIncident, source: Source, status: IncidentStatus | None = None,
               note: str = "") -> Incident:
        incident.revision += 1
        self.incidents_out += incident.revision == 1
        first = next(iter(incident.resources.values()))
        status = status or (IncidentStatus.OPEN if incident.revision == 1 else IncidentStatus.UPDATED)
        signals = ", ".join(k.split("#", 1)[1].split(":", 1)[1] for k in incident.active) or "cleared"
        if incident.notes:
            signals += "; " + "; ".join(incident.notes.values())
        return Incident(
            event_id=f"{incident.incident_id}-r{incident.revision}", source=source,
            resource=ResourceRef.model_validate(first), tenant=self.tenant, ts=datetime.now(timezone.utc),
            incident_id=incident.incident_id, title=incident.title, status=status,
            severity=Severity(incident.severity), opened_at=datetime.fromisoformat(incident.opened_at),
            resources=[ResourceRef.model_validate(r) for r in incident.resources.values()],
            member_event_ids=incident.members or ["-"],
            summary=f"{len(incident.resources)} resource(s), {incident.signals_in} signal(s): {signals}"
                    + (f"; resolved: {note}" if note else ""),
            signals=[IncidentSignal.model_validate(v) for v in incident.signals.values()],
            links=self._links(incident),
        )

    def _links(self, incident: OpenIncident) -> list[IncidentLink]:
        refs = [ResourceRef.model_validate(r) for r in list(incident.resources.values())[:MAX_LINKED_RESOURCES]]
        links = []
        for i, a in enumerate(refs):
            for b in refs[i + 1:]:
                found = relation(a, b, self.topology)
                if found is not None:
                    links.append(IncidentLink(source=found[0], target=found[1], reason=found[2]))
        return links


def _record(incident: OpenIncident, signal: Signal) -> None:
    """Keep what the incident tells of ``signal``: when first and last seen, how bad, its evidence."""
    seen = incident.signals.get(signal.key)
    if seen is None:
        if len(incident.signals) >= MAX_MEMBERS:
            return
        incident.signals[signal.key] = IncidentSignal(
            event_id=signal.event_id, kind=signal.kind, name=signal.name, resource=signal.resource.key,
            first_seen=signal.ts, last_seen=signal.ts, severity=signal.severity, summary=signal.summary,
            score=signal.score, details=signal.details).model_dump(mode="json")
        incident.signals[signal.key]["first_seen"] = incident.signals[signal.key]["last_seen"] = signal.ts.isoformat()
        return
    seen["last_seen"] = max(seen["last_seen"], signal.ts.isoformat())
    if _RANK[signal.severity] > _RANK[Severity(seen["severity"])]:
        seen["severity"] = signal.severity.value
    if signal.score is not None and (seen["score"] is None or signal.score > seen["score"]):
        seen["score"] = signal.score
    if signal.kind == "prediction":
        seen["summary"], seen["details"] = signal.summary, signal.details
