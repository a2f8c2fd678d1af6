"""The http plugin's configuration: the exposition URL, which series are the requests and their latency, and the
thresholds of its two rules."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from kubestack.plugins.base import PluginConfig, SecretRef


class HttpConfig(PluginConfig):
    """One application's Prometheus exposition endpoint."""

    url: str = Field(default="http://127.0.0.1:8080/metrics", pattern=r"^https?://",
                     description="The application's /metrics URL")
    bearer_token: SecretRef | None = Field(default=None, description="Sent as 'Authorization: Bearer', when needed")
    requests_metric: str = Field(default="http_requests_total",
                                 description="Counter of handled requests (with a status label)")
    status_label: str = Field(default="status", description="Label of the requests counter holding the status")
    error_status: str = Field(default=r"^(5\d\d|error)$", description="Regex of statuses that are errors")
    latency_metric: str = Field(default="http_request_duration_seconds", description="Histogram of request times")
    peer_metric: str = Field(default="kubestack_peer_info",
                             description="Info series naming the dependencies: labels address, role, name")
    passthrough_max: int = Field(default=300, ge=0, description="Other series passed through as they are, at most")
    min_requests: int = Field(default=5, ge=1, description="Requests in a round before its ratios are judged")
    error_ratio_warning: float = Field(default=0.05, gt=0, le=1)
    error_ratio_critical: float = Field(default=0.25, gt=0, le=1)
    latency_p95_warning_s: float = Field(default=0.5, gt=0, description="p95 of a round that is slow")
    latency_p95_critical_s: float = Field(default=2.0, gt=0)

    @field_validator("error_status")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value
