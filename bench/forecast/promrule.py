"""The standard Prometheus disk-full rule, replayed faithfully on a series:

    - alert: WillFillIn24h
      expr: predict_linear(used[6h], 24 * 3600) >= capacity      # (or: free predicted < 0)
      for: 1h

``predict_linear`` is an ordinary least-squares line over the samples of the last 6 h, evaluated 24 h after
the evaluation time (Prometheus centres the regression on the evaluation timestamp). The rule is evaluated
at every sample; the alert is pending while the expression holds, fires once it has held for ``for``, and
resolves at the first evaluation where it no longer holds.
"""

from __future__ import annotations

from collections import deque


class PredictLinearRule:
    def __init__(self, window_s: float = 6 * 3600, ahead_s: float = 24 * 3600, for_s: float = 3600) -> None:
        self.window_s, self.ahead_s, self.for_s = window_s, ahead_s, for_s
        self.samples: deque[tuple[float, float]] = deque()
        self.active_since: float | None = None
        self.firing = False

    def line(self, now: float) -> tuple[float, float] | None:
        """(intercept at ``now``, slope) of the least-squares line over the window, None below 2 samples."""
        n = len(self.samples)
        if n < 2:
            return None
        sx = sy = sxx = sxy = 0.0
        for t, v in self.samples:
            x = t - now
            sx, sy, sxx, sxy = sx + x, sy + v, sxx + x * x, sxy + x * v
        denom = n * sxx - sx * sx
        if denom == 0:
            return None
        slope = (n * sxy - sx * sy) / denom
        return sy / n - slope * sx / n, slope

    def predict(self, now: float, at: float) -> float | None:
        line = self.line(now)
        return None if line is None else line[0] + line[1] * (at - now)

    def step(self, ts: float, value: float, capacity: float) -> str:
        """"fired", "resolved" or "" (nothing changed)."""
        self.samples.append((ts, value))
        while self.samples and self.samples[0][0] < ts - self.window_s:
            self.samples.popleft()
        predicted = self.predict(ts, ts + self.ahead_s)
        if predicted is None or predicted < capacity:
            self.active_since = None
            if self.firing:
                self.firing = False
                return "resolved"
            return ""
        if self.active_since is None:
            self.active_since = ts
        if not self.firing and ts - self.active_since >= self.for_s:
            self.firing = True
            return "fired"
        return ""
