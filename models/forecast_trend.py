"""The cheap online part of the exhaustion forecaster: an exponentially weighted linear trend and a detector
of periodic emptying (log rotation, compaction, cache expiry).

``EwTrend`` is a weighted least-squares line whose weights decay with age (time constant ``tau_s``): O(1)
per sample, six sums, time kept relative to the last sample so that the sums stay well conditioned.
``ResetDetector`` watches the drawdown from the peak of the current cycle: a fall that is large against
both the sample-to-sample noise and the height of the cycle is a reset (the series emptied).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RESET_MEMORY = 8   # resets remembered (times and peaks)


@dataclass(frozen=True)
class Line:
    level: float      # fitted value at the last sample
    slope: float      # per second
    sigma: float      # residual standard deviation around the line
    slope_se: float   # standard error of the slope
    n_eff: float      # effective number of samples behind the fit


class EwTrend:
    """Exponentially weighted least squares of value on time; ``line()`` is None until two samples."""

    __slots__ = ("tau_s", "last_ts", "ref", "s0", "sw2", "st", "sv", "stt", "stv", "svv")

    def __init__(self, tau_s: float) -> None:
        self.tau_s = tau_s
        self.clear()

    def clear(self) -> None:
        self.last_ts = math.nan
        self.ref = 0.0
        self.s0 = self.sw2 = self.st = self.sv = self.stt = self.stv = self.svv = 0.0

    def update(self, ts: float, value: float) -> None:
        if self.s0 == 0.0:
            self.ref, self.last_ts = value, ts
        dt = ts - self.last_ts
        if dt > 0:
            d = math.exp(-dt / self.tau_s)
            s0, st = self.s0 * d, self.st * d
            self.stt = (self.stt * d) - 2 * dt * st + dt * dt * s0
            self.stv = self.stv * d - dt * self.sv * d
            self.sv, self.svv, self.sw2 = self.sv * d, self.svv * d, self.sw2 * d * d
            self.st, self.s0 = st - dt * s0, s0
            self.last_ts = ts
        v = value - self.ref
        self.s0 += 1.0
        self.sw2 += 1.0
        self.sv += v
        self.svv += v * v

    def line(self) -> Line | None:
        s0 = self.s0
        stt_c = self.stt - self.st * self.st / s0 if s0 else 0.0
        if s0 < 2.0 or stt_c <= 0.0:
            return None
        stv_c = self.stv - self.st * self.sv / s0
        svv_c = self.svv - self.sv * self.sv / s0
        slope = stv_c / stt_c
        level = self.sv / s0 - slope * self.st / s0 + self.ref
        n_eff = s0 * s0 / self.sw2
        var = max(svv_c - slope * stv_c, 0.0) / s0 * (n_eff / max(n_eff - 2.0, 1.0))
        return Line(level, slope, math.sqrt(var), math.sqrt(var / stt_c), n_eff)

    def to_tuple(self) -> tuple[float, ...]:
        return (self.last_ts, self.ref, self.s0, self.sw2, self.st, self.sv, self.stt, self.stv, self.svv)

    def load(self, values: tuple[float, ...]) -> None:
        (self.last_ts, self.ref, self.s0, self.sw2, self.st, self.sv, self.stt, self.stv, self.svv) = values


class EwDrift:
    """Exponentially weighted mean and variance of the steps between samples; ``t()`` is the t-statistic of
    the mean step. A smooth but steady rise (every step up, at a varying rate) is a strong drift even when
    its residuals around a line are autocorrelated; a wandering series has no drift."""

    __slots__ = ("tau_s", "prev", "last_ts", "w", "w2", "mean", "var")

    def __init__(self, tau_s: float) -> None:
        self.tau_s = tau_s
        self.clear()

    def clear(self) -> None:
        self.prev = self.last_ts = math.nan
        self.w = self.w2 = self.mean = self.var = 0.0

    def update(self, ts: float, value: float) -> None:
        if not math.isnan(self.prev) and ts > self.last_ts:
            d = math.exp(-(ts - self.last_ts) / self.tau_s)
            step = value - self.prev
            self.w, self.w2 = self.w * d + 1.0, self.w2 * d * d + 1.0
            delta = step - self.mean
            self.mean += delta / self.w
            self.var = (1 - 1 / self.w) * (self.var + delta * delta / self.w)
        self.prev, self.last_ts = value, ts

    def t(self) -> float:
        if self.w < 3 or self.var <= 0:
            return 0.0
        n_eff = self.w * self.w / self.w2
        return self.mean / math.sqrt(self.var / n_eff)

    def to_tuple(self) -> tuple[float, ...]:
        return (self.prev, self.last_ts, self.w, self.w2, self.mean, self.var)

    def load(self, values: tuple[float, ...]) -> None:
        self.prev, self.last_ts, self.w, self.w2, self.mean, self.var = values


class ResetDetector:
    """Finds the moments a series empties: a drawdown from the cycle's peak larger than ``reset_sigma`` noise
    units and than ``reset_frac`` of the cycle's height. Keeps the last resets' times and peaks."""

    __slots__ = ("reset_sigma", "reset_frac", "noise", "prev", "peak", "low", "cycle_start", "resets")

    def __init__(self, reset_sigma: float, reset_frac: float) -> None:
        self.reset_sigma, self.reset_frac = reset_sigma, reset_frac
        self.noise = 0.0                    # EW mean absolute step, winsorised
        self.prev = self.peak = self.low = self.cycle_start = math.nan
        self.resets: list[tuple[float, float, float]] = []   # (ts, peak, length of the cycle it ended)

    def update(self, ts: float, value: float) -> bool:
        """True when this sample completes a reset (the online trend should then start over)."""
        if math.isnan(self.prev):
            self.prev = self.peak = self.low = value
            self.cycle_start = ts
            return False
        step = abs(value - self.prev)
        self.prev = value
        drawdown, height = self.peak - value, self.peak - self.low
        floor = self.reset_sigma * self.noise
        if self.noise > 0 and drawdown > floor and height > floor and drawdown > self.reset_frac * height:
            self.resets = [*self.resets, (ts, self.peak, ts - self.cycle_start)][-RESET_MEMORY:]
            self.peak = self.low = value
            self.cycle_start = ts
            return True
        cap = 4 * self.noise if self.noise > 0 else step
        self.noise += 0.05 * (min(step, cap) - self.noise)
        self.peak, self.low = max(self.peak, value), min(self.low, value)
        return False

    def longest_cycle(self) -> float:
        return max(length for _, _, length in self.resets) if self.resets else math.inf

    def to_tuple(self) -> tuple[float, ...]:
        flat = [x for reset in self.resets for x in reset]
        return (self.noise, self.prev, self.peak, self.low, self.cycle_start, *flat)

    def load(self, values: tuple[float, ...]) -> None:
        self.noise, self.prev, self.peak, self.low, self.cycle_start = values[:5]
        rest = values[5:]
        self.resets = [tuple(rest[i:i + 3]) for i in range(0, len(rest), 3)]
