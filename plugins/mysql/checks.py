"""MySQL/MariaDB health rules: pure functions over one parsed observation. Each finding carries the exact values
the rule looked at (``evidence``) and the statement that produced them (``query``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.mysql import queries
from kubestack.plugins.mysql.binlogs import LOST_STREAM_ERRNO, BinaryLog, is_purged
from kubestack.plugins.mysql.config import MySQLConfig
from kubestack.plugins.mysql.parse import ReplicaStatus, Row, buffer_pool_hit_ratio, connections_used_ratio, number

MAX_TEXT = 200


@dataclass(frozen=True)
class Observation:
    status: dict[str, str]
    variables: dict[str, str]
    replicas: list[ReplicaStatus]
    long_queries: list[Row]
    lock_waits: list[Row]
    replica_query: str
    long_queries_query: str
    lock_waits_query: str
    """The statements that produced the three lists above, quoted in findings."""
    source_binlogs: dict[str, list[BinaryLog]] = field(default_factory=dict)
    """On a replica: its primaries' binary logs by ``host:port`` (those the plugin could read)."""


Rule = Callable[[Observation, MySQLConfig], list[Finding]]


def _int(values: dict[str, str], key: str) -> int:
    return int(number(values, key) or 0)


def _truncate(value: str | None) -> str | None:
    if value is None or len(value) <= MAX_TEXT:
        return value
    return value[:MAX_TEXT] + "..."


def connections_near_max(obs: Observation, limits: MySQLConfig) -> list[Finding]:
    ratio = connections_used_ratio(obs.status, obs.variables)
    if ratio is None or ratio < limits.connections_high_ratio:
        return []
    connected, maximum = _int(obs.status, "Threads_connected"), _int(obs.variables, "max_connections")
    critical = ratio >= limits.connections_critical_ratio
    return [Finding(
        rule_id="mysql.connections_near_max", severity=Severity.CRITICAL if critical else Severity.WARNING,
        message=f"{connected} of {maximum} connections are in use ({ratio:.0%}): new clients will soon be refused "
                "with 'Too many connections'",
        evidence={"threads_connected": connected, "max_connections": maximum, "connections_used_ratio": round(ratio, 4),
                  "threads_running": _int(obs.status, "Threads_running"),
                  "max_used_connections": _int(obs.status, "Max_used_connections"),
                  "connection_errors_max_connections": _int(obs.status, "Connection_errors_max_connections")},
        query="SHOW GLOBAL STATUS LIKE 'Threads_%'; SHOW GLOBAL VARIABLES LIKE 'max_connections'")]


def long_running_queries(obs: Observation, limits: MySQLConfig) -> list[Finding]:
    slow = [q for q in obs.long_queries if int(q.get("time") or 0) >= limits.long_query_s]
    if not slow:
        return []
    return [Finding(
        rule_id="mysql.long_running_query", severity=Severity.WARNING,
        message=f"{len(slow)} statement(s) running for more than {limits.long_query_s}s, the longest "
                f"{max(int(q['time'] or 0) for q in slow)}s",
        evidence={"threshold_s": limits.long_query_s,
                  "queries": [{"id": int(q["id"] or 0), "user": q.get("user"), "host": q.get("host"), "db": q.get("db"),
                               "time": int(q["time"] or 0), "state": q.get("state"), "info": _truncate(q.get("info"))}
                              for q in slow]},
        query=obs.long_queries_query)]


def row_lock_waits(obs: Observation, limits: MySQLConfig) -> list[Finding]:
    waits = [w for w in obs.lock_waits if int(w.get("wait_s") or 0) >= limits.lock_wait_min_s]
    if not waits:
        return []
    blockers = sorted({int(w["blocking_id"] or 0) for w in waits})
    return [Finding(
        rule_id="mysql.row_lock_waits", severity=Severity.WARNING,
        message=f"{len(waits)} transaction(s) wait for row locks held by connection(s) "
                f"{', '.join(map(str, blockers))}",
        evidence={"threshold_s": limits.lock_wait_min_s,
                  "innodb_lock_wait_timeout": _int(obs.variables, "innodb_lock_wait_timeout"),
                  "innodb_row_lock_current_waits": _int(obs.status, "Innodb_row_lock_current_waits"),
                  "waits": [{"waiting_id": int(w["waiting_id"] or 0), "wait_s": int(w["wait_s"] or 0),
                             "waiting_query": _truncate(w.get("waiting_query")),
                             "blocking_id": int(w["blocking_id"] or 0), "blocking_user": w.get("blocking_user"),
                             "blocking_command": w.get("blocking_command"),
                             "blocking_trx_age_s": int(w.get("blocking_trx_age_s") or 0),
                             "blocking_query": _truncate(w.get("blocking_query")),
                             "lock_table": w.get("lock_table"), "lock_mode": w.get("lock_mode")} for w in waits]},
        query=obs.lock_waits_query)]


def buffer_pool_hit_rate(obs: Observation, limits: MySQLConfig) -> list[Finding]:
    ratio = buffer_pool_hit_ratio(obs.status)
    requests = _int(obs.status, "Innodb_buffer_pool_read_requests")
    if ratio is None or requests < limits.buffer_pool_min_requests or ratio >= limits.buffer_pool_hit_min:
        return []
    return [Finding(
        rule_id="mysql.buffer_pool_hit_rate_low", severity=Severity.WARNING,
        message=f"only {ratio:.1%} of InnoDB page reads are served from the buffer pool: the working set does "
                "not fit in innodb_buffer_pool_size",
        evidence={"innodb_buffer_pool_read_requests": requests,
                  "innodb_buffer_pool_reads": _int(obs.status, "Innodb_buffer_pool_reads"),
                  "buffer_pool_hit_ratio": round(ratio, 4),
                  "innodb_buffer_pool_size": _int(obs.variables, "innodb_buffer_pool_size")},
        query="SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_read%'; "
              "SHOW GLOBAL VARIABLES LIKE 'innodb_buffer_pool_size'")]


def replication(obs: Observation, limits: MySQLConfig) -> list[Finding]:
    findings = []
    for r in obs.replicas:
        evidence = {"channel": r.channel, "source": r.source, "io_running": r.io_running,
                    "sql_running": r.sql_running, "seconds_behind": r.seconds_behind,
                    "last_io_error": _truncate(r.last_io_error), "last_sql_error": _truncate(r.last_sql_error)}
        if r.io_running != "Yes" or r.sql_running != "Yes":
            findings.append(Finding(
                rule_id="mysql.replica_stopped", severity=Severity.CRITICAL,
                message=f"replication from {r.source} is not running (IO thread {r.io_running}, SQL thread "
                        f"{r.sql_running}): {r.last_io_error or r.last_sql_error or 'no error recorded'}",
                evidence=evidence, query=obs.replica_query))
        elif r.seconds_behind is not None and r.seconds_behind > limits.replica_lag_max_s:
            findings.append(Finding(
                rule_id="mysql.replica_lagging", severity=Severity.WARNING,
                message=f"this replica is {r.seconds_behind}s behind {r.source}",
                evidence=evidence | {"threshold_s": limits.replica_lag_max_s}, query=obs.replica_query))
    return findings


def binlog_stream_lost(obs: Observation, limits: MySQLConfig) -> list[Finding]:
    """A replica that needs a binary log its primary no longer has: seen in the primary's list (before the IO
    thread even asks, when it is stopped) or in the IO thread's error 1236."""
    findings = []
    for r in obs.replicas:
        logs = obs.source_binlogs.get(r.source)
        purged = logs is not None and is_purged(r.master_log_file, logs)
        if not purged and r.last_io_errno != LOST_STREAM_ERRNO:
            continue
        oldest = logs[0].name if logs else None
        findings.append(Finding(
            rule_id="mysql.replica_binlog_purged", severity=Severity.CRITICAL,
            message=f"this replica has lost its binary log stream from {r.source}: it needs {r.master_log_file} "
                    f"(position {r.read_master_log_pos}) "
                    + (f"and the oldest binary log kept there is {oldest}" if purged else
                       f"and its IO thread failed with error {LOST_STREAM_ERRNO}: {_truncate(r.last_io_error)}")
                    + "; what the primary wrote there never reaches it: rebuild it from a backup of the primary",
            evidence={"channel": r.channel, "source": r.source, "needed_file": r.master_log_file,
                      "read_position": r.read_master_log_pos, "oldest_on_source": oldest,
                      "io_running": r.io_running, "last_io_errno": r.last_io_errno,
                      "last_io_error": _truncate(r.last_io_error)},
            query=f"{obs.replica_query}; {queries.BINARY_LOGS} (on {r.source})"))
    return findings


RULES: tuple[Rule, ...] = (connections_near_max, long_running_queries, row_lock_waits, buffer_pool_hit_rate,
                           replication, binlog_stream_lost)


def evaluate(obs: Observation, limits: MySQLConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
