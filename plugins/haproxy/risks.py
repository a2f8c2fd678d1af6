"""Which HAProxy configuration changes are risky (the worker's config-risk stage); pure, over the snapshot keys of
``snapshot.py``."""

from __future__ import annotations

import re

from kubestack.contract.events import ConfigChange, ConfigDiff, Finding, Severity

SERVER_KEY = re.compile(r"^server (?P<backend>[^/\s]+)/(?P<server>\S+) (?P<what>address|maxconn|weight|check)$")
_FRONTEND_MAXCONN = re.compile(r"^frontend (?P<frontend>\S+) maxconn$")


def _limit(text: str | None) -> int | None:
    """A maxconn: None when unset or 0 (no limit)."""
    try:
        value = int(text) if text else 0
    except ValueError:
        return None
    return value or None


def _lowered(c: ConfigDiff) -> bool:
    old, new = _limit(c.old), _limit(c.new)
    return new is not None and (old is None or new < old)


def config_risks(change: ConfigChange) -> list[Finding]:
    findings = []
    current = change.observed.get("haproxy_current_connections")
    lowered = [c for c in change.changes if (c.key == "global maxconn" or _FRONTEND_MAXCONN.match(c.key))
               and c.old is not None and _lowered(c)]
    if lowered:
        below = current is not None and any(c.key == "global maxconn" and _limit(c.new) < current for c in lowered)
        findings.append(Finding(
            rule_id="haproxy.maxconn_lowered", severity=Severity.CRITICAL if below else Severity.WARNING,
            message="connection limits lowered: " + ", ".join(f"{c.key} {c.old or 'none'} -> {c.new}" for c in lowered)
                    + (f", below the {int(current)} connections open" if below else ""),
            evidence={"changes": {c.key: {"old": c.old, "new": c.new} for c in lowered}, "current_connections": current,
                      "setting": lowered[0].key, "old": lowered[0].old, "new": lowered[0].new},
            query="show info; show stat"))
    servers = [(c, m) for c in change.changes if (m := SERVER_KEY.match(c.key))]
    capped = [(c, m) for c, m in servers if m["what"] == "maxconn" and c.old is not None and c.new is not None
              and _lowered(c)]
    if capped:
        c, m = capped[0]
        findings.append(Finding(
            rule_id="haproxy.server_maxconn_lowered", severity=Severity.WARNING,
            message="server connection limits lowered: requests queue once a server is full: "
                    + ", ".join(f"{m['backend']}/{m['server']} {c.old or 'none'} -> {c.new}" for c, m in capped),
            evidence={"backend": m["backend"], "server": m["server"], "setting": c.key, "old": c.old, "new": c.new,
                      "changes": {c.key: {"old": c.old, "new": c.new} for c, _ in capped}},
            query="show stat"))
    unchecked = [(c, m) for c, m in servers if m["what"] == "check" and c.old == "enabled"
                 and c.new in ("disabled", "none")]
    if unchecked:
        c, m = unchecked[0]
        findings.append(Finding(
            rule_id="haproxy.health_check_disabled", severity=Severity.WARNING,
            message="health checks turned off: a dead server keeps receiving requests: "
                    + ", ".join(f"{m['backend']}/{m['server']}" for _, m in unchecked),
            evidence={"backend": m["backend"], "server": m["server"], "setting": c.key, "old": c.old, "new": c.new},
            query="show servers state"))
    removed = [(c, m) for c, m in servers if m["what"] == "address" and c.old and c.new is None]
    if removed:
        c, m = removed[0]
        findings.append(Finding(
            rule_id="haproxy.server_removed", severity=Severity.WARNING,
            message="servers removed from their backends (less capacity): "
                    + ", ".join(f"{m['backend']}/{m['server']} ({c.old})" for c, m in removed),
            evidence={"backend": m["backend"], "server": m["server"], "setting": c.key, "old": c.old,
                      "removed": [f"{m['backend']}/{m['server']}" for _, m in removed]},
            query="show stat"))
    return findings
