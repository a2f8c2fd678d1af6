"""The per-series online anomaly detector: a robust seasonal baseline, four tests on its residuals, each
judged by how rare its value is *for this series*, what the series' own values and clock excuse, and a quiet
period after an alert.

Tests on the standardised residual ``z`` of :class:`~kubestack.models.baseline.Baseline`:

- point: ``|z|`` (spikes, dips, the first points of any break);
- shift: a leaky two-sided CUSUM of ``z`` (level shifts, trend changes, drifts, seasonality breaks); the
  leak keeps a slowly lagging baseline from piling up evidence forever;
- variance: short-run mean of ``|z|`` (noise grows);
- stuck: the current run of identical values, weighted by how rarely the series repeats *this* value.

The first three go through a :class:`~kubestack.models.tail.TailModel` that turns a value into a surprise
(``-log10`` of how often this series reaches it); the stuck test is a surprise by construction, lowered by
its own tail model when this series often sits still for that long. The score is ``s / (s + half)`` of the
largest surprise ``s``, in [0, 1]. An alert (score at least ``threshold``, the score the worker alerts at)
empties the CUSUM, so one level shift is one alert rather than a stream of them, and scores are halved for
the next ``quiet`` points unless the surprise exceeds ``escalate`` times the one that raised the alert: a scorer such as NAB's counts the first
detection of an anomaly and punishes every repeat, people on call do the same, but a much larger event soon
after a small one must still be heard. A run of equal values that raised an alert is not announced again as
it grows longer. An alert that would have been raised during the warmup (scores are 0 then) still opens a
quiet period, so the first scored points do not re-announce a burst the detector was still learning from.

What live series at rest taught (``bench/anomaly/recorded``: Redis, MariaDB, PostgreSQL sampled every second):

- values a series keeps coming back to (:class:`~kubestack.models.values.ValueTable`): a value the series
  has taken a share ``p >= familiar`` of the time caps the surprise of the point, shift and variance tests at
  ``-log10 p`` (connection counts 1-2-3, integer levels: far in ``z``, not surprising); the stuck test uses
  how often the series stayed at *this* value (judged when the run starts, ``stay_prior`` pseudo-points of
  the overall repeat rate), so a memory gauge sitting still at its usual value, or a rate at 0 between rare
  events, is no stuck sensor;
- bursts on a clock (:class:`~kubestack.models.recurrence.Recurrence`): a point with ``|z| >= burst_z`` that
  keeps the period of the previous bursts (8 intervals to an hour: statistics flushes, checkpoints, vacuums)
  and is no more than twice their usual size has its point surprise capped at ``cycle_cap``; a burst off
  the beat, or much larger, is judged as before.

The tail models and the value table forget on one shared clock (a point weighs ``2 ** (1 / memory)`` times
the one before), so an update costs one multiplication for all of them.

Defaults were chosen on the development split of ``bench/anomaly`` only (its operations series, its NAB-like
families, and the dev half of the recorded real series); never on the holdout split, never on NAB data.
Tried and left out (worse on dev): a slow drift CUSUM beside the shift test, a floor on the scale at a share
of the typical non-zero change.
"""

from __future__ import annotations

import math
import struct

from kubestack.models.baseline import Baseline
from kubestack.models.recurrence import Recurrence
from kubestack.models.tail import RESCALE, TailModel, laplace_tail
from kubestack.models.values import ValueTable

POINT = (3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 17.0, 22.0, 30.0, 40.0, 60.0)
SHIFT = (4.0, 6.0, 8.0, 11.0, 15.0, 20.0, 30.0, 45.0, 70.0, 100.0)
VAR = (1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.0)
STUCK = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 13.0, 17.0, 22.0, 30.0)
_STUCK_TAIL = tuple(-u * math.log(10.0) for u in STUCK)      # a run as rare as an i.i.d. one would be
_POINT_TAIL = laplace_tail(POINT, 1.0)
_SHIFT_TAIL = laplace_tail(SHIFT, 3.0)
_VAR_TAIL = laplace_tail(VAR, 0.4, 1.0)
PARAMS = ("memory", "threshold", "quiet", "warmup", "k", "alpha", "prior", "half", "leak", "escalate", "rel",
          "slow_k", "familiar", "burst_z", "cycle_cap", "stay_prior")
MAGIC = b"KSMD3"                 # a state of another layout fails loudly instead of resuming wrongly
_PARAMS = f"<{len(PARAMS)}d"
_STATE = "<qddddqddqddd"


class MetricDetector:
    __slots__ = (*PARAMS, "base", "n", "cus_pos", "cus_neg", "var", "run", "prev", "repeat", "since_alert",
                 "point", "shift", "spread", "stuck", "alert_s", "values", "clock", "stay",
                 "weight", "total", "grow")

    def __init__(self, memory: float = 800, threshold: float = 0.5, quiet: int = 200, warmup: int = 100,
                 k: float = 0.5, alpha: float = 0.1, prior: float = 10.0, half: float = 3.0, leak: float = 0.9,
                 escalate: float = 1.5, rel: float = 1e-6, slow_k: float = 0.4, familiar: float = 0.02,
                 burst_z: float = 5.0, cycle_cap: float = 2.0, stay_prior: float = 5.0) -> None:
        self.memory, self.threshold, self.quiet, self.warmup = memory, threshold, int(quiet), int(warmup)
        self.k, self.alpha, self.prior, self.half = k, alpha, prior, half
        self.leak, self.escalate, self.rel, self.slow_k = leak, escalate, rel, slow_k
        self.familiar, self.burst_z, self.cycle_cap, self.stay_prior = familiar, burst_z, cycle_cap, stay_prior
        self.alert_s = 0.0
        self.base = Baseline(alpha=alpha, rel=rel, slow_k=slow_k)
        self.n = 0
        self.cus_pos = self.cus_neg = 0.0
        self.var = 1.0
        self.run = 0
        self.prev = math.nan
        self.repeat = 0.5
        self.since_alert = 1 << 30
        self.stay = 0.5                # chance to repeat the value of the current run, judged at its start
        self.weight = 1.0              # forgetting shared by the tail models and the value table: the newest
        self.total = 0.0               # point weighs ``grow`` times the one before, ``total`` sums them all
        self.grow = 2.0 ** (1.0 / memory)
        self.point = TailModel(POINT, _POINT_TAIL, prior)
        self.shift = TailModel(SHIFT, _SHIFT_TAIL, prior)
        self.spread = TailModel(VAR, _VAR_TAIL, prior)
        self.stuck = TailModel(STUCK, _STUCK_TAIL, prior)
        self.values = ValueTable()
        self.clock = Recurrence()

    def update(self, ts: float, value: float) -> float:
        """The score of this point in [0, 1], from this point and the ones before it only."""
        base = self.base
        prev_ts = base.prev_ts
        z = base.update(ts, value)
        self.n = n = self.n + 1
        az = z if z >= 0 else -z
        c = 4.0 if z > 4.0 else -4.0 if z < -4.0 else z
        leak, k = self.leak, self.k
        pos = leak * self.cus_pos + c - k
        neg = leak * self.cus_neg - c - k
        self.cus_pos = pos = pos if pos > 0.0 else 0.0
        self.cus_neg = neg = neg if neg > 0.0 else 0.0
        cus = pos if pos > neg else neg
        self.var = var = self.var + 0.1 * ((az if az < 6.0 else 6.0) - self.var)
        same = value == self.prev
        self.prev = value
        total = self.total
        self.weight = w = self.weight * self.grow
        self.total = total + w
        share = self.values.observe(value, same, w, total) if total > 0.0 else 0.0
        total += w
        run = 0.0
        if same:
            self.run = r = self.run + 1
            if r == 1:
                # how likely this series is to stay at this value, judged before the run itself counts
                self.stay = self.values.stay(value, self.repeat, self.stay_prior * w)
            # a series that has been still for most of its life is constant, not stuck (a rate of rare events
            # at 0 after one blip): its run is no evidence of anything; nor is a run already alerted on
            p = self.stay
            if 2 * (r + 1) < n and p > 0.0:
                if p < self.repeat:
                    p = self.repeat
                run = r * -math.log10(1e-4 if p < 1e-4 else 0.999 if p > 0.999 else p)
        else:
            self.run = 0
        # each test is skipped below the first level of its ladder (POINT, SHIFT, VAR, STUCK): no surprise there
        s = 0.0
        if az >= 3.0:
            tail = self.point
            s = tail.surprise(az, w, total)
            if (az >= self.burst_z and self.clock.burst(ts, ts - prev_ts, abs(value - base.level))
                    and s > self.cycle_cap):
                s = self.cycle_cap
            tail.add(az, w)
        if cus >= 4.0:
            tail = self.shift
            s2 = tail.surprise(cus, w, total)
            if s2 > s:
                s = s2
            tail.add(cus, w)
        if var >= 1.6:
            tail = self.spread
            s2 = tail.surprise(var, w, total)
            if s2 > s:
                s = s2
            tail.add(var, w)
        if s > 0.0 and share >= self.familiar:
            cap = -math.log10(share)
            if s > cap:
                s = cap
        if run >= 1.0:
            tail = self.stuck
            s2 = tail.surprise(run, w, total)
            if run < s2:
                s2 = run
            if s2 > s:
                s = s2
            tail.add(run, w)
        self.repeat += 0.01 * (same - self.repeat)
        if w > RESCALE:
            self._rescale(w)
        score = s / (s + self.half)
        self.since_alert += 1
        if self.since_alert <= self.quiet and s <= self.escalate * self.alert_s:
            score *= 0.5
        elif score >= self.threshold:
            if run > 0.0:
                self.stay = 0.0        # this run has been told: growing longer, it is the same anomaly
            self.since_alert = 0
            self.alert_s = s
            self.cus_pos = self.cus_neg = 0.0
        return score if n > self.warmup else 0.0

    def _rescale(self, w: float) -> None:
        for tail in (self.point, self.shift, self.spread, self.stuck):
            tail.rescale(w)
        self.values.rescale(w)
        self.total /= w
        self.weight = 1.0

    def to_state(self) -> bytes:
        """Everything needed to resume exactly where this detector is, in about 1.3 kilobytes."""
        params = struct.pack(_PARAMS, *(float(getattr(self, p)) for p in PARAMS))
        own = struct.pack(_STATE, self.n, self.cus_pos, self.cus_neg, self.var, self.prev, self.run,
                          self.repeat, self.alert_s, min(self.since_alert, 1 << 62), self.stay,
                          self.weight, self.total)
        tails = b"".join(t.to_state() for t in (self.point, self.shift, self.spread, self.stuck))
        return b"".join((MAGIC, params, own, tails, self.values.to_state(),
                         self.clock.to_state(), self.base.to_state()))

    @classmethod
    def from_state(cls, raw: bytes) -> MetricDetector:
        """The detector ``to_state`` saved; ``ValueError`` (or ``struct.error``) for a state of another layout."""
        if not raw.startswith(MAGIC):
            raise ValueError("not a MetricDetector state of this version")
        at = len(MAGIC)
        det = cls(**dict(zip(PARAMS, struct.unpack_from(_PARAMS, raw, at))))
        at += struct.calcsize(_PARAMS)
        (det.n, det.cus_pos, det.cus_neg, det.var, det.prev, det.run, det.repeat, det.alert_s,
         det.since_alert, det.stay, det.weight, det.total) = struct.unpack_from(_STATE, raw, at)
        at += struct.calcsize(_STATE)
        for tail in (det.point, det.shift, det.spread, det.stuck):
            at += tail.restore(raw[at:])
        at += det.values.restore(raw[at:])
        det.clock = Recurrence.from_state(raw[at:])
        at += Recurrence.state_size()
        det.base = Baseline.from_state(raw[at:])
        return det
