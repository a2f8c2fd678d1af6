"""Sentinel health rules: pure functions over one observation of a sentinel (its primaries, their replicas and
fellow sentinels, the quorum check) plus the failovers the plugin saw between rounds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.sentinel.config import SentinelConfig
from kubestack.plugins.sentinel.parse import Primary, Replica, Watcher


@dataclass(frozen=True)
class Switch:
    """A primary that moved: seen at ``old`` in an earlier round, at ``new`` now, ``age_s`` ago."""

    old: str
    new: str
    age_s: float


@dataclass(frozen=True)
class Observation:
    primaries: list[Primary]
    replicas: dict[str, list[Replica]]
    sentinels: dict[str, list[Watcher]]
    quorum: dict[str, str | None]
    """Primary → why CKQUORUM failed (None: it can be reached)."""
    info: dict[str, str] = field(default_factory=dict)
    switches: dict[str, Switch] = field(default_factory=dict)


Rule = Callable[[Observation, SentinelConfig], list[Finding]]


def failover_happened(obs: Observation, limits: SentinelConfig) -> list[Finding]:
    """A failover in progress, or one that moved the primary within the window: seen between rounds by this plugin,
    or read from the primary's config epoch (above 0 after any failover) and how long ago its role was reported."""
    findings = []
    for p in obs.primaries:
        switch = obs.switches.get(p.name)
        recent = p.config_epoch > 0 and p.role_reported_ms / 1000 < limits.failover_window_s
        if switch is None and not recent and not p.failing_over:
            continue
        evidence = {"master": p.name, "address": p.address, "config_epoch": p.config_epoch,
                    "role_reported_s": round(p.role_reported_ms / 1000, 1), "flags": sorted(p.flags)}
        if switch is not None:
            evidence |= {"previous_address": switch.old, "switched_s_ago": round(switch.age_s, 1)}
        moved = f" from {switch.old}" if switch is not None else ""
        findings.append(Finding(
            rule_id="sentinel.failover_happened", severity=Severity.WARNING,
            message=(f"failover of {p.name} in progress" if p.failing_over
                     else f"{p.name} failed over{moved} to {p.address}: clients that cache the address still "
                          "write to the old primary, which is now a replica"),
            evidence=evidence, query=f"SENTINEL MASTER {p.name}"))
    return findings


def primary_down(obs: Observation, _: SentinelConfig) -> list[Finding]:
    findings = []
    for p in obs.primaries:
        down = {"s_down", "o_down"} & p.flags
        if not down:
            continue
        objective = "o_down" in down
        findings.append(Finding(
            rule_id="sentinel.primary_down", severity=Severity.CRITICAL if objective else Severity.WARNING,
            message=f"primary {p.name} at {p.address} is "
                    + ("objectively down (the quorum agrees): a failover starts" if objective
                       else "subjectively down for this sentinel, the quorum has not agreed yet"),
            evidence={"master": p.name, "address": p.address, "flags": sorted(p.flags), "quorum": p.quorum,
                      "down_after_ms": p.down_after_ms, "last_ok_ping_ms": p.last_ok_ping_ms,
                      "healthy_replicas": sum(r.healthy for r in obs.replicas.get(p.name, []))},
            query=f"SENTINEL MASTER {p.name}"))
    return findings


def quorum_unreachable(obs: Observation, _: SentinelConfig) -> list[Finding]:
    return [Finding(rule_id="sentinel.quorum_unreachable", severity=Severity.CRITICAL,
                    message=f"{name}: {reason}: no failover can be authorised if its primary fails",
                    evidence={"master": name, "ckquorum": reason,
                              "sentinels_up": 1 + sum(s.up for s in obs.sentinels.get(name, [])),
                              "quorum": next((p.quorum for p in obs.primaries if p.name == name), None)},
                    query=f"SENTINEL CKQUORUM {name}")
            for name, reason in sorted(obs.quorum.items()) if reason]


def too_few_replicas(obs: Observation, limits: SentinelConfig) -> list[Finding]:
    findings = []
    for p in obs.primaries:
        replicas = obs.replicas.get(p.name, [])
        healthy = [r for r in replicas if r.healthy]
        if len(healthy) >= limits.min_replicas:
            continue
        findings.append(Finding(
            rule_id="sentinel.too_few_replicas", severity=Severity.CRITICAL if not healthy else Severity.WARNING,
            message=f"{p.name} has {len(healthy)} healthy replica(s) of {len(replicas)} known (want "
                    f"{limits.min_replicas}): a failover has nothing to promote",
            evidence={"master": p.name, "healthy": len(healthy), "known": len(replicas),
                      "min_replicas": limits.min_replicas,
                      "replicas": [{"address": r.address, "flags": sorted(r.flags), "link_ok": r.link_ok,
                                    "priority": r.priority} for r in replicas]},
            query=f"SENTINEL REPLICAS {p.name}"))
    return findings


def too_few_sentinels(obs: Observation, limits: SentinelConfig) -> list[Finding]:
    findings = []
    for p in obs.primaries:
        others = obs.sentinels.get(p.name, [])
        up = 1 + sum(s.up for s in others)
        if up >= limits.min_sentinels and up >= p.quorum:
            continue
        findings.append(Finding(
            rule_id="sentinel.too_few_sentinels",
            severity=Severity.CRITICAL if up < p.quorum else Severity.WARNING,
            message=f"{p.name} is watched by {up} sentinel(s) that are up (want {limits.min_sentinels}, quorum "
                    f"{p.quorum})",
            evidence={"master": p.name, "sentinels_up": up, "known": 1 + len(others), "quorum": p.quorum,
                      "min_sentinels": limits.min_sentinels,
                      "down": [s.address for s in others if not s.up]},
            query=f"SENTINEL SENTINELS {p.name}"))
    return findings


def tilt(obs: Observation, _: SentinelConfig) -> list[Finding]:
    if obs.info.get("sentinel_tilt", "0") != "1":
        return []
    return [Finding(rule_id="sentinel.tilt", severity=Severity.WARNING,
                    message="this sentinel is in TILT mode (its clock jumped or it was stalled): it acts on nothing "
                            "for 30 s",
                    evidence={"sentinel_tilt": 1, "since_s": obs.info.get("sentinel_tilt_since_seconds")},
                    query="INFO sentinel")]


RULES: tuple[Rule, ...] = (failover_happened, primary_down, quorum_unreachable, too_few_replicas, too_few_sentinels,
                           tilt)


def evaluate(obs: Observation, limits: SentinelConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
