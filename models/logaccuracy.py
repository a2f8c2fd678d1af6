"""Accuracy of a log parser as the Loghub benchmark measures it: grouping accuracy (GA, Zhu et al., ICSE-SEIP
2019) and parsing accuracy (PA, on the corrected templates of Khan et al., ICSE 2022).

GA: a line counts as correct when the set of lines in its predicted group is exactly the set of lines in its
true group; GA is the share of correct lines. Template strings do not matter, only the grouping. PA: a line
counts as correct when its predicted template string is its true one (after a normalisation).
"""

from __future__ import annotations

import re
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


_WHITESPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"(?<![A-Za-z0-9_])\d+(?![A-Za-z0-9_])")


def normalise_template(template: str) -> str:
    """A template as the corrected Loghub labels compare them (Khan et al., ICSE 2022): whitespace runs become one
    space, a run of digits that touches no letter, digit or underscore becomes ``<*>``, then ``<*>.<*>`` and
    ``<*><*>`` become ``<*>`` until nothing changes."""
    template = _DIGITS.sub("<*>", _WHITESPACE.sub(" ", template.strip()))
    while True:
        shorter = template.replace("<*>.<*>", "<*>").replace("<*><*>", "<*>")
        if shorter == template:
            return template
        template = shorter


def parsing_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """PA: the share of lines whose predicted template equals the true one, both normalised
    (:func:`normalise_template`); one template string per line in the same order on both sides."""
    if len(truth) != len(predicted):
        raise ConfigError(f"{len(truth)} true templates but {len(predicted)} predictions: "
                          "they must pair up line by line")
    if not truth:
        return 1.0
    cache: dict[str, str] = {}

    def norm(template: str) -> str:
        if template not in cache:
            cache[template] = normalise_template(template)
        return cache[template]

    return sum(1 for t, p in zip(truth, predicted) if norm(t) == norm(p)) / len(truth)
