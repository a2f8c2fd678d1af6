"""The topic registry: the one place that binds topic name, model, partition key, partitions and retention.

Producers, Faust topics, the CLI, topic creation and the docs all derive from ``TOPICS``.

Decoding checks the kind of a message as well as its fields. Unknown fields are ignored (a producer may add one),
but a field that belongs to another event of the registry and not to the topic's own model says the message is
of the wrong kind: a ``ConfigChange`` or a ``MetricBatch`` sent to the health topic would otherwise decode as an
empty, healthy ``HealthReport`` (every field of it has a default) and could resolve an incident. So a field added
to one event must not reuse the name of another event's field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Generic, TypeVar

from pydantic import ValidationError
from pydantic_core import from_json

from kubestack.contract.base import Event
from kubestack.contract.events import (
    Anomaly,
    AuditEntry,
    AuditRecord,
    ConfigChange,
    ConfigSnapshot,
    DeadLetter,
    HealthReport,
    Incident,
    LogBatch,
    MetricBatch,
    Notification,
    Prediction,
    RcaReport,
    RemediationDecision,
    RemediationProposal,
    RemediationResult,
    Silence,
)
from kubestack.errors import ContractError, EventDecodeError, UnknownTopicError, validation_problems

E = TypeVar("E", bound=Event)

_MAX_REASON_ERRORS = 3


@dataclass(frozen=True)
class TopicSpec(Generic[E]):
    short: str
    model: type[E]
    key: Callable[[E], str] = field(repr=False)
    key_doc: str
    partitions: int
    retention: timedelta
    description: str
    compact: bool = False

    @property
    def name(self) -> str:
        return f"kubestack.{self.short}.v1"

    def qualified(self, prefix: str = "") -> str:
        """The topic's name on a broker whose topics carry ``prefix`` (e.g. ``staging.``)."""
        return f"{prefix}{self.name}"

    @property
    def topic_configs(self) -> dict[str, str]:
        policy = "compact,delete" if self.compact else "delete"
        return {"retention.ms": str(int(self.retention.total_seconds() * 1000)), "cleanup.policy": policy}

    def encode(self, event: E) -> tuple[bytes, bytes]:
        """Key and value bytes of ``event``; refuses an event of another model."""
        if not isinstance(event, self.model):
            raise ContractError(f"{self.name} carries {self.model.__name__}, not {type(event).__name__}")
        return self.key(event).encode(), event.model_dump_json().encode()

    def decode(self, raw: bytes | str | None) -> E:
        """The event in ``raw``, or ``EventDecodeError`` with a reason a person can act on: not JSON, not an
        object, of another event's kind (``kind_check``), or not a valid instance of the topic's model."""
        if raw is None or raw in (b"", ""):
            raise EventDecodeError(self.name, "empty message (tombstone or missing value)")
        try:
            fields = from_json(raw, allow_inf_nan=True)  # NaN and Infinity parse, the model then names them
        except ValueError as exc:
            raise EventDecodeError(self.name, f"not a valid {self.model.__name__}: Invalid JSON: {exc}") from exc
        if not isinstance(fields, dict):
            raise EventDecodeError(self.name, f"not a valid {self.model.__name__}: a JSON object is expected, "
                                              f"not {_json_kind(fields)}")
        kind_check(self, fields)
        try:
            return self.model.model_validate(fields)
        except ValidationError as exc:
            raise EventDecodeError(self.name, describe_validation_error(self.model, exc)) from exc


def kind_check(spec: TopicSpec, fields: dict) -> None:
    """``EventDecodeError`` when ``fields`` carry fields of other events that ``spec``'s model lacks: a message
    of another kind (the events whose fields it has are named)."""
    foreign = fields.keys() & _foreign_fields(spec.model)
    if not foreign:
        return
    kinds = sorted({model.__name__ for model in _MODELS if foreign & _wire_names(model)})
    raise EventDecodeError(spec.name, f"not a {spec.model.__name__}: a {' or '.join(kinds)}-shaped message (its "
                                      f"fields {', '.join(sorted(foreign))} are not {spec.model.__name__}'s); "
                                      f"{spec.name} carries {spec.model.__name__} only")


@functools.cache
def _foreign_fields(model: type[Event]) -> frozenset[str]:
    """Top-level field names of the other registry events that ``model`` does not have."""
    every = {name for other in _MODELS for name in _wire_names(other)}
    return frozenset(every - _wire_names(model))


def _wire_names(model: type[Event]) -> set[str]:
    """The names ``model``'s fields have in a message (a field's alias, when it has one)."""
    return {info.alias or name for name, info in model.model_fields.items()}


def _json_kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), "null")


def describe_validation_error(model: type[Event], exc: ValidationError) -> str:
    return f"not a valid {model.__name__}: " + validation_problems(exc, limit=_MAX_REASON_ERRORS)


def _by_resource(event: Event) -> str:
    return event.resource.key


DAY = timedelta(days=1)

METRICS = TopicSpec("metrics", MetricBatch, _by_resource, "resource.key", 8, 3 * DAY,
                    "Batched metric samples, one batch per resource and collection round")
LOGS = TopicSpec("logs", LogBatch, _by_resource, "resource.key", 8, 3 * DAY,
                 "Log lines tailed from files, journald and pods, batched per resource")
CONFIG_SNAPSHOTS = TopicSpec("config-snapshots", ConfigSnapshot, _by_resource, "resource.key", 4, 30 * DAY,
                             "Full configuration of a resource; compacted to the latest per resource",
                             compact=True)
CONFIG_CHANGES = TopicSpec("config-changes", ConfigChange, _by_resource, "resource.key", 4, 30 * DAY,
                           "Differences between consecutive configuration snapshots")
HEALTH = TopicSpec("health", HealthReport, _by_resource, "resource.key", 4, 7 * DAY,
                   "Health-check findings per resource (full state each round), including target down")
ANOMALIES = TopicSpec("anomalies", Anomaly, _by_resource, "resource.key", 4, 7 * DAY,
                      "Anomalies found by the detectors, with score and window")
PREDICTIONS = TopicSpec("predictions", Prediction, _by_resource, "resource.key", 4, 7 * DAY,
                        "Time-to-exhaustion notices: raised, updated and withdrawn")
INCIDENTS = TopicSpec("incidents", Incident, lambda e: e.incident_id, "incident_id", 4, 30 * DAY,
                      "Correlated incidents across middleware")
RCA_REPORTS = TopicSpec("rca-reports", RcaReport, lambda e: e.incident_id, "incident_id", 4, 30 * DAY,
                        "Ranked root-cause hypotheses with evidence and runbooks")
REMEDIATION_PROPOSALS = TopicSpec("remediation-proposals", RemediationProposal, lambda e: e.incident_id,
                                  "incident_id", 4, 30 * DAY, "Proposed fixes with risk, preconditions, rollback")
REMEDIATION_RESULTS = TopicSpec("remediation-results", RemediationResult, lambda e: e.incident_id,
                                "incident_id", 4, 30 * DAY,
                                "Approvals, rejections, executions, verifications and rollbacks")
REMEDIATION_DECISIONS = TopicSpec("remediation-decisions", RemediationDecision, lambda e: e.incident_id,
                                  "incident_id", 4, 30 * DAY,
                                  "People's approvals and rejections of proposals (API, CLI, Slack)")
NOTIFICATIONS = TopicSpec("notifications", Notification, lambda e: e.subject_id, "subject_id", 2, 7 * DAY,
                          "Notices sent to Slack, PagerDuty and webhooks, with delivery status")
AUDIT_ENTRIES = TopicSpec("audit-entries", AuditEntry, lambda e: e.subject_id, "subject_id", 1, 30 * DAY,
                          "What people and stages did, before the audit stage chains it; one partition, one order")
AUDIT = TopicSpec("audit", AuditRecord, lambda e: e.subject_id, "subject_id", 1, 365 * DAY,
                  "Hash-chained audit trail; one partition keeps the chain in order")
SILENCES = TopicSpec("silences", Silence, lambda e: e.silence_id, "silence_id", 1, 365 * DAY,
                     "Silences and maintenance windows; compacted to the latest state per silence", compact=True)
DEAD_LETTER = TopicSpec("dead-letter", DeadLetter, lambda e: e.original_topic, "original_topic", 1, 14 * DAY,
                        "Messages no stage could process, with the reason")

TOPICS: tuple[TopicSpec, ...] = (
    METRICS, LOGS, CONFIG_SNAPSHOTS, CONFIG_CHANGES, HEALTH, ANOMALIES, PREDICTIONS, INCIDENTS, RCA_REPORTS,
    REMEDIATION_PROPOSALS, REMEDIATION_DECISIONS, REMEDIATION_RESULTS, NOTIFICATIONS, AUDIT_ENTRIES, AUDIT,
    SILENCES, DEAD_LETTER,
)

_MODELS: tuple[type[Event], ...] = tuple(spec.model for spec in TOPICS)

_BY_NAME = {spec.name: spec for spec in TOPICS} | {spec.short: spec for spec in TOPICS}


def topic(name: str) -> TopicSpec:
    """The spec of a topic, by full name (``kubestack.metrics.v1``) or short name (``metrics``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(spec.short for spec in TOPICS)
        raise UnknownTopicError(f"no topic {name!r} in the registry; known: {known}") from None
