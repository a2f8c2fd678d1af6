"""The messages on the bus, one pydantic model each. The registry (``topics.py``) binds them to topics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from kubestack.contract.base import ContractModel, Event, FiniteNumber, Name, ResourceRef, UtcDatetime, new_id


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    FORBIDDEN = "forbidden"


# --- collection -------------------------------------------------------------------------------


class Sample(ContractModel):
    """One measured value: what plugins collect, and the older wire form of a ``MetricBatch``."""

    name: Name = Field(description="Metric name, e.g. redis_used_memory_bytes")
    value: FiniteNumber
    ts: UtcDatetime
    labels: dict[str, str] = Field(default_factory=dict)


class MetricBatch(Event):
    """The samples of one resource collected in one round, as columns: sample ``i`` is metric ``names[i]`` with
    value ``values[i]`` and labels ``series_labels[i]``, taken at ``ts`` (plus ``offsets_s[i]`` seconds when the
    samples of the batch were taken at different times, e.g. a Prometheus range).

    The columns are checked once per batch (lengths agree, names valid, values finite, ``ts`` in UTC), without a
    model per sample: the worker decodes thousands of batches a second. The older form, one ``Sample`` object per
    sample in ``samples``, is still read: it is turned into the columns when validated and never written.
    ``samples`` reads any batch as ``Sample`` objects, for the edges (CLI, tests); the worker reads the columns."""

    names: list[Name] = Field(default_factory=list, description="Metric name of each sample")
    values: list[FiniteNumber] = Field(default_factory=list, description="Value of each sample, aligned with names")
    series_labels: list[dict[str, str]] | None = Field(
        default=None, description="Labels of each sample, aligned with names; absent when no sample has labels")
    offsets_s: list[FiniteNumber] | None = Field(
        default=None, description="Seconds from ts at which each sample was taken, aligned with names; absent when "
                                  "every sample was taken at ts")
    interval_s: FiniteNumber | None = Field(default=None, gt=0, description="Collection interval of the target")
    old_samples: list[Sample] | None = Field(default=None, alias="samples", exclude=True, min_length=1,
                                             description="The older form, read and turned into the columns")

    @model_validator(mode="after")
    def _columns(self) -> MetricBatch:
        if self.old_samples is not None:
            if self.names:
                raise ValueError("a batch carries its samples as columns (names, values) or as samples, not both")
            for name, column in zip(_COLUMNS, columns_of(self.old_samples, self.ts), strict=True):
                object.__setattr__(self, name, column)
            object.__setattr__(self, "old_samples", None)
            self.__pydantic_fields_set__.update(_COLUMNS)
        count = len(self.names)
        if count == 0:
            raise ValueError("a batch carries at least one sample (names and values, or samples)")
        for name in _COLUMNS[1:]:
            column = getattr(self, name)
            if column is not None and len(column) != count:
                raise ValueError(f"{name} has {len(column)} entries for {count} names: the columns must be aligned")
        return self

    @classmethod
    def of_samples(cls, samples: Sequence[Sample], **envelope: Any) -> MetricBatch:
        """The columnar batch of ``samples`` (already validated), at the time of the first of them."""
        ts = samples[0].ts
        return cls(ts=ts, **dict(zip(_COLUMNS, columns_of(samples, ts), strict=True)), **envelope)

    @property
    def samples(self) -> list[Sample]:
        """The batch as ``Sample`` objects (built unvalidated from the checked columns)."""
        return [self.sample(i) for i in range(len(self.names))]

    def sample(self, i: int) -> Sample:
        """Sample ``i`` of the batch as a ``Sample`` (built unvalidated from the checked columns)."""
        ts = self.ts if self.offsets_s is None else self.ts + timedelta(seconds=self.offsets_s[i])
        labels = self.series_labels[i] if self.series_labels is not None else {}
        return Sample.model_construct(name=self.names[i], value=self.values[i], ts=ts, labels=labels)


_COLUMNS = ("names", "values", "series_labels", "offsets_s")


def columns_of(samples: Sequence[Sample], ts: datetime) -> tuple[list, list, list | None, list | None]:
    """``samples`` as the columns of a ``MetricBatch`` at ``ts``: names, values, labels (None when no sample has
    any) and offsets from ``ts`` (None when every sample was taken at ``ts``)."""
    names = [s.name for s in samples]
    values = [s.value for s in samples]
    labels = [s.labels for s in samples]
    offsets = [(s.ts - ts).total_seconds() for s in samples]
    return names, values, labels if any(labels) else None, offsets if any(offsets) else None


class LogLine(ContractModel):
    ts: UtcDatetime
    line: str
    path: str | None = Field(default=None, description="File, journald unit or pod/container it came from")
    offset: int | None = Field(default=None, ge=0, description="Byte offset in the file, for tails")


class LogBatch(Event):
    """Log lines of one resource, in order."""

    lines: list[LogLine] = Field(min_length=1)


class ConfigSnapshot(Event):
    """The full effective configuration of a resource at one time."""

    config: dict[str, str]
    digest: str = Field(description="sha256 of the canonical config, to spot changes cheaply")


class ConfigDiff(ContractModel):
    key: Name
    old: str | None = None
    new: str | None = None


class ConfigChange(Event):
    """What changed between two snapshots of a resource."""

    previous_digest: str
    digest: str
    changes: list[ConfigDiff] = Field(min_length=1)
    observed: dict[str, FiniteNumber] = Field(default_factory=dict,
                                       description="Metric values the agent saw last, for the risk rules")


class Finding(ContractModel):
    """One health-check result: which rule fired, how bad, and the exact evidence behind it."""

    rule_id: Name = Field(description="Stable rule id, e.g. redis.no_maxmemory, agent.target_down")
    severity: Severity
    message: str = Field(min_length=1)
    evidence: dict[str, Any] = Field(default_factory=dict, description="The exact values the rule looked at")
    query: str = Field(default="", description="The command or query that produced the evidence")


class PeerRole(StrEnum):
    CLIENT = "client"  # connects to this resource (an application, a proxy)
    PRIMARY = "primary"  # this resource replicates from it
    REPLICA = "replica"  # replicates from this resource
    CONSUMER_GROUP = "consumer_group"  # reads this resource's topics
    SERVER = "server"  # this resource connects to it (a database it depends on)


class Peer(ContractModel):
    """One observed connection of a resource: who talks to it or whom it talks to."""

    role: PeerRole
    address: str = Field(min_length=1, description="Host or IP, with ':port' when it identifies a listener")
    name: str | None = Field(default=None, description="Known name: a replica id, a consumer group, a client name")
    count: int = Field(default=1, ge=1, description="Connections seen to or from this address")


class HealthReport(Event):
    """The current findings of one resource: a state, not a delta. With ``rules_checked`` empty it is the full
    state (a rule without a finding is healthy); otherwise it speaks only for the rules listed."""

    findings: list[Finding] = Field(default_factory=list)
    rules_checked: list[str] = Field(default_factory=list,
                                     description="Rules this report speaks for; empty: all of them (a full state)")
    reachable: bool = Field(default=True, description="False when the target could not be reached at all")
    peers: list[Peer] = Field(default_factory=list,
                              description="Connections observed when the report was made (the dependency graph)")


# --- analysis --------------------------------------------------------------------------------


class Anomaly(Event):
    """A detector found a series (or a set of series) unusual."""

    detector: Name
    signal: Name = Field(description="Metric name, log template id or config key the anomaly is about")
    score: float = Field(ge=0.0, le=1.0)
    value: float | None = None
    expected: float | None = None
    window_start: UtcDatetime
    window_end: UtcDatetime
    severity: Severity = Severity.WARNING
    details: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _window_ordered(self) -> Anomaly:
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        return self


class PredictionStatus(StrEnum):
    ACTIVE = "active"
    UPDATED = "updated"
    WITHDRAWN = "withdrawn"


class Prediction(Event):
    """A capacity-like series is expected to run out."""

    prediction_id: str = Field(default_factory=new_id)
    signal: Name
    capacity: float
    exhaustion_at: UtcDatetime | None = Field(description="Likely exhaustion time; None when withdrawn")
    exhaustion_lower_bound: UtcDatetime | None = Field(description="Early bound of the prediction interval")
    confidence: float = Field(ge=0.0, le=1.0)
    model: Name
    status: PredictionStatus = PredictionStatus.ACTIVE
    severity: Severity = Severity.WARNING
    outcome: str = Field(default="", max_length=300, description=(
        "What happens at exhaustion, for people: 'group billing on orders will lose unconsumed records'"))
    labels: dict[str, str] = Field(default_factory=dict, description="The series' labels (group, topic, slot)")


class IncidentStatus(StrEnum):
    OPEN = "open"
    UPDATED = "updated"
    RESOLVED = "resolved"


class SignalKind(StrEnum):
    ANOMALY = "anomaly"        # a detector's (metric, log, config risk, alert)
    FINDING = "finding"        # a health rule's; clears when a later report lacks it
    PREDICTION = "prediction"  # an exhaustion notice; clears when withdrawn


class IncidentSignal(ContractModel):
    """One signal of an incident, as the incident carries it: enough for root-cause analysis and for people
    without fetching the member events."""

    event_id: str
    kind: SignalKind
    name: Name = Field(description="Rule id, '<detector>:<signal>' or the forecast series")
    resource: str = Field(description="Resource key")
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    severity: Severity
    summary: str = ""
    score: float | None = None
    details: dict[str, Any] = Field(default_factory=dict, description="Small evidence: values, before/after")


class IncidentLink(ContractModel):
    """Why two resources of an incident are related."""

    source: str = Field(description="Resource key")
    target: str = Field(description="Resource key")
    reason: Name = Field(description="same_host, service, depends_on, client, primary, replica, consumer_group")


class Incident(Event):
    """Correlated signals across resources, told once."""

    incident_id: str = Field(default_factory=new_id)
    title: Name
    status: IncidentStatus = IncidentStatus.OPEN
    severity: Severity
    opened_at: UtcDatetime
    resources: list[ResourceRef] = Field(default_factory=list)
    member_event_ids: list[str] = Field(min_length=1, description="Anomalies, predictions, findings")
    summary: str = ""
    signals: list[IncidentSignal] = Field(default_factory=list, description="The members, in order of arrival")
    links: list[IncidentLink] = Field(default_factory=list, description="How its resources are related")
    silenced_by: list[str] = Field(default_factory=list, description=(
        "Ids of the silences or maintenance windows that matched it when this revision was formed: while any "
        "does, nobody is notified and no remediation runs without a person"))


# --- diagnosis and action --------------------------------------------------------------------


class Hypothesis(ContractModel):
    rank: int = Field(ge=1)
    component: Name = Field(description="Resource key of the suspected root cause")
    cause: Name
    confidence: float = Field(ge=0.0, le=1.0)
    evidence_ids: list[str] = Field(min_length=1)
    runbooks: list[str] = Field(default_factory=list)


class PastAction(ContractModel):
    """What was done about a past incident: one proposal's action and where it ended."""

    proposal_id: str
    action: Name = Field(description="Plugin action id, e.g. redis.config_set")
    status: ResultStatus = Field(description="Its last result: verified, rolled_back, failed, rejected, ...")
    approved_by: str | None = Field(default=None, description="Who approved it: a user, slack:<id>, policy:auto")


class SimilarIncident(ContractModel):
    """A past incident of the same tenant that looks like this one (``pipeline.memory``), with what was done."""

    incident_id: str
    title: Name
    opened_at: UtcDatetime
    similarity: float = Field(ge=0.0, le=1.0, description="Of signals, resources, top cause and text, 1 = alike")
    resources: list[str] = Field(default_factory=list, description="Resource keys")
    cause: str | None = Field(default=None, description="Its top-ranked cause")
    component: str | None = Field(default=None, description="Resource key of that cause")
    actions: list[PastAction] = Field(default_factory=list)
    outcome: str = Field(default="", description="For people: 'fixed by redis.config_set (verified)'")


class RcaReport(Event):
    incident_id: str
    hypotheses: list[Hypothesis]
    narrative: str = ""
    narrator: str = Field(default="rules", description="'rules' or the LLM that wrote the narrative")
    similar: list[SimilarIncident] = Field(default_factory=list, description=(
        "Similar past incidents of the tenant, most alike first, with what was done and whether it worked"))


class RemediationProposal(Event):
    proposal_id: str = Field(default_factory=new_id)
    incident_id: str
    action: Name = Field(description="Plugin action id, e.g. redis.config_set")
    params: dict[str, Any] = Field(default_factory=dict)
    risk: Risk
    preconditions: list[str] = Field(default_factory=list)
    expected_effect: str = ""
    rollback: str = ""
    dry_run: str = ""
    verify_rules: list[str] = Field(default_factory=list, description=(
        "Health rule ids whose findings should clear once the action worked; the remediation stage watches them "
        "(empty: nothing to watch, the result stays 'executed')"))


class ResultStatus(StrEnum):
    PENDING = "pending"
    """Waiting for a person's approval (the policy does not allow acting alone)."""
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"
    VERIFIED = "verified"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class RemediationDecision(Event):
    """A person's approval or rejection of a proposal (through the API, the CLI or a Slack button)."""

    proposal_id: str
    incident_id: str
    decision: Decision
    actor: Name = Field(description="Who decided: the API token's user, or slack:<user id>")
    reason: str = ""
    via: Name = Field(default="api", description="api, cli or slack")
    role: str | None = Field(default=None, description="The role the actor decided with: operator or admin")
    proposal_digest: str | None = Field(default=None, description=(
        "SHA-256 of the proposal as the person saw it (action, params, resource, tenant): the stage acts only on "
        "that proposal, not on another published under the same id"))
    key_id: str | None = Field(default=None, description="The decision key that signed it")
    signature: str | None = Field(default=None, description=(
        "HMAC-SHA256 (hex) by the API over the decision, its actor, role, tenant, proposal and time "
        "(kubestack.approval); the remediation stage refuses a decision without a valid one"))


class RemediationResult(Event):
    proposal_id: str
    incident_id: str
    status: ResultStatus
    actor: Name = Field(description="Who or what decided or acted: a user, 'policy:auto'")
    output: str = ""


class Notification(Event):
    channel: Name = Field(description="slack, pagerduty, webhook:<name>, ...")
    subject_id: str = Field(description="Incident, prediction or proposal id the notice is about")
    severity: Severity
    title: Name
    body: str = ""
    delivered: bool
    attempts: int = Field(default=1, ge=1)
    error: str | None = None


class AuditEntry(Event):
    """Something a person or a stage did, as the doer reports it. One audit stage chains entries, in the order the
    single-partition entries topic gives them, into ``AuditRecord``s."""

    actor: Name = Field(description="A user, 'policy:auto', or the stage that acted, e.g. 'stage:remediation'")
    action: Name = Field(description="What was done, e.g. proposal.approved, action.executed, api.token_used")
    subject_id: str = Field(description="Proposal, incident or other id the entry is about")
    details: dict[str, Any] = Field(default_factory=dict)


class AuditRecord(AuditEntry):
    """One link of the tamper-evident audit chain: ``hash`` is the SHA-256 of ``prev_hash`` and the canonical JSON
    of every other field, so editing, removing or reordering any record breaks every later link."""

    seq: int = Field(ge=0, description="Position in the chain, from 0")
    entry_id: str = Field(description="event_id of the AuditEntry this record chains (a replayed entry is not "
                                      "chained twice)")
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class Silence(Event):
    """A silence or maintenance window, the latest state per ``silence_id`` (a compacted topic): what it matches
    (resources by key or name, services, labels, within its tenant; none of them: the whole tenant) and when, once
    (``starts_at``..``ends_at``) or recurring (``schedule``: weekly ``"Sun 02:00-04:00"`` or a 5-field cron spec
    with ``duration_s``, in ``timezone``). Ending it early republishes it with ``ended_at``."""

    silence_id: str = Field(default_factory=new_id)
    matchers_resources: list[str] = Field(default_factory=list, description="Resource keys or names")
    matchers_services: list[str] = Field(default_factory=list, description="Values of the 'service' label")
    matchers_labels: dict[str, str] = Field(default_factory=dict, description="Labels a resource must all carry")
    starts_at: UtcDatetime
    ends_at: UtcDatetime | None = Field(default=None, description="End of a one-off window; None with a schedule "
                                                                  "(then it recurs until ended)")
    schedule: str | None = Field(default=None, description="'Sun 02:00-04:00', 'Sat,Sun 22:00-02:00' or a cron spec")
    duration_s: int | None = Field(default=None, gt=0, description="Length of each window of a cron schedule")
    timezone: str = Field(default="UTC", description="IANA zone the schedule is read in, e.g. Europe/Berlin")
    created_by: Name
    comment: str = Field(min_length=1, max_length=1000, description="Why: the change or work it covers")
    ended_at: UtcDatetime | None = None
    ended_by: str | None = None


class DeadLetter(Event):
    """A message that could not be processed, kept with the reason so nothing is lost silently."""

    original_topic: Name
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    payload: str = Field(description="The original bytes, decoded as UTF-8 with backslash escapes, secrets redacted "
                                     "(kubestack.redaction), the first 64 KB")
    reason: str
    error_type: Name
    stage: Name = Field(description="Stage that gave up on the message")

