"""Which etcd configuration changes are risky (used by the worker's config-risk stage). The snapshot is what a
member shows of its configuration: the quota, versions, the client URL scheme and the membership."""

from __future__ import annotations

from kubestack.contract.events import ConfigChange, Finding, Severity


def config_risks(change: ConfigChange) -> list[Finding]:
    diffs = {c.key: c for c in change.changes}
    findings = []
    if (c := diffs.get("quota_backend_bytes")) is not None:
        old, new = _int(c.old), _int(c.new)
        used = change.observed.get("etcd_db_size_bytes")
        if new is not None and old is not None and new < old:
            below = used is not None and new <= used
            findings.append(Finding(
                rule_id="etcd.quota_lowered", severity=Severity.CRITICAL if below else Severity.WARNING,
                message=f"the backend quota was lowered from {c.old} to {c.new} bytes"
                        + (f", at or below the {int(used)}-byte database: NOSPACE follows" if below else ""),
                evidence={"old": c.old, "new": c.new, "db_size": used},
                query="GET /metrics etcd_server_quota_backend_bytes"))
    membership = [c for key, c in diffs.items() if key == "members" or key.startswith("member.")]
    if membership:
        count = diffs.get("members")
        shrank = count is not None and (_int(count.new) or 0) < (_int(count.old) or 0)
        even = count is not None and (_int(count.new) or 0) % 2 == 0
        findings.append(Finding(
            rule_id="etcd.membership_changed", severity=Severity.WARNING,
            message="etcd membership changed: " + ", ".join(f"{c.key} {c.old!r} -> {c.new!r}" for c in membership)
                    + ("; fewer members tolerate fewer failures" if shrank else "")
                    + ("; an even member count tolerates no more failures than one less" if even else ""),
            evidence={c.key: {"old": c.old, "new": c.new} for c in membership},
            query="POST /v3/cluster/member/list"))
    schemes = [c for key, c in diffs.items() if key.endswith("_urls") and "https://" in (c.old or "")
               and "http://" in (c.new or "")]
    if schemes:
        findings.append(Finding(
            rule_id="etcd.tls_disabled", severity=Severity.CRITICAL,
            message="an etcd URL moved from https to plain http: " + ", ".join(c.key for c in schemes)
                    + "; keys (Kubernetes Secrets among them) cross the network in clear text",
            evidence={c.key: {"old": c.old, "new": c.new} for c in schemes},
            query="POST /v3/cluster/member/list"))
    if (c := diffs.get("version")) is not None and c.old and c.new:
        down = _version(c.new) < _version(c.old)
        findings.append(Finding(
            rule_id="etcd.version_changed", severity=Severity.CRITICAL if down else Severity.WARNING,
            message=f"etcd version changed from {c.old} to {c.new}"
                    + (": a downgrade, which etcd supports only through its downgrade procedure" if down else ""),
            evidence={"old": c.old, "new": c.new}, query="GET /version"))
    return findings


def _int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())
