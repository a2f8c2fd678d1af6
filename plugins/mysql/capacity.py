"""MySQL/MariaDB series that fill up towards a limit. A replica's primary purges the binary logs older than its
expiry: once the oldest one the replica still needs goes, the replica has lost its stream (``binlogs.py``)."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="mysql_threads_connected", limit="mysql_max_connections", title="MySQL connections"),
    Capacity(used="mysql_open_files", limit="mysql_open_files_limit", title="MySQL open files"),
    Capacity(used="mysql_replica_needed_binlog_age_seconds", limit="mysql_source_binlog_expire_seconds",
             match_labels=("channel", "source"),
             title="the binary logs a replica still needs against its primary's binlog_expire_logs_seconds",
             outcome="this replica will lose its binary log stream from {source} (binlog_expire_logs_seconds)"),
    Capacity(used="mysql_binlog_size_bytes", limit="mysql_binlog_disk_capacity_bytes",
             title="binary logs against the disk that holds them",
             outcome="binary logs will fill their disk (binlog_expire_logs_seconds too long for the write rate)"),
)
