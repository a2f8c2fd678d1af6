"""Which resources report metrics, since when, how often: the worker's view of what it monitors."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from kubestack.contract.base import ResourceRef, UtcDatetime
from kubestack.contract.events import MetricBatch

MAX_METRIC_NAMES = 256


class ResourceSeen(BaseModel):
    """Table state (not a bus message): one entry per resource key."""

    resource: ResourceRef
    tenant: str
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    batches: int
    samples: int
    metric_names: list[str]
    interval_s: float | None = None

    def to_state(self) -> dict:
        return self.model_dump(mode="json")


def observe(previous: ResourceSeen | None, batch: MetricBatch) -> ResourceSeen:
    """The entry after ``batch``; out-of-order batches never move ``last_seen`` backwards."""
    seen = set(batch.names)
    if previous is not None and seen.issubset(previous.metric_names):
        names = previous.metric_names
    else:
        names = sorted(seen | set(previous.metric_names if previous else ()))
    if previous is None:
        return ResourceSeen(resource=batch.resource, tenant=batch.tenant, first_seen=batch.ts, last_seen=batch.ts,
                            batches=1, samples=len(batch.names), metric_names=names[:MAX_METRIC_NAMES],
                            interval_s=batch.interval_s)
    return previous.model_copy(update={
        "resource": batch.resource,
        "first_seen": min(previous.first_seen, batch.ts),
        "last_seen": max(previous.last_seen, batch.ts),
        "batches": previous.batches + 1,
        "samples": previous.samples + len(batch.names),
        "metric_names": names[:MAX_METRIC_NAMES],
        "interval_s": batch.interval_s or previous.interval_s,
    })


def silent_since(entry: ResourceSeen, now: datetime, missed_intervals: int = 3) -> bool:
    """True when a resource has missed ``missed_intervals`` collection rounds (needs a known interval)."""
    if entry.interval_s is None:
        return False
    return (now - entry.last_seen).total_seconds() > missed_intervals * entry.interval_s
