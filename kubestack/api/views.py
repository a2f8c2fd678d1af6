"""Request and response models of the API: what /openapi.json documents. Contract events are reused as they are."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubestack.contract.events import (
    AuditRecord,
    Finding,
    HealthReport,
    Incident,
    Prediction,
    RcaReport,
    RemediationDecision,
    RemediationProposal,
    RemediationResult,
    ResultStatus,
)
from kubestack.apisettings import Role
from kubestack.plugins.base import ActionSpec
from kubestack.redaction import redact_value

View = TypeVar("View", bound=BaseModel)


class ErrorBody(BaseModel):
    error: str = Field(description="Stable error code, e.g. invalid_request, unauthorized, not_found, conflict")
    detail: Any = Field(description="What is wrong, for people; for invalid input a list of {loc, msg}")
    error_id: str | None = Field(default=None, description="Set on internal errors: quote it when reporting")


class ProposalView(BaseModel):
    proposal: RemediationProposal
    state: ResultStatus
    results: list[RemediationResult] = Field(default_factory=list)
    decision: RemediationDecision | None = None


class IncidentView(Incident):
    """The latest revision of an incident, its signals as a timeline (by first_seen), its latest root-cause
    report and its proposals."""

    revision: int
    rca: RcaReport | None = None
    proposals: list[ProposalView] = Field(default_factory=list)


class IncidentList(BaseModel):
    items: list[IncidentView]


class ProposalList(BaseModel):
    items: list[ProposalView]


class PredictionList(BaseModel):
    items: list[Prediction]


class AuditList(BaseModel):
    items: list[AuditRecord]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonBody(_Input):
    reason: str = Field(min_length=1, max_length=2000, description="Why: kept with the decision and in the audit")
    via: Literal["api", "cli", "mcp"] = Field(default="api", description="Where the decision was made: kept with it")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason must not be blank")
        return value.strip()


class DecisionResponse(BaseModel):
    decision: RemediationDecision
    state: ResultStatus


class DiagnoseRequest(_Input):
    target: str = Field(min_length=1, max_length=300, description="A target name from the agent config, or the "
                                                                  "resource key of one")


class DiagnoseResponse(BaseModel):
    target: str
    kind: str
    resource: str
    findings: list[Finding]
    error: str | None = Field(description="Why the checks could not run (unreachable, wrong password, timeout)")


class TargetView(BaseModel):
    name: str
    type: str
    resource: str
    tenant: str
    labels: dict[str, str]
    interval_s: float
    health_interval_s: float


class ResourceView(BaseModel):
    resource: str
    kind: str
    name: str
    tenant: str
    reachable: bool
    last_report: str
    findings: int


class TargetsResponse(BaseModel):
    targets: list[TargetView] = Field(description="Targets of the API's agent config (never their secrets)")
    resources: list[ResourceView] = Field(description="Resources seen in health reports")


class PluginView(BaseModel):
    name: str
    actions: list[ActionSpec]


class PluginsResponse(BaseModel):
    plugins: list[PluginView]
    broken: dict[str, str]


class FeedStatus(BaseModel):
    running: bool
    lag: int | None
    last_event_age_s: float | None
    error: str | None


class HealthResponse(BaseModel):
    status: str = Field(description="ok, or degraded when Kafka does not answer")
    kafka_reachable: bool
    feed_running: bool
    kafka_error: str | None = Field(default=None, description="With a token only")
    feed: FeedStatus | None = Field(default=None, description="With a token only")
    read_model: dict[str, int] | None = Field(default=None, description="Rows by kind; with a token only")


class WhoAmI(BaseModel):
    name: str
    role: Role
    tenant: str | None


class SlackAck(BaseModel):
    ok: bool
    message: str


def health_view(report: HealthReport) -> ResourceView:
    return ResourceView(resource=report.resource.key, kind=report.resource.kind, name=report.resource.name,
                        tenant=report.tenant, reachable=report.reachable, last_report=report.ts.isoformat(),
                        findings=len(report.findings))


def shown_to(role: Role, view: View) -> View:
    """``view`` as a caller of ``role`` may see it: below the operator role every string is redacted (evidence,
    summaries, narratives, parameters, audit details: what a viewer needs to follow an incident, never a secret a
    signal carried). Audit records shown so no longer hash to their chain; ``kubestack audit verify`` reads the
    store."""
    if role.allows(Role.OPERATOR):
        return view
    return type(view).model_validate(redact_value(view.model_dump(mode="json")))
