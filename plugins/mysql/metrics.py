"""Samples from one round of parsed MySQL/MariaDB output: GLOBAL STATUS counters and gauges by a table, the
limits from GLOBAL VARIABLES, derived ratios, per-channel replication, and the InnoDB purge backlog."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.mysql.parse import (
    InnodbStatus,
    ReplicaStatus,
    buffer_pool_hit_ratio,
    connections_used_ratio,
    number,
)

# (GLOBAL STATUS name, metric name, scale)
_STATUS: tuple[tuple[str, str, float], ...] = (
    ("Uptime", "mysql_uptime_seconds", 1),
    ("Threads_running", "mysql_threads_running", 1),
    ("Threads_connected", "mysql_threads_connected", 1),
    ("Threads_created", "mysql_threads_created_total", 1),
    ("Max_used_connections", "mysql_max_used_connections", 1),
    ("Connections", "mysql_connections_total", 1),
    ("Aborted_connects", "mysql_aborted_connects_total", 1),
    ("Aborted_clients", "mysql_aborted_clients_total", 1),
    ("Connection_errors_max_connections", "mysql_connection_errors_max_connections_total", 1),
    ("Questions", "mysql_questions_total", 1),
    ("Queries", "mysql_queries_total", 1),
    ("Slow_queries", "mysql_slow_queries_total", 1),
    ("Com_select", "mysql_com_select_total", 1),
    ("Com_insert", "mysql_com_insert_total", 1),
    ("Com_update", "mysql_com_update_total", 1),
    ("Com_delete", "mysql_com_delete_total", 1),
    ("Bytes_received", "mysql_received_bytes_total", 1),
    ("Bytes_sent", "mysql_sent_bytes_total", 1),
    ("Created_tmp_disk_tables", "mysql_created_tmp_disk_tables_total", 1),
    ("Select_full_join", "mysql_select_full_join_total", 1),
    ("Table_locks_waited", "mysql_table_locks_waited_total", 1),
    ("Open_files", "mysql_open_files", 1),
    ("Opened_tables", "mysql_opened_tables_total", 1),
    ("Innodb_row_lock_waits", "mysql_innodb_row_lock_waits_total", 1),
    ("Innodb_row_lock_time", "mysql_innodb_row_lock_time_seconds_total", 1e-3),
    ("Innodb_row_lock_current_waits", "mysql_innodb_row_lock_current_waits", 1),
    ("Innodb_deadlocks", "mysql_innodb_deadlocks_total", 1),
    ("Innodb_buffer_pool_read_requests", "mysql_innodb_buffer_pool_read_requests_total", 1),
    ("Innodb_buffer_pool_reads", "mysql_innodb_buffer_pool_reads_total", 1),
    ("Innodb_buffer_pool_pages_dirty", "mysql_innodb_buffer_pool_pages_dirty", 1),
    ("Innodb_buffer_pool_wait_free", "mysql_innodb_buffer_pool_wait_free_total", 1),
    ("Innodb_data_fsyncs", "mysql_innodb_data_fsyncs_total", 1),
)

# (GLOBAL VARIABLES name, metric name)
_VARIABLES: tuple[tuple[str, str], ...] = (
    ("max_connections", "mysql_max_connections"),
    ("innodb_buffer_pool_size", "mysql_innodb_buffer_pool_size_bytes"),
    ("table_open_cache", "mysql_table_open_cache"),
    ("open_files_limit", "mysql_open_files_limit"),
)


def status_samples(status: dict[str, str], variables: dict[str, str], ts: datetime) -> list[Sample]:
    samples = []
    for key, name, scale in _STATUS:
        value = number(status, key)
        if value is not None:
            samples.append(Sample(name=name, value=value * scale, ts=ts))
    for key, name in _VARIABLES:
        value = number(variables, key)
        if value is not None:
            samples.append(Sample(name=name, value=value, ts=ts))
    derived = {
        "mysql_connections_used_ratio": connections_used_ratio(status, variables),
        "mysql_innodb_buffer_pool_hit_ratio": buffer_pool_hit_ratio(status),
        "mysql_innodb_buffer_pool_used_ratio": _pages_used(status),
    }
    samples += [Sample(name=name, value=value, ts=ts) for name, value in derived.items() if value is not None]
    return samples


def _pages_used(status: dict[str, str]) -> float | None:
    total, free = number(status, "Innodb_buffer_pool_pages_total"), number(status, "Innodb_buffer_pool_pages_free")
    if not total or free is None:
        return None
    return (total - free) / total


def replica_samples(replicas: list[ReplicaStatus], ts: datetime) -> list[Sample]:
    samples = []
    for r in replicas:
        labels = {"channel": r.channel, "source": r.source}
        samples += [Sample(name="mysql_replica_io_running", value=float(r.io_running == "Yes"), ts=ts, labels=labels),
                    Sample(name="mysql_replica_sql_running", value=float(r.sql_running == "Yes"), ts=ts,
                           labels=labels)]
        if r.seconds_behind is not None:
            samples.append(Sample(name="mysql_replica_lag_seconds", value=r.seconds_behind, ts=ts, labels=labels))
    return samples


def innodb_samples(innodb: InnodbStatus, ts: datetime) -> list[Sample]:
    if innodb.history_list_length is None:
        return []
    return [Sample(name="mysql_innodb_history_list_length", value=innodb.history_list_length, ts=ts)]
