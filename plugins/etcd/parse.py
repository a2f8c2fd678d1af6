"""Pure parsers of what an etcd member answers: the v3 gateway's JSON (``/v3/maintenance/status``,
``/v3/cluster/member/list``, ``/v3/maintenance/alarm``; 64-bit numbers come as strings) and ``/metrics``
(Prometheus text), with a quantile read from the difference of two histogram snapshots."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Status:
    member_id: str
    leader: str
    """The leader's member id; "0" when the member knows of none."""
    raft_term: int
    raft_index: int
    applied_index: int
    revision: int
    db_size: int
    db_in_use: int
    version: str
    errors: tuple[str, ...]
    is_learner: bool

    @property
    def has_leader(self) -> bool:
        return self.leader not in ("", "0")


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


def parse_status(body: dict[str, Any]) -> Status:
    header = body.get("header", {})
    return Status(member_id=str(header.get("member_id", "")), leader=str(body.get("leader", "0")),
                  raft_term=_int(body.get("raftTerm", header.get("raft_term"))), raft_index=_int(body.get("raftIndex")),
                  applied_index=_int(body.get("raftAppliedIndex")), revision=_int(header.get("revision")),
                  db_size=_int(body.get("dbSize")), db_in_use=_int(body.get("dbSizeInUse") or body.get("dbSize")),
                  version=str(body.get("version", "")), errors=tuple(body.get("errors", ())),
                  is_learner=bool(body.get("isLearner", False)))


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool

    @property
    def endpoint(self) -> str | None:
        """``host:port`` of its first client URL (none for a member added but not started yet)."""
        return url_address(self.client_urls[0]) if self.client_urls else None


def url_address(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host


def parse_members(body: dict[str, Any]) -> list[Member]:
    return [Member(id=str(m.get("ID", "")), name=m.get("name", ""), peer_urls=tuple(m.get("peerURLs", ())),
                   client_urls=tuple(m.get("clientURLs", ())), is_learner=bool(m.get("isLearner", False)))
            for m in body.get("members", [])]


@dataclass(frozen=True)
class Alarm:
    member_id: str
    alarm: str
    """``NOSPACE`` or ``CORRUPT``."""


def parse_alarms(body: dict[str, Any]) -> list[Alarm]:
    return [Alarm(member_id=str(a.get("memberID", "")), alarm=str(a.get("alarm", "NONE")))
            for a in body.get("alarms", []) if a.get("alarm", "NONE") != "NONE"]


Metrics = dict[str, list[tuple[dict[str, str], float]]]
"""Sample name (with ``_bucket``/``_sum``/``_count`` suffixes) → (labels, value) of each series."""


def parse_metrics(text: str) -> Metrics:
    metrics: Metrics = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            metrics.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return metrics


def metric(metrics: Metrics, name: str) -> float | None:
    """The value of an unlabelled (or first) series of ``name``; None when absent or not finite."""
    series = metrics.get(name)
    if not series or not math.isfinite(series[0][1]):
        return None
    return series[0][1]


def buckets(metrics: Metrics, histogram: str) -> dict[float, float]:
    """Upper bound → cumulative count of ``<histogram>_bucket``."""
    return {float(labels["le"]): value for labels, value in metrics.get(f"{histogram}_bucket", []) if "le" in labels}


def quantile(now: dict[float, float], before: dict[float, float] | None, q: float) -> tuple[float | None, int]:
    """(upper bound of the bucket holding the ``q`` quantile, observations) over what was observed between two
    cumulative snapshots (all of ``now`` without ``before``); (None, 0) with no observation. The +Inf bucket reads as
    the largest finite bound: "at least that"."""
    bounds = sorted(now)
    counts = [now[b] - (before or {}).get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None, 0
    total = counts[-1]
    finite = [b for b in bounds if math.isfinite(b)]
    for bound, count in zip(bounds, counts):
        if count >= q * total:
            return (bound if math.isfinite(bound) else (finite[-1] if finite else None)), int(total)
    return None, int(total)
