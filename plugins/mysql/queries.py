"""The SQL the MySQL plugin runs, chosen by server flavor and version where MariaDB and MySQL differ."""

from __future__ import annotations

from kubestack.plugins.mysql.parse import ServerVersion

GLOBAL_STATUS = "SHOW GLOBAL STATUS"
GLOBAL_VARIABLES = "SHOW GLOBAL VARIABLES"
INNODB_STATUS = "SHOW ENGINE INNODB STATUS"
VERSION = "SELECT VERSION() AS version"
BINARY_LOGS = "SHOW BINARY LOGS"
"""The primary's binary logs with their sizes, oldest first; needs BINLOG MONITOR (MariaDB 10.5+) or REPLICATION
CLIENT (MySQL)."""
BINLOG_VARIABLES = ("SHOW GLOBAL VARIABLES WHERE Variable_name IN "
                    "('binlog_expire_logs_seconds', 'expire_logs_days', 'log_bin', 'log_bin_basename')")
REPLICA_HOSTS = "SHOW SLAVE HOSTS"
"""Replicas with their listening port; needs REPLICATION MASTER ADMIN on MariaDB 10.5+ (optional)."""

# Who is connected: application hosts, and replicas (their 'Binlog Dump' threads). System threads have no host.
CONNECTIONS = """SELECT HOST AS host, USER AS user, COMMAND AS command
FROM information_schema.PROCESSLIST
WHERE ID <> CONNECTION_ID() AND HOST <> '' AND USER NOT IN ('system user', 'event_scheduler')
LIMIT {limit}"""

# Replication threads, the event scheduler and idle connections run "forever" by design.
LONG_QUERIES = """SELECT ID AS id, USER AS user, HOST AS host, DB AS db, COMMAND AS command, TIME AS time,
 STATE AS state, LEFT(INFO, {max_info}) AS info
FROM information_schema.PROCESSLIST
WHERE COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Slave_IO', 'Slave_SQL',
  'Slave_worker', 'Connect')
 AND USER NOT IN ('system user', 'event_scheduler') AND ID <> CONNECTION_ID() AND TIME >= {min_seconds}
ORDER BY TIME DESC LIMIT {limit}"""

_WAITS_SELECT = """SELECT r.trx_mysql_thread_id AS waiting_id,
 TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()) AS wait_s, LEFT(r.trx_query, {max_info}) AS waiting_query,
 b.trx_mysql_thread_id AS blocking_id, TIMESTAMPDIFF(SECOND, b.trx_started, NOW()) AS blocking_trx_age_s,
 LEFT(b.trx_query, {max_info}) AS blocking_query,
 p.USER AS blocking_user, p.COMMAND AS blocking_command, p.TIME AS blocking_time_s, {lock_columns}
"""

# MariaDB, and MySQL before 8.0: information_schema.INNODB_LOCK_WAITS / INNODB_LOCKS.
_WAITS_INFORMATION_SCHEMA = _WAITS_SELECT.replace(
    "{lock_columns}", "l.lock_table AS lock_table, l.lock_index AS lock_index, l.lock_mode AS lock_mode") + """
FROM information_schema.INNODB_LOCK_WAITS w
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
LEFT JOIN information_schema.INNODB_LOCKS l ON l.lock_id = w.requested_lock_id
LEFT JOIN information_schema.PROCESSLIST p ON p.ID = b.trx_mysql_thread_id
ORDER BY wait_s DESC LIMIT {limit}"""

# MySQL 8.0+: the lock tables moved to performance_schema.
_WAITS_PERFORMANCE_SCHEMA = _WAITS_SELECT.replace(
    "{lock_columns}", "CONCAT(l.OBJECT_SCHEMA, '.', l.OBJECT_NAME) AS lock_table, l.INDEX_NAME AS lock_index, "
                      "l.LOCK_MODE AS lock_mode") + """
FROM performance_schema.data_lock_waits w
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.REQUESTING_ENGINE_TRANSACTION_ID
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID
LEFT JOIN performance_schema.data_locks l ON l.ENGINE_LOCK_ID = w.REQUESTING_ENGINE_LOCK_ID
LEFT JOIN information_schema.PROCESSLIST p ON p.ID = b.trx_mysql_thread_id
ORDER BY wait_s DESC LIMIT {limit}"""


def replica_status_sql(server: ServerVersion) -> str:
    """``SHOW REPLICA STATUS`` where it exists (MariaDB 10.5+, MySQL 8.0.22+; MySQL 8.4 dropped the old one)."""
    if (server.flavor == "mariadb" and server.version >= (10, 5, 1)) or \
            (server.flavor == "mysql" and server.version >= (8, 0, 22)):
        return "SHOW REPLICA STATUS"
    return "SHOW SLAVE STATUS"


def lock_waits_sql(server: ServerVersion, *, limit: int = 20, max_info: int = 300) -> str:
    template = _WAITS_PERFORMANCE_SCHEMA if server.flavor == "mysql" and server.version >= (8, 0, 0) \
        else _WAITS_INFORMATION_SCHEMA
    return template.format(limit=int(limit), max_info=int(max_info))


def connections_sql(*, limit: int = 5000) -> str:
    return CONNECTIONS.format(limit=int(limit))


def long_queries_sql(*, min_seconds: int, limit: int = 20, max_info: int = 300) -> str:
    return LONG_QUERIES.format(min_seconds=int(min_seconds), limit=int(limit), max_info=int(max_info))
