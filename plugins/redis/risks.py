"""Which Redis configuration changes are risky (used by the worker's config-risk stage)."""

from __future__ import annotations

from kubestack.contract.events import ConfigChange, Finding, Severity

_SAFE_POLICIES_WITHOUT_TTL = {"allkeys-lru", "allkeys-lfu", "allkeys-random"}


def config_risks(change: ConfigChange) -> list[Finding]:
    diffs = {c.key: c for c in change.changes}
    used = change.observed.get("redis_used_memory_bytes")
    findings = []
    if (c := diffs.get("maxmemory")) is not None:
        old, new = _int(c.old), _int(c.new)
        if new and (not old or new < old):
            below = used is not None and new < used
            findings.append(Finding(
                rule_id="redis.maxmemory_lowered", severity=Severity.CRITICAL if below else Severity.WARNING,
                message=f"maxmemory lowered from {c.old} to {c.new}"
                        + (f", below the {int(used)} bytes in use: evictions or write errors follow" if below else ""),
                evidence={"old": c.old, "new": c.new, "used_memory": used}, query="CONFIG GET maxmemory"))
    if (c := diffs.get("maxmemory-policy")) is not None:
        severity = Severity.CRITICAL if c.new == "noeviction" else Severity.WARNING
        findings.append(Finding(rule_id="redis.eviction_policy_changed", severity=severity,
                                message=f"maxmemory-policy changed from {c.old} to {c.new}",
                                evidence={"old": c.old, "new": c.new}, query="CONFIG GET maxmemory-policy"))
    persistence_off = [c for key, c in diffs.items()
                       if (key == "appendonly" and c.old == "yes" and c.new == "no")
                       or (key == "save" and c.old and not c.new)]
    if persistence_off:
        findings.append(Finding(rule_id="redis.persistence_disabled", severity=Severity.WARNING,
                                message="persistence turned off: " + ", ".join(f"{c.key} {c.old!r} -> {c.new!r}"
                                                                              for c in persistence_off),
                                evidence={c.key: {"old": c.old, "new": c.new} for c in persistence_off},
                                query="CONFIG GET appendonly; CONFIG GET save"))
    replication = [c for key, c in diffs.items() if key in ("replicaof", "slaveof", "masterauth", "masteruser")]
    if replication:
        findings.append(Finding(rule_id="redis.replication_changed", severity=Severity.WARNING,
                                message="replication settings changed: " + ", ".join(c.key for c in replication),
                                evidence={c.key: {"old": c.old, "new": c.new} for c in replication},
                                query="CONFIG GET replicaof"))
    return findings


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
