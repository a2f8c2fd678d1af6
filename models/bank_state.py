"""One row of a :class:`~kubestack.models.bank.DetectorBank` as the bytes of
:meth:`LikelihoodDetector.to_state <kubestack.models.likelihood.LikelihoodDetector.to_state>` and back, so the
worker's table checkpoints restore into the bank and a bank's rows restore into a detector.

The byte layouts are the detector modules' own (``_PARAMS``, ``_STATE``, ``MAGIC`` of each); the column
numbers are :mod:`kubestack.models.bank_kernel`'s.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np

from kubestack.models import bank_kernel as k
from kubestack.models import baseline, detector, likelihood, recurrence, values
from kubestack.models.likelihood import LikelihoodDetector

_LIK = "<qqddd"
_LIK_SIZE = struct.calcsize(_LIK)
_SLOTS = values.SLOTS
_PROFILE = 2 * baseline.BINS
_TAILS = ((k.T_POINT, 12), (k.T_SHIFT, 10), (k.T_SPREAD, 7), (k.T_STUCK, 13))
_BOUND = 1 << 62
# the parameters a state carries that must be the bank's (its threshold is the bank's whatever the state says)
_CHECKED = np.arange(k.P_LEVEL, k.Q_GROW)


class Arrays(NamedTuple):
    """The state of ``rows`` series, one row each (see :mod:`~kubestack.models.bank_kernel`)."""

    F: np.ndarray
    I: np.ndarray
    LB: np.ndarray
    PROF: np.ndarray
    LAG: np.ndarray

    @classmethod
    def empty(cls, rows: int, buffers: int) -> Arrays:
        return cls(np.zeros((rows, k.NF)), np.zeros((rows, k.NI), np.int64), np.zeros((rows, buffers)),
                   np.zeros((rows, _PROFILE), np.float32), np.zeros((rows, k.LAG_MAX), np.float32))

    def grown(self, rows: int) -> Arrays:
        """The same rows in arrays of ``rows`` rows."""
        out = Arrays.empty(rows, self.LB.shape[1])
        for old, new in zip(self, out):
            new[:len(old)] = old
        return out

    def copy_row(self, src: Arrays, at: int, to: int) -> None:
        for mine, theirs in zip(self, src):
            mine[to] = theirs[at]


def parameters(template: LikelihoodDetector) -> np.ndarray:
    """The kernel's parameter vector of a detector (its own, its inner detector's, its baseline's)."""
    inner = template.inner
    p = np.empty(k.NP)
    p[:k.Q_MEMORY] = [float(getattr(template, name)) for name in likelihood.PARAMS]
    p[k.Q_MEMORY:k.Q_SCALE_ALPHA] = [float(getattr(inner, name)) for name in detector.PARAMS]
    p[k.Q_SCALE_ALPHA], p[k.Q_GAMMA], p[k.Q_GROW] = inner.base.scale_alpha, inner.base.gamma, inner.grow
    return p


def ladders(template: LikelihoodDetector) -> tuple[np.ndarray, np.ndarray]:
    """The tail models' ladders (levels, log levels, reference probabilities) side by side, and their slopes."""
    tails = [getattr(template.inner, name) for name in ("point", "shift", "spread", "stuck")]
    lad = np.array([[v for t in tails for v in getattr(t, row)] for row in ("levels", "loglevels", "p0")])
    return lad, np.array([t.top_slope for t in tails])


def buffers(p: np.ndarray) -> int:
    return int(p[k.P_SHORT] + p[k.P_LAG_SHORT] + p[k.P_DENSITY_SHORT])


def read_row(raw: bytes, a: Arrays, r: int) -> np.ndarray:
    """Row ``r`` of ``a`` from a ``LikelihoodDetector`` state; the state's parameter vector (without
    ``Q_GROW``, ``Q_SCALE_ALPHA``, ``Q_GAMMA`` checked against the caller's). ``ValueError`` or ``struct.error``
    for a state of another layout."""
    if not raw.startswith(likelihood.MAGIC):
        raise ValueError("not a LikelihoodDetector state of this version")
    F, I, LB, PROF, LAG = a
    p = np.full(k.NP, np.nan)
    at = len(likelihood.MAGIC)
    p[:k.Q_MEMORY] = struct.unpack_from(likelihood._PARAMS, raw, at)
    at += struct.calcsize(likelihood._PARAMS)
    (I[r, k.O_N], I[r, k.O_SINCE], I[r, k.O_PERIOD], F[r, k.O_FIRST_TS], lag_at, F[r, k.O_LAG_MEAN],
     F[r, k.O_EW_MEAN], F[r, k.O_EW_VAR], lag_len, F[r, k.O_SCALE], F[r, k.O_LOW], F[r, k.O_HIGH], armed,
     longest, outlived) = struct.unpack_from(likelihood._STATE, raw, at)
    I[r, k.O_LAG_AT], I[r, k.O_ARMED] = int(lag_at), armed != 0.0
    I[r, k.O_LONGEST], I[r, k.O_OUTLIVED] = int(longest), int(outlived)
    at += struct.calcsize(likelihood._STATE)
    off = 0
    for j, short in enumerate((p[k.P_SHORT], p[k.P_LAG_SHORT], p[k.P_DENSITY_SHORT])):
        short = int(short)
        (I[r, k.LK_AT + j], I[r, k.LK_N + j], F[r, k.LK + 3 * j], F[r, k.LK + 3 * j + 1],
         F[r, k.LK + 3 * j + 2]) = struct.unpack_from(_LIK, raw, at)
        at += _LIK_SIZE
        LB[r, off:off + short] = np.frombuffer(raw, "<f8", short, at)
        at, off = at + 8 * short, off + short
    size = int(lag_len)
    LAG[r, :size] = np.frombuffer(raw, "<f4", size, at)
    at += 4 * size
    if not raw.startswith(detector.MAGIC, at):
        raise ValueError("not a MetricDetector state of this version")
    at += len(detector.MAGIC)
    p[k.Q_MEMORY:k.Q_SCALE_ALPHA] = struct.unpack_from(detector._PARAMS, raw, at)
    at += struct.calcsize(detector._PARAMS)
    (I[r, k.M_N], F[r, k.M_CUS_POS], F[r, k.M_CUS_NEG], F[r, k.M_VAR], F[r, k.M_PREV], I[r, k.M_RUN],
     F[r, k.M_REPEAT], F[r, k.M_ALERT_S], I[r, k.M_SINCE], F[r, k.M_STAY], F[r, k.M_WEIGHT],
     F[r, k.M_TOTAL]) = struct.unpack_from(detector._STATE, raw, at)
    at += struct.calcsize(detector._STATE)
    for col, size in _TAILS:
        F[r, col:col + size] = np.frombuffer(raw, "<f8", size, at)
        at += 8 * size
    F[r, k.V_KEYS:k.V_PROBE_W + 1] = np.frombuffer(raw, "<f8", 3 * _SLOTS + 2, at)
    at += 8 * (3 * _SLOTS + 2)
    (F[r, k.C_LAST], F[r, k.C_ANCHOR], F[r, k.C_GAP], F[r, k.C_ON_TIME], F[r, k.C_SIZE],
     I[r, k.C_BEATS]) = struct.unpack_from(recurrence._STATE, raw, at)
    at += recurrence.Recurrence.state_size()
    (_, p[k.Q_SCALE_ALPHA], p[k.Q_GAMMA], _, I[r, k.B_N], F[r, k.B_FIRST_TS], F[r, k.B_LEVEL],
     F[r, k.B_SLEVEL], F[r, k.B_SCALE], F[r, k.B_SSCALE], F[r, k.B_QUANTUM], F[r, k.B_PREV],
     F[r, k.B_PREV_TS], F[r, k.B_COUNTED], _, F[r, k.B_SLOW]) = struct.unpack_from(baseline._HEAD, raw, at)
    at += struct.calcsize(baseline._HEAD)
    PROF[r] = np.frombuffer(raw, "<f4", _PROFILE, at)
    I[r, k.B_SEEN:k.B_SEEN + 2] = np.frombuffer(raw, np.uint8, 2, at + 4 * _PROFILE)
    F[r, k.B_DAY_START], I[r, k.B_DAY_BASE], I[r, k.B_DAY_LAST] = np.inf, 0, 0    # derived, as on restore
    return p


def check(p: np.ndarray, state: np.ndarray) -> None:
    """``ValueError`` unless a state's parameters are the bank's (its threshold may differ)."""
    mine, theirs = p[_CHECKED], state[_CHECKED]
    if not np.array_equal(mine, theirs):
        wrong = [int(i) for i in _CHECKED[mine != theirs]]
        raise ValueError(f"detector state parameters differ from the bank's (columns {wrong})")


def write_row(a: Arrays, r: int, p: np.ndarray) -> bytes:
    """Row ``r`` of ``a`` as ``LikelihoodDetector.to_state`` writes it, with the parameters ``p``."""
    F, I, LB, PROF, LAG = a
    f, i = F[r].tolist(), I[r].tolist()
    period = i[k.O_PERIOD]
    lag_len = period if period > 0 else 0
    parts = [likelihood.MAGIC, struct.pack(likelihood._PARAMS, *p[:k.Q_MEMORY].tolist()),
             struct.pack(likelihood._STATE, i[k.O_N], min(i[k.O_SINCE], _BOUND), period, f[k.O_FIRST_TS],
                         float(i[k.O_LAG_AT]), f[k.O_LAG_MEAN], f[k.O_EW_MEAN], f[k.O_EW_VAR], float(lag_len),
                         f[k.O_SCALE], f[k.O_LOW], f[k.O_HIGH], float(i[k.O_ARMED]), float(i[k.O_LONGEST]),
                         float(i[k.O_OUTLIVED]))]
    off = 0
    for j, short in enumerate((p[k.P_SHORT], p[k.P_LAG_SHORT], p[k.P_DENSITY_SHORT])):
        short = int(short)
        parts.append(struct.pack(_LIK, i[k.LK_AT + j], i[k.LK_N + j], *f[k.LK + 3 * j:k.LK + 3 * j + 3]))
        parts.append(LB[r, off:off + short].astype("<f8").tobytes())
        off += short
    parts += [LAG[r, :lag_len].astype("<f4").tobytes(), detector.MAGIC,
              struct.pack(detector._PARAMS, *p[k.Q_MEMORY:k.Q_SCALE_ALPHA].tolist()),
              struct.pack(detector._STATE, i[k.M_N], f[k.M_CUS_POS], f[k.M_CUS_NEG], f[k.M_VAR], f[k.M_PREV],
                          i[k.M_RUN], f[k.M_REPEAT], f[k.M_ALERT_S], min(i[k.M_SINCE], _BOUND), f[k.M_STAY],
                          f[k.M_WEIGHT], f[k.M_TOTAL]),
              F[r, k.T_POINT:k.V_PROBE_W + 1].astype("<f8").tobytes(),
              struct.pack(recurrence._STATE, f[k.C_LAST], f[k.C_ANCHOR], f[k.C_GAP], f[k.C_ON_TIME], f[k.C_SIZE],
                          i[k.C_BEATS]),
              struct.pack(baseline._HEAD, p[k.Q_ALPHA], p[k.Q_SCALE_ALPHA], p[k.Q_GAMMA], p[k.Q_REL], i[k.B_N],
                          f[k.B_FIRST_TS], f[k.B_LEVEL], f[k.B_SLEVEL], f[k.B_SCALE], f[k.B_SSCALE],
                          f[k.B_QUANTUM], f[k.B_PREV], f[k.B_PREV_TS], f[k.B_COUNTED], p[k.Q_SLOW_K], f[k.B_SLOW]),
              PROF[r].astype("<f4").tobytes(), I[r, k.B_SEEN:k.B_SEEN + 2].astype(np.uint8).tobytes()]
    return b"".join(parts)
