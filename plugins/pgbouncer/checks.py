"""PgBouncer health rules: pure functions over one observation of the admin console (and, when the plugin probes
them, whether each pooled database's server accepts TCP connections). Each finding carries the values the rule
looked at (``evidence``) and the console commands that produced them (``query``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.pgbouncer.config import PgBouncerConfig
from kubestack.plugins.pgbouncer.parse import Database, Pool


@dataclass(frozen=True)
class Observation:
    pools: list[Pool]
    databases: list[Database]
    stats: dict[str, dict[str, float]]
    lists: dict[str, int]
    config: dict[str, str]
    unreachable: dict[str, str] = field(default_factory=dict)
    """Backend ``host:port`` → why a TCP connection to it failed (only those probed and failing)."""

    def database(self, name: str) -> Database | None:
        return next((d for d in self.databases if d.name == name), None)

    def setting(self, key: str) -> int:
        try:
            return int(self.config.get(key, "0"))
        except ValueError:
            return 0


Rule = Callable[[Observation, PgBouncerConfig], list[Finding]]


def _pool_evidence(pool: Pool) -> dict[str, object]:
    return {"db": pool.db, "user": pool.user, "cl_active": pool.cl_active, "cl_waiting": pool.cl_waiting,
            "sv_active": pool.sv_active, "sv_idle": pool.sv_idle, "sv_used": pool.sv_used, "sv_login": pool.sv_login,
            "maxwait_s": round(pool.maxwait_s, 3), "pool_mode": pool.mode}


def pool_size_of(obs: Observation, pool: Pool) -> int:
    """The size of ``pool``: its database's ``pool_size`` (SHOW DATABASES), else ``default_pool_size``."""
    db = obs.database(pool.db)
    return db.pool_size if db is not None and db.pool_size > 0 else obs.setting("default_pool_size")


def clients_waiting(obs: Observation, limits: PgBouncerConfig) -> list[Finding]:
    """Clients queue for a server connection: what the application feels as slow connects and queries."""
    waiting = [p for p in obs.pools if p.cl_waiting and p.maxwait_s >= limits.wait_max_s]
    if not waiting:
        return []
    worst = max(p.maxwait_s for p in waiting)
    return [Finding(
        rule_id="pgbouncer.clients_waiting",
        severity=Severity.CRITICAL if worst >= 10 * max(limits.wait_max_s, 1) else Severity.WARNING,
        message=f"{sum(p.cl_waiting for p in waiting)} client(s) wait for a server connection in "
                f"{len(waiting)} pool(s), the oldest for {worst:.1f}s",
        evidence={"pools": [_pool_evidence(p) for p in waiting],
                  "query_wait_timeout": obs.config.get("query_wait_timeout")},
        query="SHOW POOLS")]


def pool_exhausted(obs: Observation, _: PgBouncerConfig) -> list[Finding]:
    """Every server connection a pool may open is taken and clients queue behind them: the pool is the bottleneck
    (not a backend that is down: then the pool holds none)."""
    findings = []
    for pool in obs.pools:
        size = pool_size_of(obs, pool)
        if not pool.cl_waiting or not size or pool.servers < size:
            continue
        findings.append(Finding(
            rule_id="pgbouncer.pool_exhausted", severity=Severity.WARNING,
            message=f"pool {pool.db}/{pool.user} holds all {size} server connections it may open and "
                    f"{pool.cl_waiting} client(s) wait for one",
            evidence=_pool_evidence(pool) | {"pool_size": size,
                                             "default_pool_size": obs.setting("default_pool_size"),
                                             "reserve_pool_size": obs.setting("reserve_pool_size"),
                                             "max_db_connections": obs.setting("max_db_connections")},
            query="SHOW POOLS; SHOW DATABASES; SHOW CONFIG"))
    return findings


def backend_unreachable(obs: Observation, _: PgBouncerConfig) -> list[Finding]:
    """A pooled database's PostgreSQL server refuses TCP connections: its clients wait, then fail."""
    findings = []
    for backend, reason in sorted(obs.unreachable.items()):
        names = [d.name for d in obs.databases if d.backend == backend]
        waiting = sum(p.cl_waiting for p in obs.pools if p.db in names)
        findings.append(Finding(
            rule_id="pgbouncer.backend_unreachable", severity=Severity.CRITICAL,
            message=f"the PostgreSQL server {backend} behind {', '.join(names)} cannot be reached ({reason}): "
                    f"{waiting} client(s) wait",
            evidence={"backend": backend, "databases": names, "reason": reason, "cl_waiting": waiting},
            query="SHOW DATABASES; TCP connect to host:port"))
    return findings


def database_paused(obs: Observation, _: PgBouncerConfig) -> list[Finding]:
    """PAUSE (or KILL) holds a database's clients until RESUME; DISABLE refuses new ones."""
    held = [d for d in obs.databases if d.paused or d.disabled]
    if not held:
        return []
    return [Finding(
        rule_id="pgbouncer.database_paused", severity=Severity.WARNING,
        message="clients of " + ", ".join(f"{d.name} ({'paused' if d.paused else 'disabled'})" for d in held)
                + " are held or refused until RESUME / ENABLE",
        evidence={"databases": [{"db": d.name, "paused": int(d.paused), "disabled": int(d.disabled),
                                 "cl_waiting": sum(p.cl_waiting for p in obs.pools if p.db == d.name)}
                                for d in held]},
        query="SHOW DATABASES; SHOW POOLS")]


def client_connections_high(obs: Observation, limits: PgBouncerConfig) -> list[Finding]:
    limit, used = obs.setting("max_client_conn"), obs.lists.get("used_clients", 0)
    if not limit or used / limit < limits.clients_high_ratio:
        return []
    ratio = used / limit
    return [Finding(
        rule_id="pgbouncer.client_connections_near_limit",
        severity=Severity.CRITICAL if ratio >= 0.95 else Severity.WARNING,
        message=f"{used} of max_client_conn {limit} client connections are in use ({ratio:.0%}): new clients "
                "will be refused",
        evidence={"used_clients": used, "max_client_conn": limit, "ratio": round(ratio, 4),
                  "login_clients": obs.lists.get("login_clients", 0)},
        query="SHOW LISTS; SHOW CONFIG")]


def avg_wait_high(obs: Observation, limits: PgBouncerConfig) -> list[Finding]:
    """The average wait for a server over the last stats period (SHOW STATS, microseconds)."""
    slow = {db: s["avg_wait_time"] / 1000 for db, s in obs.stats.items()
            if s.get("avg_wait_time", 0) / 1000 >= limits.avg_wait_max_ms > 0}
    if not slow:
        return []
    return [Finding(
        rule_id="pgbouncer.avg_wait_high", severity=Severity.WARNING,
        message="clients waited for a server connection on average "
                + ", ".join(f"{ms:.0f} ms on {db}" for db, ms in sorted(slow.items()))
                + f" over the last stats period ({obs.config.get('stats_period', '?')}s)",
        evidence={"avg_wait_ms": {db: round(ms, 1) for db, ms in slow.items()},
                  "avg_xact_count": {db: obs.stats[db].get("avg_xact_count", 0) for db in slow},
                  "stats_period": obs.config.get("stats_period")},
        query="SHOW STATS")]


RULES: tuple[Rule, ...] = (clients_waiting, pool_exhausted, backend_unreachable, database_paused,
                           client_connections_high, avg_wait_high)


def evaluate(obs: Observation, limits: PgBouncerConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
