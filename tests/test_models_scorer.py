"""The NAB-style scorer of bench/anomaly on hand-checked cases, and the dev-set generator's determinism."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "anomaly"


def load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"anomaly_bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module          # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


scorer = load("scorer")
generate = load("generate")


def test_windows_are_centred_and_sized_by_the_anomaly_count() -> None:
    assert scorer.windows(1000, [500]) == [(450, 550)]
    assert scorer.windows(1000, [300, 700]) == [(275, 325), (675, 725)]
    assert scorer.windows(1000, [500, 520]) == [(475, 545)]          # overlapping windows merge
    assert scorer.probation(1000) == 150 and scorer.probation(20000) == 750


def test_null_perfect_and_one_false_positive() -> None:
    onsets = [[500]]
    null = np.zeros(1000)
    perfect = np.zeros(1000)
    perfect[450] = 1.0                                               # left edge of the window
    assert scorer.evaluate([null], onsets, threshold=0.5).score == 0.0
    assert scorer.evaluate([perfect], onsets, threshold=0.5).score == pytest.approx(100.0)
    late = perfect.copy()
    late[450], late[540] = 0.0, 1.0
    reward = (2 / (1 + math.exp(5 * -11 / 101)) - 1) / (2 / (1 + math.exp(-5)) - 1)   # 11 of 101 points left
    assert scorer.evaluate([late], onsets, threshold=0.5).score == pytest.approx(100 * (1 + reward) / 2)
    extra = perfect.copy()
    extra[300] = 1.0                                                 # FP before any window: -0.11
    assert scorer.evaluate([extra], onsets, threshold=0.5).score == pytest.approx(100 * (2 - 0.11) / 2)
    probation = perfect.copy()
    probation[100] = 1.0                                             # ignored: probationary period
    assert scorer.evaluate([probation], onsets, threshold=0.5).score == pytest.approx(100.0)


def test_the_best_threshold_is_chosen_over_the_corpus() -> None:
    scores = np.zeros(1000)
    scores[480], scores[300] = 0.9, 0.6
    result = scorer.evaluate([scores], [[500]])
    assert result.threshold == pytest.approx(0.9) and result.detected == 1 and result.false_positives == 0


def test_the_generator_is_deterministic_and_labels_after_probation() -> None:
    a, b = generate.make_series("dev", 5), generate.make_series("dev", 5)
    assert np.array_equal(a.values, b.values) and a.anomalies == b.anomalies
    assert not np.array_equal(a.values[:100], generate.make_series("holdout", 5).values[:100])
    nab_like = range(generate.SPLIT_SIZES["dev"], generate.SPLIT_SIZES["dev"] + len(generate.FAMILIES))
    for i in [*range(14), *nab_like]:
        s = generate.make_series("dev", i)
        assert all(scorer.probation(len(s.values)) < x < len(s.values) for x in s.anomalies)
        assert np.all(np.isfinite(s.values)) and len(s.kinds) == len(s.anomalies)
    twitter = nab_like[list(generate.FAMILIES).index("twitter")]
    first, again = generate.make_series("dev", twitter), generate.make_series("dev", twitter)
    assert first.group == "nab" and "twitter" in first.name
    assert np.array_equal(first.values, again.values) and first.anomalies == again.anomalies
