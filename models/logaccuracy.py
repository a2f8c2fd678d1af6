"""Grouping accuracy (GA) of a log parser, as defined by the Loghub benchmark (Zhu et al., ICSE-SEIP 2019).

A line counts as correct when the set of lines in its predicted group is exactly the set of lines in its
true group; GA is the share of correct lines. Template strings do not matter, only the grouping.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from kubestack.errors import ConfigError


def grouping_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """GA of ``predicted`` group ids against ``truth`` group ids, both one per line in the same order."""
    if len(truth) != len(predicted):
        raise ConfigError(f"{len(truth)} true labels but {len(predicted)} predictions: they must pair up line by line")
    if not truth:
        return 1.0
    true_sizes = Counter(truth)
    members: dict[str, Counter] = defaultdict(Counter)
    for true_id, predicted_id in zip(truth, predicted):
        members[predicted_id][true_id] += 1
    correct = 0
    for counts in members.values():
        if len(counts) == 1:
            (true_id, size), = counts.items()
            if size == true_sizes[true_id]:
                correct += size
    return correct / len(truth)
