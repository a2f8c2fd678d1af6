"""Logs in the stream: each resource's lines are mined into templates (one miner per resource) and their
rates tracked; new templates once the source is warm, error-level bursts and template-rate changes become
anomalies. Pure: the Faust agent loads the state, calls ``observe`` and stores the state back."""

from __future__ import annotations

from kubestack.contract.base import Source
from kubestack.contract.events import Anomaly, LogBatch, Severity
from kubestack.models.logrates import TemplateRates, is_error
from kubestack.models.logtemplates import TemplateMiner

CRITICAL_SCORE = 0.95


class ResourceLogs:
    def __init__(self, threshold: float, miner: TemplateMiner | None = None, rates: TemplateRates | None = None):
        self.threshold = threshold
        self.miner = miner or TemplateMiner()
        self.rates = rates or TemplateRates()

    def observe(self, batch: LogBatch, source: Source) -> list[Anomaly]:
        anomalies = []
        for line in batch.lines:
            mined = self.miner.add(line.line)
            ts = line.ts.timestamp()
            for signal in self.rates.observe(ts, mined.template_id, mined.is_new, is_error(line.line)):
                if signal.score < self.threshold:
                    continue
                template = self.miner.template(int(signal.template_id[1:])) if signal.template_id else ""
                anomalies.append(Anomaly(
                    source=source, resource=batch.resource, tenant=batch.tenant, ts=line.ts,
                    detector=f"log/{signal.kind}", signal=signal.template_id or signal.kind,
                    score=round(signal.score, 4), window_start=line.ts, window_end=line.ts,
                    severity=Severity.CRITICAL if signal.score >= CRITICAL_SCORE else Severity.WARNING,
                    details={"template": template, "detail": signal.detail, "line": line.line[:500],
                             "path": line.path}))
        return anomalies

    def to_state(self) -> dict:
        return {"miner": self.miner.to_state(), "rates": self.rates.to_state()}

    @classmethod
    def from_state(cls, state: dict | None, threshold: float) -> ResourceLogs:
        if not state:
            return cls(threshold)
        return cls(threshold, TemplateMiner.from_state(state["miner"]), TemplateRates.from_state(state["rates"]))
