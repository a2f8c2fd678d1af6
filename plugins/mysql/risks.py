"""Which MySQL/MariaDB configuration changes are risky (used by the worker's config-risk stage)."""

from __future__ import annotations

from kubestack.contract.events import ConfigChange, Finding, Severity

_DURABILITY = {"innodb_flush_log_at_trx_commit": "1", "sync_binlog": "1"}


def config_risks(change: ConfigChange) -> list[Finding]:
    diffs = {c.key: c for c in change.changes}
    findings = []
    if (c := diffs.get("max_connections")) is not None and _lower(c.old, c.new):
        connected = change.observed.get("mysql_threads_connected")
        below = connected is not None and float(c.new) <= connected
        findings.append(Finding(
            rule_id="mysql.max_connections_cut", severity=Severity.CRITICAL if below else Severity.WARNING,
            message=f"max_connections cut from {c.old} to {c.new}"
                    + (f", at or below the {int(connected)} connections open now" if below else ""),
            evidence={"old": c.old, "new": c.new, "threads_connected": connected},
            query="SHOW GLOBAL VARIABLES LIKE 'max_connections'"))
    if (c := diffs.get("innodb_buffer_pool_size")) is not None and _lower(c.old, c.new):
        findings.append(Finding(rule_id="mysql.buffer_pool_shrunk", severity=Severity.WARNING,
                                message=f"innodb_buffer_pool_size shrunk from {c.old} to {c.new}",
                                evidence={"old": c.old, "new": c.new},
                                query="SHOW GLOBAL VARIABLES LIKE 'innodb_buffer_pool_size'"))
    for key, safe in _DURABILITY.items():
        if (c := diffs.get(key)) is not None and c.old == safe and c.new != safe:
            findings.append(Finding(rule_id="mysql.durability_lowered", severity=Severity.WARNING,
                                    message=f"{key} changed from {c.old} to {c.new}: commits can be lost on a crash",
                                    evidence={"old": c.old, "new": c.new},
                                    query=f"SHOW GLOBAL VARIABLES LIKE '{key}'"))
    if (c := diffs.get("read_only")) is not None:
        findings.append(Finding(rule_id="mysql.read_only_changed", severity=Severity.WARNING,
                                message=f"read_only changed from {c.old} to {c.new}",
                                evidence={"old": c.old, "new": c.new}, query="SHOW GLOBAL VARIABLES LIKE 'read_only'"))
    return findings


def _lower(old: str | None, new: str | None) -> bool:
    try:
        return old is not None and new is not None and float(new) < float(old)
    except ValueError:
        return False
