"""Many series' :class:`~kubestack.models.likelihood.LikelihoodDetector` at once: the state of every series in
numpy arrays, one row each, and one compiled call (:mod:`~kubestack.models.bank_kernel`) that takes a new point
for each of a set of rows and returns their scores.

The scores are the detector's own, bit for bit (``tests/test_bank.py`` runs both side by side on recorded
and development series), and a row's state is the detector's state bytes (:mod:`~kubestack.models.bank_state`),
so a table checkpoint written by either restores into the other. What changes is the cost: the per-point
Python of the detector and its five parts becomes one loop in machine code over the rows of a call
(``bench/detector/bank.py``).

    bank = DetectorBank(threshold=0.5)
    rows = bank.rows(keys)                  # a row per series key, new rows for new keys
    scores = bank.update(rows, ts, values)  # one point per row, in order (a row may come twice)
    raw = bank.export(key)                  # == LikelihoodDetector.to_state() of the same history
    bank.adopt(key, raw)                    # a checkpoint back into a row
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np

from kubestack.models import bank_kernel as k
from kubestack.models.bank_state import Arrays, buffers, check, ladders, parameters, read_row, write_row
from kubestack.models.likelihood import LikelihoodDetector


class DetectorBank:
    """``LikelihoodDetector(threshold, **params)`` for every series key, as rows of shared arrays."""

    def __init__(self, threshold: float = 0.5, capacity: int = 64, **params: float) -> None:
        template = LikelihoodDetector(threshold=threshold, **params)
        self.params = parameters(template)
        self._ladder, self._slopes = ladders(template)
        self._fresh = Arrays.empty(1, buffers(self.params))
        read_row(template.to_state(), self._fresh, 0)
        k.set_scale(0, self._fresh.F[0, k.O_SCALE], self.params, self._fresh.F)
        self._scratch = Arrays.empty(1, buffers(self.params))
        self._arrays = Arrays.empty(max(1, capacity), buffers(self.params))
        self._keys: dict[Hashable, int] = {}

    @property
    def threshold(self) -> float:
        """The score every row alerts and quiets at (the worker's); it may change, as a restored detector's."""
        return float(self.params[k.P_THRESHOLD])

    @threshold.setter
    def threshold(self, threshold: float) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold {threshold} must lie in (0, 1]")
        self.params[k.P_THRESHOLD] = threshold

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def keys(self) -> Iterable[Hashable]:
        return self._keys.keys()

    def rows(self, keys: Iterable[Hashable]) -> np.ndarray:
        """The row of each key; a key not seen before gets a fresh detector's row."""
        index = self._keys
        keys = keys if isinstance(keys, list | tuple) else list(keys)
        try:
            return np.array([index[key] for key in keys], np.int64)
        except KeyError:
            return np.array([index[key] if key in index else self._new(key) for key in keys], np.int64)

    def update(self, rows: np.ndarray, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The score of ``values[i]`` at ``ts[i]`` (epoch seconds) for row ``rows[i]``, as
        ``LikelihoodDetector.update`` gives it; points of one row are taken in the order given. Values must be
        finite (the worker drops the others before any detector)."""
        # contiguous 1-d arrays of these types: any other layout would compile the kernel again
        rows = np.ascontiguousarray(rows, np.int64)
        ts, values = np.ascontiguousarray(ts, np.float64), np.ascontiguousarray(values, np.float64)
        if rows.ndim != 1:
            raise ValueError(f"rows of {rows.ndim} dimensions")
        if not len(rows) == len(ts) == len(values):
            raise ValueError(f"{len(rows)} rows, {len(ts)} stamps and {len(values)} values")
        out = np.empty(len(rows))
        a = self._arrays
        k.update_rows(rows, ts, values, out, len(self._keys), self.params, self._ladder, self._slopes, a.F, a.I,
                      a.LB, a.PROF, a.LAG)
        return out

    def export(self, key: Hashable) -> bytes:
        """The state of ``key``'s row, byte for byte what ``LikelihoodDetector.to_state`` gives."""
        return write_row(self._arrays, self._keys[key], self.params)

    def adopt(self, key: Hashable, raw: bytes) -> int:
        """``key``'s row from a ``LikelihoodDetector`` state (alerting at the bank's threshold from now on, as
        ``registry.restore`` does); its row. ``ValueError`` or ``struct.error`` for a state of another layout
        or other parameters, and then the bank is unchanged."""
        state = read_row(raw, self._scratch, 0)
        check(self.params, state)
        k.set_scale(0, self._scratch.F[0, k.O_SCALE], self.params, self._scratch.F)
        row = self._keys[key] if key in self._keys else self._new(key)
        self._arrays.copy_row(self._scratch, 0, row)
        return row

    def _new(self, key: Hashable) -> int:
        row = len(self._keys)
        if row >= len(self._arrays.F):
            self._arrays = self._arrays.grown(2 * len(self._arrays.F))
        self._arrays.copy_row(self._fresh, 0, row)
        self._keys[key] = row
        return row
