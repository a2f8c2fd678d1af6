"""Redis health rules: pure functions over one parsed observation. Each finding carries the exact values the
rule looked at (``evidence``) and the command that produced them (``query``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.redis.config import RedisConfig
from kubestack.plugins.redis.metrics import memory_used_ratio
from kubestack.plugins.redis.parse import Info, SlowlogEntry, info_number, parse_keyspace, parse_replicas


@dataclass(frozen=True)
class Observation:
    info: Info
    config: dict[str, str]
    """``CONFIG GET *`` as the server returned it (secrets included: never published as is)."""
    slowlog: list[SlowlogEntry]
    clients: list[dict[str, str]]
    now: float
    """Unix time of the observation, to age slowlog entries."""


Rule = Callable[[Observation, RedisConfig], list[Finding]]


def _int(info: Info, section: str, key: str) -> int:
    return int(info_number(info, section, key) or 0)


def no_maxmemory(obs: Observation, _: RedisConfig) -> list[Finding]:
    if int(obs.config.get("maxmemory", "0")) > 0:
        return []
    return [Finding(
        rule_id="redis.no_maxmemory", severity=Severity.WARNING,
        message="maxmemory is not set: Redis grows until the kernel's OOM killer stops it",
        evidence={"maxmemory": 0, "used_memory": _int(obs.info, "memory", "used_memory"),
                  "total_system_memory": _int(obs.info, "memory", "total_system_memory")},
        query="CONFIG GET maxmemory; INFO memory")]


def eviction_policy(obs: Observation, limits: RedisConfig) -> list[Finding]:
    """Memory near maxmemory with a policy that cannot free any: writes will fail with OOM errors."""
    ratio = memory_used_ratio(obs.info)
    if ratio is None or ratio < limits.memory_high_ratio:
        return []
    policy = obs.config.get("maxmemory-policy", "")
    evidence: dict[str, Any] = {
        "used_memory": _int(obs.info, "memory", "used_memory"), "maxmemory": _int(obs.info, "memory", "maxmemory"),
        "memory_used_ratio": round(ratio, 4), "maxmemory_policy": policy,
        "evicted_keys": _int(obs.info, "stats", "evicted_keys")}
    query = "INFO memory; INFO stats; CONFIG GET maxmemory-policy"
    if policy == "noeviction":
        return [Finding(rule_id="redis.noeviction_memory_high",
                        severity=Severity.CRITICAL if ratio >= 0.98 else Severity.WARNING,
                        message=f"memory is {ratio:.0%} of maxmemory with policy noeviction: writes will be refused "
                                "with OOM errors once it is full", evidence=evidence, query=query)]
    spaces = parse_keyspace(obs.info)
    keys, expires = sum(s.keys for s in spaces), sum(s.expires for s in spaces)
    if policy.startswith("volatile-") and keys and not expires:
        return [Finding(rule_id="redis.volatile_policy_without_ttl", severity=Severity.WARNING,
                        message=f"memory is {ratio:.0%} of maxmemory and the policy is {policy}, but no key has a "
                                "TTL: nothing can be evicted, writes will be refused when it is full",
                        evidence=evidence | {"keys": keys, "expiring_keys": expires},
                        query=f"{query}; INFO keyspace")]
    return [Finding(rule_id="redis.memory_near_limit", severity=Severity.WARNING,
                    message=f"memory is {ratio:.0%} of maxmemory: {policy} is evicting keys",
                    evidence=evidence, query=query)]


def persistence_failing(obs: Observation, _: RedisConfig) -> list[Finding]:
    p = obs.info.get("persistence", {})
    findings = []
    if p.get("rdb_last_bgsave_status", "ok") != "ok":
        findings.append(Finding(
            rule_id="redis.rdb_bgsave_failed", severity=Severity.CRITICAL,
            message="the last RDB background save failed: a restart would lose every change since the last good one",
            evidence={k: p.get(k) for k in ("rdb_last_bgsave_status", "rdb_last_save_time",
                                            "rdb_changes_since_last_save", "rdb_last_bgsave_time_sec")}
            | {"latest_fork_usec": _int(obs.info, "stats", "latest_fork_usec"), "dir": obs.config.get("dir")},
            query="INFO persistence; CONFIG GET dir"))
    failing = {k: p[k] for k in ("aof_last_write_status", "aof_last_bgrewrite_status") if p.get(k, "ok") != "ok"}
    if p.get("aof_enabled") == "1" and failing:
        findings.append(Finding(
            rule_id="redis.aof_write_failed", severity=Severity.CRITICAL,
            message="the append-only file cannot be written: " + ", ".join(f"{k}={v}" for k, v in failing.items()),
            evidence={"aof_enabled": 1, **failing, "dir": obs.config.get("dir")},
            query="INFO persistence; CONFIG GET dir"))
    return findings


def _loopback(address: str) -> bool:
    address = address.lstrip("-")
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def no_auth_exposed(obs: Observation, _: RedisConfig) -> list[Finding]:
    c = obs.config
    binds = c.get("bind", "").split()
    if c.get("port") == "0" or (binds and all(_loopback(b) for b in binds)):
        return []
    if c.get("protected-mode") != "no" or c.get("requirepass"):
        return []
    return [Finding(
        rule_id="redis.no_auth_exposed", severity=Severity.CRITICAL,
        message="Redis listens beyond loopback with protected-mode off and no password: anyone who reaches the "
                "port can read, change or delete everything",
        evidence={"bind": c.get("bind", ""), "port": c.get("port"), "protected-mode": "no", "requirepass_set": False},
        query="CONFIG GET bind; CONFIG GET port; CONFIG GET protected-mode; CONFIG GET requirepass")]


def high_fragmentation(obs: Observation, limits: RedisConfig) -> list[Finding]:
    ratio = info_number(obs.info, "memory", "mem_fragmentation_ratio")
    used, rss = _int(obs.info, "memory", "used_memory"), _int(obs.info, "memory", "used_memory_rss")
    if ratio is None or ratio <= limits.fragmentation_max or rss - used < limits.fragmentation_min_bytes:
        return []
    return [Finding(
        rule_id="redis.high_fragmentation", severity=Severity.WARNING,
        message=f"memory fragmentation is {ratio:.2f}: {rss - used} bytes of RSS hold no data",
        evidence={"mem_fragmentation_ratio": ratio, "used_memory": used, "used_memory_rss": rss,
                  "activedefrag": obs.config.get("activedefrag")},
        query="INFO memory; CONFIG GET activedefrag")]


def blocked_clients(obs: Observation, _: RedisConfig) -> list[Finding]:
    blocked = _int(obs.info, "clients", "blocked_clients")
    if not blocked:
        return []
    waiting = [{k: c.get(k) for k in ("id", "addr", "name", "cmd", "age", "idle")}
               for c in obs.clients if "b" in c.get("flags", "")]
    return [Finding(rule_id="redis.blocked_clients", severity=Severity.WARNING,
                    message=f"{blocked} client(s) are blocked in a blocking command (BLPOP, XREAD BLOCK, WAIT, ...)",
                    evidence={"blocked_clients": blocked, "clients": waiting[:20]},
                    query="INFO clients; CLIENT LIST")]


def rejected_connections(obs: Observation, _: RedisConfig) -> list[Finding]:
    rejected = _int(obs.info, "stats", "rejected_connections")
    if not rejected:
        return []
    maxclients = _int(obs.info, "clients", "maxclients") or int(obs.config.get("maxclients", "0"))
    return [Finding(rule_id="redis.rejected_connections", severity=Severity.WARNING,
                    message=f"{rejected} connection(s) were refused because maxclients ({maxclients}) was reached",
                    evidence={"rejected_connections": rejected, "maxclients": maxclients,
                              "connected_clients": _int(obs.info, "clients", "connected_clients")},
                    query="INFO stats; INFO clients")]


_OWN_COMMANDS = ("INFO", "CONFIG GET", "SLOWLOG GET", "SLOWLOG LEN", "CLIENT LIST")
"""What the plugin itself sends: on a busy host one of them can pass the slowlog threshold, which says the server
was starved, not that a client ran something slow (the stall and memory rules cover a starved server)."""


def _ours(entry: SlowlogEntry) -> bool:
    return entry.command.upper().startswith(_OWN_COMMANDS)


def slow_commands(obs: Observation, limits: RedisConfig) -> list[Finding]:
    recent = [e for e in obs.slowlog if e.started_at >= obs.now - limits.slowlog_window_s and not _ours(e)]
    if not recent:
        return []
    return [Finding(rule_id="redis.slow_commands", severity=Severity.WARNING,
                    message=f"{len(recent)} slow command(s) in the last {limits.slowlog_window_s:.0f}s, slowest "
                            f"{max(e.duration_us for e in recent)} us",
                    evidence={"entries": [e.evidence() for e in recent],
                              "slowlog-log-slower-than": obs.config.get("slowlog-log-slower-than")},
                    query=f"SLOWLOG GET {limits.slowlog_entries}")]


def runaway_clients(obs: Observation, limits: RedisConfig) -> list[Finding]:
    big = [c for c in obs.clients if int(c.get("omem", "0")) > limits.client_output_max_bytes]
    if not big:
        return []
    return [Finding(rule_id="redis.runaway_client", severity=Severity.WARNING,
                    message=f"{len(big)} client(s) hold more than {limits.client_output_max_bytes} bytes of "
                            "unread output",
                    evidence={"clients": [{k: c.get(k) for k in ("id", "addr", "name", "cmd", "omem", "tot-mem",
                                                                 "age", "flags")} for c in big[:20]]},
                    query="CLIENT LIST")]


def replication(obs: Observation, limits: RedisConfig) -> list[Finding]:
    r = obs.info.get("replication", {})
    findings = []
    if r.get("role") == "slave" and r.get("master_link_status") != "up":
        findings.append(Finding(
            rule_id="redis.replica_link_down", severity=Severity.CRITICAL,
            message=f"this replica has lost its primary {r.get('master_host')}:{r.get('master_port')}",
            evidence={k: r.get(k) for k in ("master_host", "master_port", "master_link_status",
                                            "master_link_down_since_seconds", "master_last_io_seconds_ago")},
            query="INFO replication"))
    late = [x for x in parse_replicas(obs.info) if x.state != "online" or x.lag_s > limits.replica_lag_max_s]
    if late:
        offset = _int(obs.info, "replication", "master_repl_offset")
        findings.append(Finding(
            rule_id="redis.replica_lagging", severity=Severity.WARNING,
            message=f"{len(late)} replica(s) are behind or not online",
            evidence={"master_repl_offset": offset,
                      "replicas": [{"replica": f"{x.ip}:{x.port}", "state": x.state, "offset": x.offset,
                                    "lag_bytes": offset - x.offset, "lag_s": x.lag_s} for x in late]},
            query="INFO replication"))
    return findings


RULES: tuple[Rule, ...] = (no_maxmemory, eviction_policy, persistence_failing, no_auth_exposed, high_fragmentation,
                           blocked_clients, rejected_connections, slow_commands, runaway_clients, replication)


def evaluate(obs: Observation, limits: RedisConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
