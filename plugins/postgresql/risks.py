"""Which PostgreSQL configuration changes are risky (used by the worker's config-risk stage).

Values are pg_settings' ``setting`` column, in the setting's own unit (``shared_buffers`` in 8 kB pages,
``work_mem`` in kB): a rule compares an old value with a new one of the same unit, never with a constant in
bytes. Current use comes from the metrics the agent saw last (``ConfigChange.observed``), which hold the
plugin's unlabelled series only: client connections are there, standbys and slots (labelled per standby and
per slot) are not, so lowering ``max_wal_senders`` or ``max_replication_slots`` is judged on the change alone.
"""

from __future__ import annotations

from kubestack.contract.events import ConfigChange, ConfigDiff, Finding, Severity

CONNECTIONS_METRIC = "postgresql_client_connections"
HEADROOM = 0.2
"""Below this share of max_connections left free over the client connections open now, a cut is a warning."""
SHRINK_RATIO = 0.5
"""Memory settings cut to less than this share of their old value are flagged."""

_DURABILITY = {
    "fsync": ("on", Severity.CRITICAL, "a crash of the OS or the host can corrupt the cluster"),
    "full_page_writes": ("on", Severity.CRITICAL, "a crash during a write can leave torn pages that WAL cannot repair"),
    "synchronous_commit": (None, Severity.WARNING, "commits acknowledged just before a crash can be lost"),
}
_WAL_LEVELS = {"minimal": 0, "replica": 1, "logical": 2}
_MEMORY = {"shared_buffers": "8kB pages", "work_mem": "kB"}
_REPLICATION_LIMITS = {"max_wal_senders": "standbys and base backups that can stream WAL",
                       "max_replication_slots": "replication slots that can exist"}


def config_risks(change: ConfigChange) -> list[Finding]:
    diffs = {c.key: c for c in change.changes if c.old is not None and c.new is not None}
    findings = []
    if (c := diffs.get("max_connections")) is not None:
        findings += _max_connections(c, change.observed.get(CONNECTIONS_METRIC))
    for key, (safe, severity, consequence) in _DURABILITY.items():
        c = diffs.get(key)
        if c is not None and c.new == "off" and c.old != "off" and (safe is None or c.old == safe):
            findings.append(_finding("postgresql.durability_lowered", severity,
                                     f"{key} turned off (was {c.old}): {consequence}", c))
    if (c := diffs.get("wal_level")) is not None:
        findings += _wal_level(c)
    if (c := diffs.get("archive_mode")) is not None and c.new == "off" and c.old in ("on", "always"):
        findings.append(_finding("postgresql.archiving_disabled", Severity.WARNING,
                                 f"archive_mode turned off (was {c.old}): WAL is no longer archived, so "
                                 "point-in-time recovery past this moment is impossible", c))
    for key, unit in _MEMORY.items():
        c = diffs.get(key)
        if c is not None and _shrunk(c.old, c.new):
            findings.append(_finding("postgresql.memory_cut", Severity.WARNING,
                                     f"{key} cut from {c.old} to {c.new} ({unit}), to under "
                                     f"{SHRINK_RATIO:.0%} of its value: more disk reads and temporary files", c))
    for key in ("autovacuum", "track_counts"):
        c = diffs.get(key)
        if c is not None and c.old == "on" and c.new == "off":
            findings.append(_finding("postgresql.autovacuum_disabled", Severity.WARNING,
                                     f"{key} turned off: dead rows are no longer vacuumed automatically (bloat) "
                                     "and anti-wraparound freezing depends on manual VACUUM", c))
    for key, meaning in _REPLICATION_LIMITS.items():
        c = diffs.get(key)
        if c is not None and _lowered(c.old, c.new):
            severity = Severity.CRITICAL if _number(c.new) == 0 else Severity.WARNING
            findings.append(_finding("postgresql.replication_limit_lowered", severity,
                                     f"{key} lowered from {c.old} to {c.new}: fewer {meaning}; standbys or "
                                     "slots beyond the new limit are refused", c))
    return findings


def _max_connections(c: ConfigDiff, connected: float | None) -> list[Finding]:
    if not _lowered(c.old, c.new):
        return []
    new = _number(c.new)
    evidence = {"client_connections": connected}
    if connected is None:
        return [_finding("postgresql.max_connections_cut", Severity.WARNING,
                         f"max_connections cut from {c.old} to {c.new}; current connections unknown", c, evidence)]
    if new <= connected:
        return [_finding("postgresql.max_connections_cut", Severity.CRITICAL,
                         f"max_connections cut from {c.old} to {c.new}, at or below the {int(connected)} client "
                         "connections open now: new connections will be refused", c, evidence)]
    if connected > (1 - HEADROOM) * new:
        return [_finding("postgresql.max_connections_cut", Severity.WARNING,
                         f"max_connections cut from {c.old} to {c.new}, leaving under {HEADROOM:.0%} headroom over "
                         f"the {int(connected)} client connections open now", c, evidence)]
    return []


def _wal_level(c: ConfigDiff) -> list[Finding]:
    old, new = _WAL_LEVELS.get(c.old), _WAL_LEVELS.get(c.new)
    if old is None or new is None or new >= old:
        return []
    if new < _WAL_LEVELS["replica"]:
        return [_finding("postgresql.wal_level_lowered", Severity.CRITICAL,
                         f"wal_level lowered from {c.old} to {c.new}: standbys can no longer stream, and base "
                         "backups and WAL archives cannot be used for point-in-time recovery", c)]
    return [_finding("postgresql.wal_level_lowered", Severity.WARNING,
                     f"wal_level lowered from {c.old} to {c.new}: logical replication and logical slots stop "
                     "working", c)]


def _finding(rule_id: str, severity: Severity, message: str, c: ConfigDiff, extra: dict | None = None) -> Finding:
    return Finding(rule_id=rule_id, severity=severity, message=message,
                   evidence={"setting": c.key, "old": c.old, "new": c.new, **(extra or {})},
                   query=f"select name, setting from pg_settings where name = '{c.key}'")


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _lowered(old: str | None, new: str | None) -> bool:
    a, b = _number(old), _number(new)
    return a is not None and b is not None and b < a


def _shrunk(old: str | None, new: str | None) -> bool:
    a, b = _number(old), _number(new)
    return a is not None and b is not None and a > 0 and b < SHRINK_RATIO * a
