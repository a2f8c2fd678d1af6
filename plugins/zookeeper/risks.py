"""Which ZooKeeper configuration changes are risky (used by the worker's config-risk stage), over the ``conf``
snapshot: the connection limit, session timeouts, the ensemble (``server.N``) and whether the transaction log has its
own directory (``txnlog_dedicated``)."""

from __future__ import annotations

from kubestack.contract.events import ConfigChange, Finding, Severity


def config_risks(change: ConfigChange) -> list[Finding]:
    diffs = {c.key: c for c in change.changes}
    findings = []
    if (c := diffs.get("maxClientCnxns")) is not None:
        old, new = _int(c.old), _int(c.new)
        if new is not None and new > 0 and (old == 0 or (old is not None and new < old)):
            busiest = change.observed.get("zookeeper_connections_max_per_ip")
            over = busiest is not None and busiest >= new
            findings.append(Finding(
                rule_id="zookeeper.max_cnxns_lowered", severity=Severity.CRITICAL if over else Severity.WARNING,
                message=f"maxClientCnxns lowered from {c.old} to {c.new} per client IP"
                        + (f", at or below the {int(busiest)} connections one IP holds: new ones are refused" if over
                           else ""),
                evidence={"old": c.old, "new": c.new, "connections_max_per_ip": busiest}, query="conf maxClientCnxns"))
    timeouts = [c for key, c in diffs.items() if key in ("maxSessionTimeout", "minSessionTimeout", "tickTime")
                and _int(c.new) is not None and _int(c.old) is not None and _int(c.new) < _int(c.old)]
    if timeouts:
        findings.append(Finding(
            rule_id="zookeeper.session_timeout_lowered", severity=Severity.WARNING,
            message="session timeouts shortened: " + ", ".join(f"{c.key} {c.old} -> {c.new}" for c in timeouts)
                    + "; a GC pause or a network hiccup now expires sessions and their ephemeral nodes",
            evidence={c.key: {"old": c.old, "new": c.new} for c in timeouts},
            query="conf minSessionTimeout, maxSessionTimeout, tickTime"))
    ensemble = [c for key, c in diffs.items() if key.startswith("server.")]
    if ensemble:
        removed = [c.key for c in ensemble if c.new is None]
        findings.append(Finding(
            rule_id="zookeeper.ensemble_changed", severity=Severity.WARNING,
            message="the ensemble changed: " + ", ".join(f"{c.key} {c.old!r} -> {c.new!r}" for c in ensemble)
                    + ("; fewer members tolerate fewer failures" if removed else ""),
            evidence={c.key: {"old": c.old, "new": c.new} for c in ensemble}, query="conf (membership)"))
    if (c := diffs.get("txnlog_dedicated")) is not None and c.old == "yes" and c.new == "no":
        log = diffs.get("dataLogDir")
        findings.append(Finding(
            rule_id="zookeeper.txnlog_shared", severity=Severity.WARNING,
            message="the transaction log moved into the snapshot directory"
                    + (f" ({log.old} -> {log.new})" if log else "")
                    + ": snapshots and log fsyncs now compete for one disk, and every write waits on the log's fsync",
            evidence={"txnlog_dedicated": {"old": c.old, "new": c.new},
                      "dataLogDir": {"old": log.old, "new": log.new} if log else None},
            query="conf dataDir, dataLogDir"))
    return findings


def _int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None
