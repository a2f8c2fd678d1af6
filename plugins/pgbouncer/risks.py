"""Which PgBouncer configuration changes are risky (the worker's config-risk stage; the snapshot is SHOW CONFIG)."""

from __future__ import annotations

from kubestack.contract.events import ConfigChange, Finding, Severity

_WEAK_AUTH = frozenset({"trust", "any", "plain"})


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def config_risks(change: ConfigChange) -> list[Finding]:
    diffs = {c.key: c for c in change.changes}
    findings = []
    if (c := diffs.get("default_pool_size")) is not None:
        old, new = _int(c.old), _int(c.new)
        if old is not None and new is not None and new < old:
            in_use = change.observed.get("pgbouncer_server_connections")
            findings.append(Finding(
                rule_id="pgbouncer.pool_size_lowered", severity=Severity.WARNING,
                message=f"default_pool_size lowered from {old} to {new}: busy pools queue clients sooner",
                evidence={"old": c.old, "new": c.new, "server_connections": in_use},
                query="SHOW CONFIG"))
    if (c := diffs.get("max_client_conn")) is not None:
        old, new = _int(c.old), _int(c.new)
        if old is not None and new is not None and new < old:
            used = change.observed.get("pgbouncer_client_connections")
            below = used is not None and new <= used
            findings.append(Finding(
                rule_id="pgbouncer.max_client_conn_lowered", severity=Severity.CRITICAL if below else Severity.WARNING,
                message=f"max_client_conn lowered from {old} to {new}"
                        + (f", at or below the {int(used)} clients connected: new clients are refused" if below
                           else ""),
                evidence={"old": c.old, "new": c.new, "client_connections": used}, query="SHOW CONFIG; SHOW LISTS"))
    if (c := diffs.get("pool_mode")) is not None:
        findings.append(Finding(
            rule_id="pgbouncer.pool_mode_changed",
            severity=Severity.CRITICAL if c.new in ("transaction", "statement") else Severity.WARNING,
            message=f"pool_mode changed from {c.old} to {c.new}"
                    + (": session state (prepared statements, SET, advisory locks, LISTEN) no longer survives "
                       "between transactions" if c.new in ("transaction", "statement") else ""),
            evidence={"old": c.old, "new": c.new}, query="SHOW CONFIG"))
    if (c := diffs.get("auth_type")) is not None and c.new in _WEAK_AUTH:
        findings.append(Finding(
            rule_id="pgbouncer.auth_weakened", severity=Severity.CRITICAL,
            message=f"auth_type changed from {c.old} to {c.new}: clients log in without a real password check",
            evidence={"old": c.old, "new": c.new}, query="SHOW CONFIG"))
    return findings
