"""PostgreSQL health rules: pure functions over one parsed observation. Each finding carries the exact values the
rule looked at (``evidence``) and the statement that produced them (``query``)."""

from __future__ import annotations

from collections.abc import Callable

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.postgresql import queries
from kubestack.plugins.postgresql.config import PostgreSQLConfig
from kubestack.plugins.postgresql.parse import (
    XID_WRAPAROUND,
    Observation,
    Session,
    client_sessions,
    connections_used_ratio,
)

Rule = Callable[[Observation, PostgreSQLConfig], list[Finding]]


def _session(s: Session) -> dict[str, object]:
    return {"pid": s.pid, "user": s.user, "db": s.db, "application": s.application, "state": s.state,
            "xact_age_s": round(s.xact_age_s, 3) if s.xact_age_s is not None else None,
            "state_age_s": round(s.state_age_s, 3) if s.state_age_s is not None else None, "query": s.query}


def connections_near_max(obs: Observation, limits: PostgreSQLConfig) -> list[Finding]:
    ratio = connections_used_ratio(obs.server, obs.sessions)
    if ratio is None or ratio < limits.connections_high_ratio:
        return []
    clients = client_sessions(obs.sessions)
    usable = obs.server.max_connections - obs.server.reserved_connections
    by_state: dict[str, int] = {}
    for s in clients:
        by_state[s.state or "unknown"] = by_state.get(s.state or "unknown", 0) + 1
    critical = ratio >= limits.connections_critical_ratio
    return [Finding(
        rule_id="postgresql.connections_near_max", severity=Severity.CRITICAL if critical else Severity.WARNING,
        message=f"{len(clients)} of {usable} connection slots are in use ({ratio:.0%}): new clients will soon get "
                "'too many clients already'",
        evidence={"client_connections": len(clients), "max_connections": obs.server.max_connections,
                  "superuser_reserved_connections": obs.server.reserved_connections,
                  "connections_used_ratio": round(ratio, 4), "by_state": dict(sorted(by_state.items()))},
        query=f"{queries.SERVER};\n{queries.ACTIVITY}")]


def long_transactions(obs: Observation, limits: PostgreSQLConfig) -> list[Finding]:
    old = sorted((s for s in client_sessions(obs.sessions)
                  if not s.own and s.xact_age_s is not None and s.xact_age_s >= limits.long_transaction_s),
                 key=lambda s: -(s.xact_age_s or 0))
    if not old:
        return []
    return [Finding(
        rule_id="postgresql.long_transaction", severity=Severity.WARNING,
        message=f"{len(old)} transaction(s) open for more than {limits.long_transaction_s:g}s, the longest "
                f"{old[0].xact_age_s:.0f}s (pid {old[0].pid}): they hold locks and keep vacuum from cleaning up",
        evidence={"threshold_s": limits.long_transaction_s, "sessions": [_session(s) for s in old[:limits.max_rows]]},
        query=queries.ACTIVITY)]


def idle_in_transaction(obs: Observation, limits: PostgreSQLConfig) -> list[Finding]:
    idle = sorted((s for s in client_sessions(obs.sessions) if s.state.startswith("idle in transaction")
                   and (s.state_age_s or 0) >= limits.idle_in_transaction_s), key=lambda s: -(s.state_age_s or 0))
    if not idle:
        return []
    return [Finding(
        rule_id="postgresql.idle_in_transaction", severity=Severity.WARNING,
        message=f"{len(idle)} session(s) idle inside an open transaction for more than "
                f"{limits.idle_in_transaction_s:g}s (pid {', '.join(str(s.pid) for s in idle[:5])}): "
                "the application forgot to commit or roll back",
        evidence={"threshold_s": limits.idle_in_transaction_s,
                  "sessions": [_session(s) for s in idle[:limits.max_rows]]},
        query=queries.ACTIVITY)]


def lock_waits(obs: Observation, limits: PostgreSQLConfig) -> list[Finding]:
    waits = [w for w in obs.lock_waits if w.wait_s >= limits.lock_wait_s][:limits.max_rows]
    return [Finding(
        rule_id="postgresql.lock_wait", severity=Severity.WARNING,
        message=f"pid {w.blocked_pid} has waited {w.wait_s:.1f}s for a {w.lock_mode or 'lock'} held by pid "
                f"{w.blocking_pid} ({w.blocking_state or 'unknown state'})",
        evidence={"blocked_pid": w.blocked_pid, "blocking_pid": w.blocking_pid, "wait_s": round(w.wait_s, 3),
                  "user": w.user, "db": w.db, "blocked_query": w.blocked_query, "blocking_state": w.blocking_state,
                  "blocking_query": w.blocking_query,
                  "blocking_xact_age_s": round(w.blocking_xact_age_s, 3) if w.blocking_xact_age_s is not None else None,
                  "lock_type": w.lock_type, "lock_mode": w.lock_mode, "threshold_s": limits.lock_wait_s},
        query=obs.blocking_query) for w in waits]


def low_cache_hit_ratio(obs: Observation, limits: PostgreSQLConfig) -> list[Finding]:
    findings = []
    for db in obs.databases:
        ratio = db.cache_hit_ratio
        judged = db.blocks_hit + db.blocks_read >= limits.cache_min_blocks
        if ratio is None or not judged or ratio >= limits.cache_hit_min_ratio:
            continue
        findings.append(Finding(
            rule_id="postgresql.low_cache_hit_ratio", severity=Severity.WARNING,
            message=f"database {db.name}: only {ratio:.1%} of block reads hit shared buffers: the working set does "
                    "not fit in shared_buffers",
            evidence={"db": db.name, "blks_hit": db.blocks_hit, "blks_read": db.blocks_read,
                      "cache_hit_ratio": round(ratio, 4), "threshold": limits.cache_hit_min_ratio},
            query=queries.DATABASES))
    return findings


def xid_age(obs: Observation, limits: PostgreSQLConfig) -> list[Finding]:
    findings = []
    freeze_max = obs.server.autovacuum_freeze_max_age
    for db in obs.databases:
        ratio = db.xid_age / XID_WRAPAROUND
        overdue = freeze_max > 0 and db.xid_age >= freeze_max * limits.freeze_overdue_factor
        if ratio < limits.xid_age_warning_ratio and not overdue:
            continue
        critical = ratio >= limits.xid_age_critical_ratio
        findings.append(Finding(
            rule_id="postgresql.xid_age_high", severity=Severity.CRITICAL if critical else Severity.WARNING,
            message=f"database {db.name}: age(datfrozenxid) is {db.xid_age} ({ratio:.1%} of the 2^31 wraparound "
                    "limit): VACUUM (FREEZE) it before PostgreSQL stops accepting writes",
            evidence={"db": db.name, "xid_age": db.xid_age, "wraparound_limit": XID_WRAPAROUND,
                      "xid_wraparound_ratio": round(ratio, 9), "autovacuum_freeze_max_age": freeze_max,
                      "warning_ratio": limits.xid_age_warning_ratio, "critical_ratio": limits.xid_age_critical_ratio},
            query=queries.DATABASES))
    return findings


def inactive_slots(obs: Observation, limits: PostgreSQLConfig) -> list[Finding]:
    findings = []
    for slot in obs.slots:
        retained = slot.retained_bytes or 0
        if slot.active or retained <= limits.slot_retained_max_bytes:
            continue
        lost = slot.wal_status in ("unreserved", "lost")
        findings.append(Finding(
            rule_id="postgresql.inactive_slot_retaining_wal", severity=Severity.CRITICAL if lost else Severity.WARNING,
            message=f"replication slot {slot.name} is inactive and holds back {retained / 1024**2:.1f} MiB of WAL: "
                    "pg_wal grows until its consumer returns or the slot is dropped",
            evidence={"slot": slot.name, "slot_type": slot.slot_type, "active": slot.active,
                      "retained_bytes": retained, "wal_status": slot.wal_status,
                      "threshold_bytes": limits.slot_retained_max_bytes},
            query=queries.SLOTS))
    return findings


def replica_lag(obs: Observation, limits: PostgreSQLConfig) -> list[Finding]:
    findings = []
    for r in obs.replicas:
        lag_bytes, lag_s = r.lag_bytes or 0, r.replay_lag_s or 0
        if lag_bytes <= limits.replica_lag_max_bytes and lag_s <= limits.replica_lag_max_s:
            continue
        findings.append(Finding(
            rule_id="postgresql.replica_lag", severity=Severity.WARNING,
            message=f"standby {r.name or r.client_addr} is {lag_bytes / 1024**2:.1f} MiB and {lag_s:.1f}s behind",
            evidence={"replica": r.name, "client_addr": r.client_addr, "state": r.state, "sync_state": r.sync_state,
                      "lag_bytes": lag_bytes, "replay_lag_s": lag_s, "max_bytes": limits.replica_lag_max_bytes,
                      "max_s": limits.replica_lag_max_s},
            query=queries.REPLICATION))
    lag = obs.server.replay_lag_s
    if obs.server.in_recovery and lag is not None and lag > limits.replica_lag_max_s:
        findings.append(Finding(
            rule_id="postgresql.replica_lag", severity=Severity.WARNING,
            message=f"this standby replays transactions {lag:.1f}s after the primary committed them",
            evidence={"replay_lag_s": round(lag, 3), "max_s": limits.replica_lag_max_s},
            query=queries.SERVER))
    return findings


RULES: tuple[Rule, ...] = (connections_near_max, long_transactions, idle_in_transaction, lock_waits,
                           low_cache_hit_ratio, xid_age, inactive_slots, replica_lag)


def evaluate(obs: Observation, limits: PostgreSQLConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
