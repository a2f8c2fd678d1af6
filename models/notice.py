"""The notice policy for exhaustion forecasts: when to warn, escalate, update and withdraw.

Pure and shared by the stream stage and the evaluation. One ``NoticePolicy`` per series; feed it each
``Forecast`` with its sample time, it returns a ``NoticeDecision``::

    policy = NoticePolicy(NoticeParams(warning_s=86400, critical_s=14400))
    decision = policy.step(ts, forecast)   # status: new | updated | withdrawn | unchanged; severity
    state = policy.to_state()              # a JSON-able dict; NoticePolicy.from_state(state, params)

Rules (the due time is the forecast's early bound, ``lower_bound``: an operator wants to hear of the
credible early end, not only the likely one):

- a notice opens ("new") once the forecasts have been due within ``warning_s`` (severity "warning") or
  ``critical_s`` ("critical") for ``confirm_s`` without a break;
- an open notice escalates to critical at once, and is "updated" when its likely time moves by more than
  ``update_rel`` of the time left or ``update_min_s``, whichever is larger;
- it is withdrawn only once the forecasts have not held it for ``clear_s`` without a break (no exhaustion
  foreseen, or the due time beyond ``clear_factor`` x ``warning_s``); it drops back from critical to warning
  the same way past ``clear_factor`` x ``critical_s``. This hysteresis keeps a notice from flapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubestack.models.forecast import Forecast

SEVERITIES = (None, "warning", "critical")


@dataclass(frozen=True)
class NoticeParams:
    warning_s: float = 86_400.0
    critical_s: float = 14_400.0
    confirm_s: float = 900.0
    update_rel: float = 0.1
    update_min_s: float = 3_600.0
    clear_factor: float = 1.5
    clear_s: float = 3 * 3_600.0


@dataclass(frozen=True)
class NoticeDecision:
    status: str                    # "new", "updated", "withdrawn", "unchanged"
    severity: str | None           # the notice's severity after this step (None: no notice open)
    exhaustion_at: float | None    # the forecast behind the decision
    lower_bound: float | None
    confidence: float


class NoticePolicy:
    def __init__(self, params: NoticeParams | None = None) -> None:
        self.params = params or NoticeParams()
        self.severity: str | None = None
        self.published_at: float | None = None   # likely time (or early bound) last published
        self.pending: float | None = None         # since when the forecasts would open a notice
        self.failing: float | None = None         # since when they no longer hold it
        self.easing: float | None = None          # since when they are past the critical hysteresis

    def _due_severity(self, ts: float, fc: Forecast, factor: float) -> str | None:
        if fc.lower_bound is None:
            return None
        due = fc.lower_bound - ts
        if due <= self.params.critical_s * factor:
            return "critical"
        return "warning" if due <= self.params.warning_s * factor else None

    def step(self, ts: float, fc: Forecast) -> NoticeDecision:
        p = self.params
        now = self._due_severity(ts, fc, 1.0)
        if self.severity is None:
            self.pending = (ts if self.pending is None else self.pending) if now else None
            if now and ts - self.pending >= p.confirm_s:
                self.severity, self.pending, self.failing, self.easing = now, None, None, None
                return self._publish("new", fc)
            return self._decision("unchanged", fc)
        held = self._due_severity(ts, fc, p.clear_factor)
        self.failing = None if held else (ts if self.failing is None else self.failing)
        if self.failing is not None and ts - self.failing >= p.clear_s:
            self.severity, self.published_at, self.failing, self.easing = None, None, None, None
            return self._decision("withdrawn", fc)
        if held is None:
            return self._decision("unchanged", fc)
        if now == "critical" and self.severity == "warning":
            self.severity, self.easing = "critical", None
            return self._publish("updated", fc)
        if self.severity == "critical":
            self.easing = (ts if self.easing is None else self.easing) if held == "warning" else None
            if self.easing is not None and ts - self.easing >= p.clear_s:
                self.severity, self.easing = "warning", None
                return self._publish("updated", fc)
        target = fc.exhaustion_at if fc.exhaustion_at is not None else fc.lower_bound
        if self.published_at is not None and target is not None:
            threshold = max(p.update_rel * max(self.published_at - ts, 0.0), p.update_min_s)
            if abs(target - self.published_at) > threshold:
                return self._publish("updated", fc)
        return self._decision("unchanged", fc)

    def _publish(self, status: str, fc: Forecast) -> NoticeDecision:
        self.published_at = fc.exhaustion_at if fc.exhaustion_at is not None else fc.lower_bound
        return self._decision(status, fc)

    def _decision(self, status: str, fc: Forecast) -> NoticeDecision:
        return NoticeDecision(status, self.severity, fc.exhaustion_at, fc.lower_bound, fc.confidence)

    def to_state(self) -> dict:
        return {"severity": self.severity, "published_at": self.published_at, "pending": self.pending,
                "failing": self.failing, "easing": self.easing}

    @classmethod
    def from_state(cls, state: dict, params: NoticeParams | None = None) -> NoticePolicy:
        policy = cls(params)
        policy.severity, policy.published_at = state["severity"], state["published_at"]
        policy.pending, policy.failing, policy.easing = state["pending"], state["failing"], state["easing"]
        return policy
