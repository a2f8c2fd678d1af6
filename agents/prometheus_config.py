"""What `prometheus:` in agent.yaml says: the server, its auth, and the queries with their resource rules.
Kept apart from the source itself so that reading a config does not import the HTTP client."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kubestack.agents.durations import parse_duration
from kubestack.contract.base import ResourceRef
from kubestack.plugins.base import SecretRef


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourceRule(_Strict):
    """How a series' labels become the ``ResourceRef`` its samples are about."""

    kind: str | None = Field(default=None, description="Fixed kind, e.g. redis")
    kind_label: str | None = Field(default=None, description="Or the label holding the kind, e.g. job")
    name: str | None = Field(default=None, description="Fixed name, e.g. for a cluster-wide aggregate")
    name_labels: list[str] = Field(default_factory=lambda: ["instance", "job"],
                                   description="Labels tried in order for the name; the first present wins")
    namespace_label: str | None = None
    host_label: str | None = None
    cluster_label: str | None = None
    cluster: str | None = Field(default=None, description="Fixed cluster, when no label carries it")
    labels: list[str] = Field(default_factory=list, description="Series labels copied to the resource's labels")

    @model_validator(mode="after")
    def _one_kind(self) -> ResourceRule:
        if (self.kind is None) == (self.kind_label is None):
            raise ValueError("set exactly one of kind (fixed) or kind_label")
        if self.name is None and not self.name_labels:
            raise ValueError("set name (fixed) or at least one of name_labels")
        return self

    def resource(self, labels: dict[str, str]) -> ResourceRef | None:
        """The resource of a series, or None when a label the rule needs is missing."""
        kind = self.kind or labels.get(self.kind_label or "")
        name = self.name or next((labels[key] for key in self.name_labels if labels.get(key)), None)
        if not kind or not name:
            return None
        return ResourceRef(
            kind=kind, name=name,
            namespace=labels.get(self.namespace_label) if self.namespace_label else None,
            host=labels.get(self.host_label) if self.host_label else None,
            cluster=(labels.get(self.cluster_label) if self.cluster_label else None) or self.cluster,
            labels={key: labels[key] for key in self.labels if key in labels})


class PromQuery(_Strict):
    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", description="Metric name the samples get")
    promql: str = Field(min_length=1)
    resource: ResourceRule
    keep_labels: list[str] = Field(default_factory=list, description="Series labels kept on each sample")


class BasicAuth(_Strict):
    username: str
    password: SecretRef


class PrometheusSourceConfig(_Strict):
    url: str = Field(pattern=r"^https?://", description="Base URL, e.g. http://prometheus:9090")
    queries: list[PromQuery] = Field(min_length=1)
    interval: float = Field(default=30.0, gt=0)
    timeout: float = Field(default=10.0, gt=0)
    basic_auth: BasicAuth | None = None
    bearer_token: SecretRef | None = None
    verify_tls: bool = True

    _durations = field_validator("interval", "timeout", mode="before")(parse_duration)

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusSourceConfig:
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("set basic_auth or bearer_token, not both")
        return self
