"""Config risk: a configuration change checked against its plugin's rules (the resource's kind, or the middleware
a ConfigMap holds the configuration of); a risky change becomes an anomaly with the before/after values as
evidence, so correlation can put it next to what it caused."""

from __future__ import annotations

from kubestack.contract.base import Source
from kubestack.contract.events import Anomaly, ConfigChange, Severity
from kubestack.plugins.base import ConfigRiskRules
from kubestack.plugins.registry import plugins

_SCORE = {Severity.CRITICAL: 1.0, Severity.WARNING: 0.8, Severity.INFO: 0.5}


MIDDLEWARE_LABEL = "middleware"
"""On a configuration held elsewhere (a Kubernetes ConfigMap holding redis.conf): whose rules judge it."""


def assess(change: ConfigChange, source: Source) -> list[Anomaly]:
    plugin = plugins().get(change.resource.kind) or plugins().get(change.resource.labels.get(MIDDLEWARE_LABEL, ""))
    if plugin is None or not isinstance(plugin, ConfigRiskRules):
        return []
    return [
        Anomaly(source=source, resource=change.resource, tenant=change.tenant, ts=change.ts,
                detector="config-risk", signal=finding.rule_id, score=_SCORE[finding.severity],
                severity=finding.severity, window_start=change.ts, window_end=change.ts,
                details={"message": finding.message, "evidence": finding.evidence, "query": finding.query,
                         "change_event_id": change.event_id,
                         "changes": [c.model_dump(mode="json") for c in change.changes]})
        for finding in plugin.config_risks(change)
    ]
