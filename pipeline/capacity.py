"""Which samples of a batch are capacity-like, paired with their limit: the plugins declare them
(``capacities`` on the plugin class, see ``CapacitySeries``), the worker looks them up by resource kind."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from kubestack.contract.events import MetricBatch, Sample
from kubestack.errors import PluginNotFoundError
from kubestack.plugins.base import Capacity
from kubestack.plugins.registry import get_plugin

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filling:
    """One capacity-like sample with the limit it runs towards."""

    capacity: Capacity
    sample: Sample
    limit: float


@cache
def capacities_of(kind: str) -> tuple[Capacity, ...]:
    """The capacity series the plugin for ``kind`` declares; none for kinds without a plugin."""
    try:
        plugin = get_plugin(kind)
    except PluginNotFoundError:
        return ()
    return tuple(getattr(plugin, "capacities", ()))  # the optional CapacitySeries protocol


def fillings(batch: MetricBatch, capacities: tuple[Capacity, ...]) -> list[Filling]:
    """The used samples of ``batch`` that have a positive limit (in the same batch, with the same labels named by
    ``match_labels``, or a constant)."""
    if not capacities:
        return []
    wanted = {name for capacity in capacities for name in (capacity.used, capacity.limit) if name is not None}
    by_name: dict[str, list[Sample]] = {}
    for i, name in enumerate(batch.names):  # a Sample only for the few capacity series of the batch
        if name in wanted:
            by_name.setdefault(name, []).append(batch.sample(i))
    out = []
    for capacity in capacities:
        for used in by_name.get(capacity.used, ()):
            limit = capacity.limit_value if capacity.limit is None else _limit(capacity, used,
                                                                               by_name.get(capacity.limit, ()))
            if limit is not None and limit > 0:
                out.append(Filling(capacity, used, limit))
    return out


def _limit(capacity: Capacity, used: Sample, candidates: list[Sample]) -> float | None:
    wanted = {k: used.labels.get(k) for k in capacity.match_labels}
    for sample in candidates:
        if all(sample.labels.get(k) == v for k, v in wanted.items()):
            return sample.value
    return None
