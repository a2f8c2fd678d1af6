"""Per-instance anomaly detection over several metrics at once, for combinations that are each normal alone.

A river ``HalfSpaceTrees`` forest over the instance's metrics, with explicit limits per feature (the trees
split the box the limits draw; without them the first window decides it and later values fall outside).
Values are clipped to the limits, so an out-of-range value lands in the box's edge cells, which are rare
and therefore score high. The score of a sample is computed before the forest learns from it.
"""

from __future__ import annotations

import pickle

from river.anomaly import HalfSpaceTrees


class InstanceDetector:
    __slots__ = ("limits", "forest", "seen", "warmup")

    def __init__(self, limits: dict[str, tuple[float, float]], n_trees: int = 25, height: int = 3,
                 window_size: int = 250, seed: int = 42) -> None:
        self.limits = dict(limits)
        self.forest = HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window_size,
                                     limits=self.limits, seed=seed)
        self.seen = 0
        self.warmup = window_size

    def update(self, ts: float, values: dict[str, float]) -> float:
        """The score in [0, 1] of this sample of the instance's metrics (missing metrics sit mid-range)."""
        x = {}
        for name, (lo, hi) in self.limits.items():
            v = values.get(name, (lo + hi) / 2)
            x[name] = lo if v < lo else hi if v > hi else v
        score = self.forest.score_one(x) if self.seen >= self.warmup else 0.0
        self.forest.learn_one(x)
        self.seen += 1
        return score

    def to_state(self) -> bytes:
        return pickle.dumps((self.limits, self.forest, self.seen, self.warmup), protocol=5)

    @classmethod
    def from_state(cls, raw: bytes) -> InstanceDetector:
        det = cls.__new__(cls)
        det.limits, det.forest, det.seen, det.warmup = pickle.loads(raw)  # noqa: S301 (our own state)
        return det
