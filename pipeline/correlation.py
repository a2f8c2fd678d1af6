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

Pure: no Faust here. ``Correlator`` state is a JSON-able dict; ``state_records`` splits it into table records
(the tenant's index, its learned graph, one record per incident) and ``load_state`` joins them again, so that a
signal rewrites only what it changed and no record grows with the tenant.

Everything is bounded, because one record past Kafka's message size stops the worker for every tenant: a
signal's evidence (``EVIDENCE_MAX_BYTES``, cut where it enters), the signals an incident keeps with their evidence
(``MAX_SIGNALS``), its tracked signals and members (``MAX_MEMBERS``), a tenant's open incidents (``MAX_OPEN``: past
it, the signals that would open another join the tenant's overflow incident, which says so), and any record the
stage writes (``fit_record`` trims one past ``STATE_RECORD_MAX_BYTES``, oldest evidence first, and says what it cut).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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

log = logging.getLogger(__name__)

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
MAX_MEMBERS = 500
MAX_SIGNALS = 200
"""Signals an incident keeps with their evidence (it still counts and tracks up to ``MAX_MEMBERS``)."""
MAX_OPEN = 500
"""Open incidents per tenant; past it, what would open another joins the tenant's overflow incident."""
EVIDENCE_MAX_BYTES = 1024
"""A signal's evidence, as JSON, at most: longer texts and lists are cut, what still does not fit is named."""
SUMMARY_MAX = 300
STATE_RECORD_MAX_BYTES = 512 * 1024
"""Largest table record the stage writes (Kafka refuses messages over 1 MB by default)."""
_TEXT_MAX = 512
_ITEMS_MAX = 20
_DEPTH_MAX = 4
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
                   f"{event.detector}:{event.signal}", str(summary)[:SUMMARY_MAX], event.score, bounded(details))]


def signals_from_prediction(event: Prediction) -> list[Signal]:
    """An active or updated exhaustion notice (a withdrawn one clears its signal: ``Correlator.withdraw``)."""
    if event.status == PredictionStatus.WITHDRAWN or event.exhaustion_at is None:
        return []
    return [Signal(event.event_id, event.resource, event.ts, event.severity, "prediction", event.signal,
                   runs_out(event), event.confidence,
                   {"exhaustion_at": event.exhaustion_at.isoformat(), "capacity": event.capacity,
                    "lower_bound": event.exhaustion_lower_bound.isoformat() if event.exhaustion_lower_bound else None,
                    "model": event.model} | ({"evidence": event.labels | {"capacity": event.capacity}}
                                             if event.labels else {}))]


def runs_out(event: Prediction) -> str:
    """'redis_used_memory_bytes runs out in ~9 h (early bound 6 h)': what an incident says of a prediction."""
    what = event.outcome or f"{event.signal} runs out"
    text = f"{what} in ~{_span(event.exhaustion_at - event.ts)}"
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
                   f.message[:SUMMARY_MAX], None,
                   bounded({"evidence": f.evidence, "query": f.query}) if f.evidence or f.query else {})
            for f in report.findings if f.severity != Severity.INFO]


def _json_size(value: object) -> int:
    return len(json.dumps(value, default=str, ensure_ascii=False))


def _shortened(value: object, depth: int = 0) -> object:
    """``value`` with long texts and lists cut, and what nests deeper than ``_DEPTH_MAX`` turned to short text."""
    if isinstance(value, str):
        return value if len(value) <= _TEXT_MAX else f"{value[:_TEXT_MAX]}... (+{len(value) - _TEXT_MAX} chars)"
    if isinstance(value, dict | list) and depth >= _DEPTH_MAX:
        return _shortened(json.dumps(value, default=str), depth)
    if isinstance(value, dict):
        items = list(value.items())
        kept = {str(k): _shortened(v, depth + 1) for k, v in items[:_ITEMS_MAX]}
        return kept | ({"...": f"+{len(items) - _ITEMS_MAX} more"} if len(items) > _ITEMS_MAX else {})
    if isinstance(value, list):
        return [_shortened(v, depth + 1) for v in value[:_ITEMS_MAX]] + \
            ([f"... +{len(value) - _ITEMS_MAX} more"] if len(value) > _ITEMS_MAX else [])
    return value


def bounded(details: dict, budget: int = EVIDENCE_MAX_BYTES) -> dict:
    """``details`` within ``budget`` bytes of JSON: as they are when they fit; else with long texts and lists cut,
    then, key by key (nested evidence too), what fits, and the names of what did not under ``truncated``."""
    if _json_size(details) <= budget:
        return details
    return _fit_keys(_shortened(details), budget)


def _fit_keys(details: dict, budget: int) -> dict:
    """The smallest values first (a pid, a setting), then a nested dict cut to what is left; in their order."""
    sizes = {key: _json_size({key: value}) for key, value in details.items()}
    kept: dict = {}
    left_out: list[str] = []
    used = 2 + 40  # braces, and room for the list of what was left out
    for key in sorted(details, key=sizes.__getitem__):
        value = details[key]
        if used + sizes[key] <= budget:
            kept[key] = value
            used += sizes[key]
        elif isinstance(value, dict) and budget - used > 80:
            kept[key] = _fit_keys(value, budget - used - len(key) - 6)
            used += _json_size({key: kept[key]})
        else:
            left_out.append(key)
    ordered = {key: kept[key] for key in details if key in kept}
    return ordered | ({"truncated": left_out[:10]} if left_out else {})


def related(a: ResourceRef, b: ResourceRef, topology: Topology | None = None) -> bool:
    """Configuration says so (same host, ``service``, ``depends_on``) or, given a topology, observed connections
    do (direct neighbours only)."""
    return a.key == b.key or relation(a, b, topology) is not None


def relation(a: ResourceRef, b: ResourceRef, topology: Topology | None = None) -> tuple[str, str, str] | None:
    """``(source, target, reason)`` when ``a`` and ``b`` are related, the source depending on (calling,
    replicating from, consuming from) the target where the relation has a direction; None otherwise. Observed
    connections come first: they say who calls whom."""
    if topology is not None:
        seen = [(reporter, other, role) for reporter, other in ((a, b), (b, a))
                if (role := topology.observed_role(reporter, other)) is not None]
        # a caller's own view of its server names that server; a client seen at an address may be any process there
        for reporter, other, role in sorted(seen, key=lambda found: found[2] == PeerRole.CLIENT):
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


_INCIDENT_FIELDS = tuple(OpenIncident.__dataclass_fields__)


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
        self.touched: set[str] = set(self.open) | set(self.resolved) if (state or {}).get("unsplit") else set()
        """Incidents changed since the state was loaded: the records the stage must write (every one, for a state
        written whole before it was split)."""

    def to_state(self) -> dict:
        """The state as JSON-able dicts; the incidents' are shallow (``asdict`` deep-copied every evidence per
        signal, most of the stage's time for a busy tenant)."""
        return {"open": {k: _fields(v) for k, v in self.open.items()}, "signals_in": self.signals_in,
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
        incident = self._match(signal)
        if incident is not None and signal.event_id in incident.members:
            # the same signal again: its record was read twice (a worker stopped after its state reached the
            # changelog, before its offset was committed, perhaps before the revision it caused was sent). The
            # state already holds it: the incident's latest revision goes out again, the very same event, which
            # consumers that drop repeats by event_id see once; nothing is counted twice.
            return [self._build(incident, source)]
        self.signals_in += 1
        if incident is None:
            if self._needs_company(signal) and not self._company(signal):
                self._hold(signal)
                return []
            if len(self.open) >= MAX_OPEN:
                incident = self._overflow(signal)
                changed = self._join(incident, signal)
            else:
                incident = self._open(signal)
                changed = True
        else:
            changed = self._join(incident, signal)
        self.touched.add(incident.incident_id)
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
            if gone:
                self.touched.add(incident.incident_id)
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
                self.touched.add(incident.incident_id)
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
                self.touched.add(incident_id)
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

    def _overflow(self, signal: Signal) -> OpenIncident:
        """The tenant's overflow incident, opened by the first signal past ``MAX_OPEN`` open incidents: it gathers
        what would have opened more, and says why."""
        incident_id = "inc-overflow-" + hashlib.sha256(self.tenant.encode()).hexdigest()[:13]
        incident = self.open.get(incident_id)
        if incident is None:
            log.error("tenant %s has %d open incidents (the most kept): signals that would open more join %s",
                      self.tenant, len(self.open), incident_id)
            incident = self._open(signal)
            del self.open[incident.incident_id]
            incident.incident_id = incident_id
            incident.title = f"more than {MAX_OPEN} open incidents in tenant {self.tenant}: further signals gathered"
            self.open[incident_id] = incident
        return incident

    def _join(self, incident: OpenIncident, signal: Signal) -> bool:
        """Add ``signal``; True when the incident changed in a way worth telling (new signal or worse)."""
        new_signal = signal.key not in incident.active
        if new_signal and len(incident.active) >= MAX_MEMBERS:  # counted (signals_in), not tracked
            return False
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
        self.touched.add(incident.incident_id)
        event = self._event(incident, source, IncidentStatus.RESOLVED, why)
        if self.reopen > timedelta(0):  # kept in the state the stage rewrites per signal: only what can reopen
            self.resolved = {k: v for k, v in self.resolved.items()
                             if at - datetime.fromisoformat(v["at"]) <= self.reopen}
            self.resolved[incident.incident_id] = {"at": at.isoformat(), "incident": _fields(incident)}
            while len(self.resolved) > MAX_RESOLVED_KEPT:
                del self.resolved[min(self.resolved, key=lambda k: self.resolved[k]["at"])]
        return event

    def _event(self, incident: OpenIncident, source: Source, status: IncidentStatus | None = None,
               note: str = "") -> Incident:
        """The incident's next revision."""
        incident.revision += 1
        self.touched.add(incident.incident_id)
        self.incidents_out += incident.revision == 1
        return self._build(incident, source, status, note)

    def _build(self, incident: OpenIncident, source: Source, status: IncidentStatus | None = None,
               note: str = "") -> Incident:
        """The event of the incident's current revision, from its state alone (so built again, it is the same)."""
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


def _fields(incident: OpenIncident) -> dict:
    return {name: getattr(incident, name) for name in _INCIDENT_FIELDS}


def _record(incident: OpenIncident, signal: Signal) -> None:
    """Keep what the incident tells of ``signal``: when first and last seen, how bad, its evidence."""
    seen = incident.signals.get(signal.key)
    if seen is None:
        if len(incident.signals) >= MAX_SIGNALS:
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


# --- table records: a tenant's state split so that no record grows with it ------------------------------------

_SEP = "\x1f"


def incident_key(tenant: str, incident_id: str) -> str:
    return f"{tenant}{_SEP}incident{_SEP}{incident_id}"


def topology_key(tenant: str) -> str:
    return f"{tenant}{_SEP}topology"


def is_index_key(key: str) -> bool:
    """A tenant's index record (the timers look only at these), not one of its incidents or its graph."""
    return _SEP not in key


def state_records(tenant: str, state: dict, incidents: Iterable[str] | None = None,
                  graph: bool = True) -> dict[str, dict]:
    """``Correlator.to_state()`` as table records, each within the record limit: the index (counters, open and
    resolved ids, held signals), the learned graph (unless ``graph`` is False), and one record per open or
    recently resolved incident (only those in ``incidents`` when given: the ones a signal touched)."""
    index = {"open": sorted(state["open"]), "resolved": {k: v["at"] for k, v in state["resolved"].items()},
             "signals_in": state["signals_in"], "incidents_out": state["incidents_out"],
             "pending": state["pending"]}
    records = {}
    every = {k: v for k, v in state["open"].items()} | {k: v["incident"] for k, v in state["resolved"].items()}
    for incident_id in every if incidents is None else [i for i in incidents if i in every]:
        records[incident_key(tenant, incident_id)] = fit_incident(every[incident_id])
    if graph:
        records[topology_key(tenant)] = fit_topology(state["topology"])
    # the index last: a worker stopped while writing these leaves at worst records no index names yet (the signal,
    # read again, writes them again), never an index naming an incident whose record never reached the changelog
    records[tenant] = fit_index(index)
    return records


def load_state(tenant: str, get: Callable[[str], dict | None]) -> dict | None:
    """The state ``state_records`` wrote (None when the tenant has none). An index written whole, before the
    split, is taken as it is. A missing or unreadable incident record is left out, and said: the worker goes on
    without it rather than failing on every signal of the tenant."""
    index = get(tenant)
    if not isinstance(index, dict):
        return None
    if isinstance(index.get("open"), dict):
        return index | {"unsplit": True}
    opened, resolved = {}, {}
    for incident_id in index.get("open", []):
        record = _incident_record(tenant, incident_id, get)
        if record is not None:
            opened[incident_id] = record
    for incident_id, at in index.get("resolved", {}).items():
        record = _incident_record(tenant, incident_id, get)
        if record is not None:
            resolved[incident_id] = {"at": at, "incident": record}
    return {"open": opened, "resolved": resolved, "signals_in": index.get("signals_in", 0),
            "incidents_out": index.get("incidents_out", 0), "pending": index.get("pending", []),
            "topology": get(topology_key(tenant))}


def _incident_record(tenant: str, incident_id: str, get: Callable[[str], dict | None]) -> dict | None:
    record = get(incident_key(tenant, incident_id))
    if isinstance(record, dict) and {"incident_id", "opened_at", "last_signal_at"} <= record.keys() \
            and record.keys() <= set(_INCIDENT_FIELDS):
        return record
    log.error("tenant %s: the record of incident %s is missing or unreadable; going on without it", tenant,
              incident_id)
    return None


def record_size(record: dict) -> int:
    return len(json.dumps(record, default=str).encode())


def fit_incident(record: dict, limit: int = STATE_RECORD_MAX_BYTES) -> dict:
    """An incident record within ``limit``: the evidence of its latest signals goes first, then those signals,
    then resources and members past the first ones (the record says so in ``notes``)."""
    if record_size(record) <= limit:
        return record
    record = json.loads(json.dumps(record, default=str))
    signals = record["signals"]
    for key in reversed(list(signals)):
        if signals[key].get("details"):
            signals[key]["details"] = {"truncated": ["evidence (the incident record was too large)"]}
            if record_size(record) <= limit:
                break
    while record_size(record) > limit and len(signals) > 10:
        for key in list(signals)[-max(1, len(signals) // 4):]:
            del signals[key]
    if record_size(record) > limit:
        record["resources"] = dict(list(record["resources"].items())[:50])
        record["members"] = record["members"][:50]
        record["active"] = dict(list(record["active"].items())[:50])
    record["notes"]["#trimmed"] = "evidence trimmed: the incident outgrew its state record"
    log.warning("incident %s: state record trimmed to %d bytes", record["incident_id"], record_size(record))
    return record


def fit_topology(state: dict, limit: int = STATE_RECORD_MAX_BYTES) -> dict:
    """The learned graph within ``limit``: the least recently seen resources are forgotten first."""
    if record_size(state) <= limit:
        return state
    resources = state["resources"]
    newest = sorted(resources, key=lambda k: -resources[k].get("seen", 0.0))
    keep = len(newest)
    while keep > 1 and record_size({**state, "resources": {k: resources[k] for k in newest[:keep]}}) > limit:
        keep = keep * 3 // 4
    log.warning("the learned graph outgrew its state record: the %d least recently seen resources forgotten",
                len(newest) - keep)
    return {**state, "resources": {k: resources[k] for k in newest[:keep]}}


def fit_index(index: dict, limit: int = STATE_RECORD_MAX_BYTES) -> dict:
    """A tenant's index within ``limit``: the oldest signals held for company go first."""
    while record_size(index) > limit and index["pending"]:
        index = {**index, "pending": index["pending"][len(index["pending"]) // 4 + 1:]}
    return index
