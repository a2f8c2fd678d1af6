"""What a signal says about the cause of an incident: the cause it names, how much weight it carries, what kind of
evidence it is, and which of a resource's signals leads. Shared by the root-cause stage (``rootcause``) and the
proposals (``proposals``)."""

from __future__ import annotations

from collections.abc import Iterable

from kubestack.agents.collector import TARGET_DOWN
from kubestack.contract.events import IncidentSignal, Severity, SignalKind
from kubestack.pipeline.correlation import METRIC_DETECTOR
from kubestack.plugins.registry import symptom_rules

CONFIG_RISK = "config-risk"
LOG_DETECTOR = "log/"
_FINDING = {Severity.CRITICAL: 2.0, Severity.WARNING: 1.5, Severity.INFO: 0.5}
SYMPTOM_DISCOUNT = 0.2
"""Taken off a symptom's weight: a saturation or change finding of the same severity on the same resource is the
likelier cause."""


def is_symptom(rule: str) -> bool:
    """Whether ``rule`` says what clients feel (slow, blocked, busy) rather than a cause, as its plugin declares."""
    return rule in symptom_rules()


def cause_of(signal: IncidentSignal) -> str:
    """The cause a signal names: the rule id of a finding or a config risk, '<metric> exhaustion' of a forecast,
    the detector and signal of an anomaly."""
    if signal.kind == SignalKind.PREDICTION:
        return f"{signal.name.split('{')[0]} exhaustion"
    if signal.name.startswith(f"{CONFIG_RISK}:"):
        return signal.name.split(":", 1)[1]
    if signal.name.startswith(LOG_DETECTOR) and signal.details.get("template"):
        return f"{signal.name.split(':', 1)[0]}: {signal.details['template']}"[:253]
    return signal.name


def weight(signal: IncidentSignal) -> float:
    """A risky change weighs most, then a target down, findings by severity, forecasts, anomalies by score."""
    if signal.name.startswith(f"{CONFIG_RISK}:"):
        return 3.0
    if signal.kind == SignalKind.FINDING:
        if signal.name == TARGET_DOWN:
            return 2.5
        return _FINDING[signal.severity] - (SYMPTOM_DISCOUNT if is_symptom(signal.name) else 0.0)
    if signal.kind == SignalKind.PREDICTION:
        return 1.2
    return 0.5 + 0.5 * (signal.score or 0.0)


def lead(signals: Iterable[IncidentSignal]) -> IncidentSignal:
    """The signal that names a resource's cause: the weightiest, the earliest of equals."""
    return max(signals, key=lambda s: (weight(s), -s.first_seen.timestamp()))


def evidence_kind(signal: IncidentSignal) -> str:
    """What kind of evidence a signal is: config, finding, forecast, metric, log or (another detector's) anomaly.
    Signals of one kind on one resource mostly tell one story (ten series of a full cache moved together)."""
    if signal.name.startswith(f"{CONFIG_RISK}:"):
        return "config"
    if signal.kind == SignalKind.FINDING:
        return "finding"
    if signal.kind == SignalKind.PREDICTION:
        return "forecast"
    if signal.name.startswith(METRIC_DETECTOR):
        return "metric"
    return "log" if signal.name.startswith(LOG_DETECTOR) else "anomaly"


def metric_of(signal: IncidentSignal) -> str:
    """The metric a signal is about (a detector's anomaly names it in its details); otherwise its name."""
    return str(signal.details.get("metric") or signal.name)
