"""Which Memcached setting changes are risky (the snapshot is ``stats settings``; used by the worker's config-risk
stage). A server's settings change at a restart with other flags, or at runtime (``cache_memlimit``)."""

from __future__ import annotations

from kubestack.contract.events import ConfigChange, Finding, Severity


def config_risks(change: ConfigChange) -> list[Finding]:
    diffs = {c.key: c for c in change.changes}
    findings = []
    if (c := diffs.get("maxbytes")) is not None and _lower(c.old, c.new):
        used = change.observed.get("memcached_bytes")
        below = used is not None and int(c.new or 0) < used
        findings.append(Finding(
            rule_id="memcached.memory_limit_lowered", severity=Severity.WARNING,
            message=f"the memory limit was lowered from {c.old} to {c.new} bytes"
                    + (f", below the {int(used)} bytes in use: items will be evicted" if below else "")
                    + ": a smaller cache misses more and sends the misses to the backends",
            evidence={"old": c.old, "new": c.new, "bytes": used}, query="stats settings (maxbytes)"))
    if (c := diffs.get("maxconns")) is not None and _lower(c.old, c.new):
        current = change.observed.get("memcached_curr_connections")
        findings.append(Finding(
            rule_id="memcached.maxconns_lowered",
            severity=Severity.CRITICAL if current is not None and current >= int(c.new or 0) else Severity.WARNING,
            message=f"max connections lowered from {c.old} to {c.new}"
                    + (f", at or below the {int(current)} connections in use" if current is not None
                       and current >= int(c.new or 0) else ""),
            evidence={"old": c.old, "new": c.new, "curr_connections": current}, query="stats settings (maxconns)"))
    if (c := diffs.get("evictions")) is not None and c.old == "on" and c.new == "off":
        findings.append(Finding(
            rule_id="memcached.evictions_disabled", severity=Severity.WARNING,
            message="evictions turned off (-M): once memory is full every new store fails with 'out of memory' "
                    "instead of replacing the least used item", evidence={"old": c.old, "new": c.new},
            query="stats settings (evictions)"))
    if (c := diffs.get("udpport")) is not None and c.old in (None, "0") and c.new not in (None, "0"):
        findings.append(Finding(
            rule_id="memcached.udp_enabled", severity=Severity.CRITICAL,
            message=f"the UDP port was opened ({c.new}): memcached over UDP is a well-known DDoS amplifier and "
                    "has no use in most deployments", evidence={"old": c.old, "new": c.new,
                                                                 "interface": diffs["inter"].new if "inter" in diffs
                                                                 else None},
            query="stats settings (udpport)"))
    return findings


def _lower(old: str | None, new: str | None) -> bool:
    try:
        return old is not None and new is not None and int(new) < int(old)
    except ValueError:
        return False
