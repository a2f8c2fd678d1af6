"""Memcached health rules: pure functions over one parsed observation. Memcached's figures are counters since it
started, so the rules that say "now" (evictions, refused stores and connections, the hit ratio) read their increase
since the previous health round (``Observation.delta``): none on the first round, which only sets the baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.memcached.config import MemcachedConfig
from kubestack.plugins.memcached.metrics import memory_used_ratio
from kubestack.plugins.memcached.parse import number

COUNTERS = ("evictions", "evicted_unfetched", "store_no_memory", "store_too_large", "rejected_connections",
            "listen_disabled_num", "get_hits", "get_misses", "cmd_get", "cmd_set", "total_connections")
"""The counters whose increase between rounds the rules read."""


@dataclass(frozen=True)
class Observation:
    stats: dict[str, str]
    settings: dict[str, str]
    items: dict[str, dict[str, str]] = field(default_factory=dict)
    """``stats items`` by slab class."""
    slabs: dict[str, dict[str, str]] = field(default_factory=dict)
    """``stats slabs`` by slab class."""
    delta: dict[str, float] | None = None
    """How much each of ``COUNTERS`` rose since the previous round (None on the first, or after a restart)."""
    window_s: float = 0.0

    def rose(self, key: str) -> float:
        return (self.delta or {}).get(key, 0.0)


def increase(before: dict[str, str], after: dict[str, str]) -> dict[str, float] | None:
    """Each of ``COUNTERS``' increase from ``before`` to ``after``; None when the server restarted in between
    (its uptime went back) or either lacks it."""
    up_before, up_after = number(before, "uptime"), number(after, "uptime")
    if up_before is None or up_after is None or up_after < up_before:
        return None
    rises = {}
    for key in COUNTERS:
        old, new = number(before, key), number(after, key)
        if old is not None and new is not None:
            rises[key] = max(new - old, 0.0)
    return rises


Rule = Callable[[Observation, MemcachedConfig], list[Finding]]


def _int(stats: dict[str, str], key: str) -> int:
    return int(number(stats, key) or 0)


def _memory(obs: Observation) -> dict[str, Any]:
    ratio = memory_used_ratio(obs.stats)
    return {"bytes": _int(obs.stats, "bytes"), "limit_maxbytes": _int(obs.stats, "limit_maxbytes"),
            "memory_used_ratio": round(ratio, 4) if ratio is not None else None,
            "curr_items": _int(obs.stats, "curr_items")}


def _slabs_with(obs: Observation, key: str) -> list[dict[str, Any]]:
    """Slab classes whose ``stats items`` counter ``key`` is non-zero, the largest first (their chunk size too)."""
    found = [{"slab": slab, key: int(number(fields, key) or 0),
              "chunk_size": int(number(obs.slabs.get(slab, {}), "chunk_size") or 0),
              "items": int(number(fields, "number") or 0)}
             for slab, fields in obs.items.items() if number(fields, key)]
    return sorted(found, key=lambda s: -s[key])[:10]


def evictions(obs: Observation, _: MemcachedConfig) -> list[Finding]:
    rose = obs.rose("evictions")
    if not rose:
        return []
    unfetched = obs.rose("evicted_unfetched")
    return [Finding(
        rule_id="memcached.evictions", severity=Severity.WARNING,
        message=f"{int(rose)} items evicted in the last {obs.window_s:.0f}s to make room ({int(unfetched)} of them "
                "never read): the cache is too small for its working set",
        evidence={"evictions": int(rose), "evicted_unfetched": int(unfetched), "window_s": round(obs.window_s, 1),
                  "evictions_total": _int(obs.stats, "evictions"), **_memory(obs),
                  "slabs": _slabs_with(obs, "evicted")},
        query="stats; stats items; stats slabs")]


def out_of_memory(obs: Observation, _: MemcachedConfig) -> list[Finding]:
    """Stores refused for lack of memory: with evictions off (``-M``), or when no page can be freed for the item's
    slab class."""
    rose = obs.rose("store_no_memory")
    if not rose:
        return []
    return [Finding(
        rule_id="memcached.out_of_memory", severity=Severity.CRITICAL,
        message=f"{int(rose)} stores refused with 'out of memory' in the last {obs.window_s:.0f}s"
                + (" (evictions are off: -M)" if obs.settings.get("evictions") == "off" else ""),
        evidence={"store_no_memory": int(rose), "evictions_setting": obs.settings.get("evictions"),
                  "window_s": round(obs.window_s, 1), **_memory(obs), "slabs": _slabs_with(obs, "outofmemory")},
        query="stats; stats settings; stats items")]


def items_too_large(obs: Observation, _: MemcachedConfig) -> list[Finding]:
    rose = obs.rose("store_too_large")
    if not rose:
        return []
    return [Finding(
        rule_id="memcached.items_too_large", severity=Severity.WARNING,
        message=f"{int(rose)} stores refused as larger than item_size_max "
                f"({obs.settings.get('item_size_max', '?')} bytes) in the last {obs.window_s:.0f}s: those values are "
                "never cached",
        evidence={"store_too_large": int(rose), "item_size_max": _int(obs.settings, "item_size_max"),
                  "window_s": round(obs.window_s, 1)},
        query="stats; stats settings")]


def connections_near_max(obs: Observation, limits: MemcachedConfig) -> list[Finding]:
    current, limit = _int(obs.stats, "curr_connections"), _int(obs.stats, "max_connections")
    if not limit or current / limit < limits.connections_high_ratio:
        return []
    return [Finding(
        rule_id="memcached.connections_near_max", severity=Severity.WARNING,
        message=f"{current} of {limit} connections in use: new clients will be refused at the limit",
        evidence={"curr_connections": current, "max_connections": limit,
                  "connections_used_ratio": round(current / limit, 4),
                  "reserved_fds": _int(obs.stats, "reserved_fds")},
        query="stats")]


def rejected_connections(obs: Observation, _: MemcachedConfig) -> list[Finding]:
    rejected, disabled = obs.rose("rejected_connections"), obs.rose("listen_disabled_num")
    if not rejected and not disabled:
        return []
    return [Finding(
        rule_id="memcached.rejected_connections", severity=Severity.CRITICAL,
        message=f"{int(rejected + disabled)} connection(s) refused at max_connections "
                f"({_int(obs.stats, 'max_connections')}) in the last {obs.window_s:.0f}s",
        evidence={"rejected_connections": int(rejected), "listen_disabled_num": int(disabled),
                  "curr_connections": _int(obs.stats, "curr_connections"),
                  "max_connections": _int(obs.stats, "max_connections"), "window_s": round(obs.window_s, 1)},
        query="stats")]


def low_hit_ratio(obs: Observation, limits: MemcachedConfig) -> list[Finding]:
    hits, misses = obs.rose("get_hits"), obs.rose("get_misses")
    gets = hits + misses
    if gets < limits.hit_ratio_min_gets or hits / gets >= limits.hit_ratio_min:
        return []
    return [Finding(
        rule_id="memcached.low_hit_ratio", severity=Severity.WARNING,
        message=f"only {hits / gets:.0%} of {int(gets)} gets in the last {obs.window_s:.0f}s found their key: the "
                "backends behind the cache take the misses",
        evidence={"hit_ratio": round(hits / gets, 4), "get_hits": int(hits), "get_misses": int(misses),
                  "hit_ratio_min": limits.hit_ratio_min, "window_s": round(obs.window_s, 1),
                  "evictions": int(obs.rose("evictions")), **_memory(obs)},
        query="stats")]


RULES: tuple[Rule, ...] = (evictions, out_of_memory, items_too_large, connections_near_max, rejected_connections,
                           low_hit_ratio)


def evaluate(obs: Observation, limits: MemcachedConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
