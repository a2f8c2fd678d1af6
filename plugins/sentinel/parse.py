"""Pure readers of Sentinel's replies: ``SENTINEL MASTERS`` / ``REPLICAS`` / ``SENTINELS`` (lists of flat
field/value lists), ``SENTINEL CKQUORUM`` and ``INFO sentinel`` text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DOWN_FLAGS = frozenset({"s_down", "o_down", "disconnected"})


def pairs(flat: Sequence[str]) -> dict[str, str]:
    """``["name", "mymaster", "ip", "10.0.0.5", ...]`` → ``{"name": "mymaster", "ip": "10.0.0.5", ...}``."""
    return {str(k): str(v) for k, v in zip(flat[::2], flat[1::2], strict=False)}


def _int(fields: dict[str, str], key: str) -> int:
    try:
        return int(fields.get(key, "0"))
    except ValueError:
        return 0


def listener(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True)
class Primary:
    name: str
    ip: str
    port: int
    flags: frozenset[str]
    num_replicas: int
    num_other_sentinels: int
    quorum: int
    down_after_ms: int
    failover_timeout_ms: int
    parallel_syncs: int
    config_epoch: int
    role_reported_ms: int
    last_ok_ping_ms: int

    @property
    def address(self) -> str:
        return listener(self.ip, self.port)

    @property
    def failing_over(self) -> bool:
        return bool({"failover_in_progress", "promoted"} & self.flags)


def parse_primary(flat: Sequence[str]) -> Primary:
    f = pairs(flat)
    return Primary(name=f["name"], ip=f.get("ip", ""), port=_int(f, "port"),
                   flags=frozenset(f.get("flags", "").split(",")) - {""}, num_replicas=_int(f, "num-slaves"),
                   num_other_sentinels=_int(f, "num-other-sentinels"), quorum=_int(f, "quorum"),
                   down_after_ms=_int(f, "down-after-milliseconds"), failover_timeout_ms=_int(f, "failover-timeout"),
                   parallel_syncs=_int(f, "parallel-syncs"), config_epoch=_int(f, "config-epoch"),
                   role_reported_ms=_int(f, "role-reported-time"), last_ok_ping_ms=_int(f, "last-ok-ping-reply"))


@dataclass(frozen=True)
class Replica:
    ip: str
    port: int
    flags: frozenset[str]
    link_ok: bool
    priority: int
    offset: int

    @property
    def address(self) -> str:
        return listener(self.ip, self.port)

    @property
    def healthy(self) -> bool:
        """Reachable, linked to its primary, and eligible for promotion (priority 0 never is)."""
        return not (DOWN_FLAGS & self.flags) and self.link_ok and self.priority > 0


def parse_replicas(rows: Sequence[Sequence[str]]) -> list[Replica]:
    replicas = []
    for flat in rows:
        f = pairs(flat)
        replicas.append(Replica(ip=f.get("ip", ""), port=_int(f, "port"),
                                flags=frozenset(f.get("flags", "").split(",")) - {""},
                                link_ok=f.get("master-link-status") == "ok", priority=_int(f, "slave-priority"),
                                offset=_int(f, "slave-repl-offset")))
    return replicas


@dataclass(frozen=True)
class Watcher:
    """Another sentinel monitoring the same primary."""

    ip: str
    port: int
    runid: str
    flags: frozenset[str]

    @property
    def address(self) -> str:
        return listener(self.ip, self.port)

    @property
    def up(self) -> bool:
        return not (DOWN_FLAGS & self.flags)


def parse_sentinels(rows: Sequence[Sequence[str]]) -> list[Watcher]:
    out = []
    for flat in rows:
        f = pairs(flat)
        out.append(Watcher(ip=f.get("ip", ""), port=_int(f, "port"), runid=f.get("runid", ""),
                           flags=frozenset(f.get("flags", "").split(",")) - {""}))
    return out


def parse_info(text: str) -> dict[str, str]:
    """``INFO sentinel``: ``key:value`` lines (``masterN`` values kept as text)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and not key.startswith("#"):
            out[key] = value
    return out
