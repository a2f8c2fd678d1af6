"""What a signal says about the cause of an incident: the cause it names and how much weight it carries as a lead.
Shared by the ranking (``diagnosis``) and the proposals (``proposals``)."""

from __future__ import annotations

from kubestack.agents.collector import TARGET_DOWN
from kubestack.contract.events import IncidentSignal, Severity, SignalKind
from kubestack.plugins.registry import symptom_rules

CONFIG_RISK = "config-risk"
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
    if signal.name.startswith("log/") and signal.details.get("template"):
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
