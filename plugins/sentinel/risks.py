"""Which Sentinel configuration changes are risky. The snapshot keys are ``<primary>.<setting>`` (``mymaster.quorum``)
and ``<primary>.address``, whose change is a failover."""

from __future__ import annotations

from kubestack.contract.events import ConfigChange, ConfigDiff, Finding, Severity

FAST_DOWN_AFTER_MS = 5000
"""Below this a network blip or a slow fork marks the primary down and starts a failover."""
SLOW_DOWN_AFTER_MS = 60_000
FAST_FAILOVER_TIMEOUT_MS = 10_000


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def _split(diff: ConfigDiff) -> tuple[str, str]:
    primary, _, setting = diff.key.rpartition(".")
    return primary, setting


def _down_after(primary: str, c: ConfigDiff, old: int, new: int) -> Finding | None:
    if new < old and new < FAST_DOWN_AFTER_MS:
        why = f"below {FAST_DOWN_AFTER_MS} ms a network blip or a slow fork starts a failover"
    elif new > old and new > SLOW_DOWN_AFTER_MS:
        why = f"above {SLOW_DOWN_AFTER_MS} ms a dead primary is noticed late: writes fail for that long"
    else:
        return None
    return Finding(rule_id="sentinel.down_after_changed", severity=Severity.WARNING,
                   message=f"{primary}: down-after-milliseconds {c.old} -> {c.new}: {why}",
                   evidence={"master": primary, "setting": "down-after-milliseconds", "old": c.old, "new": c.new},
                   query=f"SENTINEL MASTER {primary}")


def _quorum(primary: str, c: ConfigDiff, old: int, new: int, sentinels: float | None) -> Finding | None:
    if new < old:
        why = "one sentinel alone can declare it down" if new == 1 else "fewer sentinels must agree to fail over"
        severity = Severity.CRITICAL if new == 1 else Severity.WARNING
    elif new > old:
        beyond = sentinels is not None and new > sentinels
        why = (f"more than the {int(sentinels)} sentinels known: no failover can ever be authorised" if beyond
               else "more sentinels must be up to fail over")
        severity = Severity.CRITICAL if beyond else Severity.WARNING
    else:
        return None
    return Finding(rule_id="sentinel.quorum_changed", severity=severity,
                   message=f"{primary}: quorum {c.old} -> {c.new}: {why}",
                   evidence={"master": primary, "setting": "quorum", "old": c.old, "new": c.new,
                             "sentinels": sentinels}, query=f"SENTINEL CKQUORUM {primary}")


def config_risks(change: ConfigChange) -> list[Finding]:
    findings: list[Finding | None] = []
    sentinels = change.observed.get("sentinel_known_sentinels")
    for c in change.changes:
        primary, setting = _split(c)
        if setting == "address" and c.old and c.new:
            findings.append(Finding(rule_id="sentinel.primary_switched", severity=Severity.WARNING,
                                    message=f"{primary} moved from {c.old} to {c.new} (a failover)",
                                    evidence={"master": primary, "old": c.old, "new": c.new},
                                    query=f"SENTINEL GET-MASTER-ADDR-BY-NAME {primary}"))
            continue
        old, new = _int(c.old), _int(c.new)
        if old is None or new is None:
            continue
        if setting == "down-after-milliseconds":
            findings.append(_down_after(primary, c, old, new))
        elif setting == "quorum":
            findings.append(_quorum(primary, c, old, new, sentinels))
        elif setting == "failover-timeout" and new < old and new < FAST_FAILOVER_TIMEOUT_MS:
            findings.append(Finding(
                rule_id="sentinel.failover_timeout_lowered", severity=Severity.WARNING,
                message=f"{primary}: failover-timeout {c.old} -> {c.new} ms: a failover that needs longer (a big "
                        "data set to resync) is abandoned and retried, and two can overlap",
                evidence={"master": primary, "setting": "failover-timeout", "old": c.old, "new": c.new},
                query=f"SENTINEL MASTER {primary}"))
    return [f for f in findings if f is not None]
