"""Logs in the stream: each resource's lines are mined into templates (one miner per resource) and their
rates tracked; new templates once the source is warm, error-level bursts and template-rate changes become
anomalies. Pure: the Faust agent loads the state, calls ``observe`` and stores the state back."""

from __future__ import annotations

from kubestack.contract.base import Source
from kubestack.contract.events import Anomaly, LogBatch, Severity
from kubestack.models.logrates import WARMUP_WINDOWS, WINDOW_S, TemplateRates, is_error, is_informational
from kubestack.models.logtemplates import TemplateMiner
from kubestack.redaction import REDACTED, redact, redact_lines

CRITICAL_SCORE = 0.95
DETECTOR_PREFIX = "log/"
"""Every anomaly of this stage has a detector name starting with it: ``log/<signal kind>``."""


class ResourceLogs:
    def __init__(self, threshold: float, miner: TemplateMiner | None = None, rates: TemplateRates | None = None):
        self.threshold = threshold
        self.miner = miner or TemplateMiner()
        self.rates = rates or TemplateRates()
        # An error burst is flagged once per window, at the line whose score first reaches ``burst``: below the
        # threshold it would be flagged, dropped here, and never reported for that window.
        self.rates.burst = threshold

    def observe(self, batch: LogBatch, source: Source) -> list[Anomaly]:
        """The batch's anomalies; the line and template they carry are redacted with the batch as one record (a
        private key logged over several lines goes whole), only for a batch that has an anomaly."""
        anomalies = []
        redacted: list[str] = []
        for index, line in enumerate(batch.lines):
            mined = self.miner.add(line.line)
            ts = line.ts.timestamp()
            signals = self.rates.observe(ts, mined.template_id, mined.is_new, is_error(line.line),
                                         informational=is_informational(line.line))
            for signal in signals:
                if signal.score < self.threshold:
                    continue
                template = self.miner.template(int(signal.template_id[1:])) if signal.template_id else ""
                redacted = redacted or redact_lines([each.line for each in batch.lines])
                anomalies.append(Anomaly(
                    source=source, resource=batch.resource, tenant=batch.tenant, ts=line.ts,
                    detector=f"{DETECTOR_PREFIX}{signal.kind}", signal=signal.template_id or signal.kind,
                    score=round(signal.score, 4), window_start=line.ts, window_end=line.ts,
                    severity=Severity.CRITICAL if signal.score >= CRITICAL_SCORE else Severity.WARNING,
                    details={"template": REDACTED if redacted[index] == REDACTED else redact(template),
                             "detail": signal.detail, "line": redacted[index][:500],
                             "path": line.path}))
        return anomalies

    def to_state(self) -> dict:
        return {"miner": self.miner.to_state(), "rates": self.rates.to_state()}

    @classmethod
    def from_state(cls, state: dict | None, threshold: float, window_s: float = WINDOW_S,
                   warmup_windows: int = WARMUP_WINDOWS) -> ResourceLogs:
        """The stage of a resource from its table state; a new one rates templates over ``window_s`` windows and
        alerts once ``warmup_windows`` of them have passed."""
        if not state:
            return cls(threshold, rates=TemplateRates(window_s, warmup_windows))
        return cls(threshold, TemplateMiner.from_state(state["miner"]), TemplateRates.from_state(state["rates"]))
