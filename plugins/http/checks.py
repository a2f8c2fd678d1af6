"""The http plugin's rules over one round (the requests between two reads of the exposition): pure."""

from __future__ import annotations

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.http.config import HttpConfig
from kubestack.plugins.http.parse import Round


def evaluate(current: Round | None, config: HttpConfig) -> list[Finding]:
    if current is None or current.requests < config.min_requests:
        return []
    findings = []
    ratio = current.error_ratio or 0.0
    if ratio >= config.error_ratio_warning:
        severity = Severity.CRITICAL if ratio >= config.error_ratio_critical else Severity.WARNING
        findings.append(Finding(
            rule_id="http.error_ratio", severity=severity,
            message=f"{ratio:.0%} of the last round's {current.requests:.0f} requests failed "
                    f"({current.errors:.0f} errors)",
            evidence={"requests": current.requests, "errors": current.errors, "error_ratio": round(ratio, 4),
                      "threshold": config.error_ratio_warning},
            query=f"{config.requests_metric}{{{config.status_label}=~{config.error_status!r}}}"))
    p95 = current.p95_s
    if p95 is not None and p95 >= config.latency_p95_warning_s:
        severity = Severity.CRITICAL if p95 >= config.latency_p95_critical_s else Severity.WARNING
        findings.append(Finding(
            rule_id="http.slow_responses", severity=severity,
            message=f"p95 response time {p95 * 1000:.0f} ms over the last round's {current.requests:.0f} requests "
                    f"(threshold {config.latency_p95_warning_s * 1000:.0f} ms)",
            evidence={"p95_seconds": round(p95, 4), "mean_seconds": round(current.mean_s or 0.0, 4),
                      "requests": current.requests, "threshold_seconds": config.latency_p95_warning_s},
            query=f"histogram_quantile(0.95, {config.latency_metric}_bucket)"))
    return findings
