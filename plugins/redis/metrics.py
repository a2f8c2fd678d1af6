"""Samples from one round of parsed Redis output: INFO fields by a table, plus the derived series (memory
used against maxmemory, per-db keyspace, per-replica offsets and lag, persistence status as 0/1)."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.redis.parse import Info, info_number, parse_keyspace, parse_replicas

# (INFO section, field, metric name, scale)
_FIELDS: tuple[tuple[str, str, str, float], ...] = (
    ("server", "uptime_in_seconds", "redis_uptime_seconds", 1),
    ("clients", "connected_clients", "redis_connected_clients", 1),
    ("clients", "blocked_clients", "redis_blocked_clients", 1),
    ("clients", "maxclients", "redis_maxclients", 1),
    ("memory", "used_memory", "redis_used_memory_bytes", 1),
    ("memory", "used_memory_rss", "redis_used_memory_rss_bytes", 1),
    ("memory", "used_memory_peak", "redis_used_memory_peak_bytes", 1),
    ("memory", "maxmemory", "redis_maxmemory_bytes", 1),
    ("memory", "mem_fragmentation_ratio", "redis_mem_fragmentation", 1),
    ("memory", "mem_fragmentation_bytes", "redis_mem_fragmentation_bytes", 1),
    ("persistence", "loading", "redis_loading", 1),
    ("persistence", "rdb_changes_since_last_save", "redis_rdb_changes_since_last_save", 1),
    ("persistence", "rdb_bgsave_in_progress", "redis_rdb_bgsave_in_progress", 1),
    ("persistence", "rdb_last_save_time", "redis_rdb_last_save_timestamp_seconds", 1),
    ("persistence", "rdb_last_bgsave_time_sec", "redis_rdb_last_bgsave_duration_seconds", 1),
    ("persistence", "aof_enabled", "redis_aof_enabled", 1),
    ("persistence", "aof_rewrite_in_progress", "redis_aof_rewrite_in_progress", 1),
    ("stats", "latest_fork_usec", "redis_latest_fork_seconds", 1e-6),
    ("stats", "total_connections_received", "redis_connections_received_total", 1),
    ("stats", "total_commands_processed", "redis_commands_processed_total", 1),
    ("stats", "instantaneous_ops_per_sec", "redis_instantaneous_ops_per_second", 1),
    ("stats", "total_net_input_bytes", "redis_net_input_bytes_total", 1),
    ("stats", "total_net_output_bytes", "redis_net_output_bytes_total", 1),
    ("stats", "rejected_connections", "redis_rejected_connections_total", 1),
    ("stats", "expired_keys", "redis_expired_keys_total", 1),
    ("stats", "evicted_keys", "redis_evicted_keys_total", 1),
    ("stats", "keyspace_hits", "redis_keyspace_hits_total", 1),
    ("stats", "keyspace_misses", "redis_keyspace_misses_total", 1),
    ("stats", "total_error_replies", "redis_error_replies_total", 1),
    ("replication", "connected_slaves", "redis_connected_replicas", 1),
    ("replication", "master_repl_offset", "redis_master_repl_offset", 1),
    ("replication", "slave_repl_offset", "redis_replica_repl_offset", 1),
    ("replication", "master_last_io_seconds_ago", "redis_master_last_io_seconds", 1),
    ("cpu", "used_cpu_sys", "redis_cpu_sys_seconds_total", 1),
    ("cpu", "used_cpu_user", "redis_cpu_user_seconds_total", 1),
)


def memory_used_ratio(info: Info) -> float | None:
    """used_memory / maxmemory, or None when no maxmemory is set."""
    used, limit = info_number(info, "memory", "used_memory"), info_number(info, "memory", "maxmemory")
    if used is None or not limit:
        return None
    return used / limit


def info_samples(info: Info, ts: datetime) -> list[Sample]:
    samples = []
    for section, key, name, scale in _FIELDS:
        value = info_number(info, section, key)
        if value is not None:
            samples.append(Sample(name=name, value=value * scale, ts=ts))
    ratio = memory_used_ratio(info)
    if ratio is not None:
        samples.append(Sample(name="redis_memory_used_ratio", value=ratio, ts=ts))
    persistence = info.get("persistence", {})
    for key, name in (("rdb_last_bgsave_status", "redis_rdb_last_bgsave_ok"),
                      ("aof_last_write_status", "redis_aof_last_write_ok"),
                      ("aof_last_bgrewrite_status", "redis_aof_last_bgrewrite_ok")):
        if key in persistence:
            samples.append(Sample(name=name, value=float(persistence[key] == "ok"), ts=ts))
    replication = info.get("replication", {})
    if "role" in replication:
        samples.append(Sample(name="redis_is_primary", value=float(replication["role"] == "master"), ts=ts))
    if "master_link_status" in replication:
        samples.append(Sample(name="redis_master_link_up", value=float(replication["master_link_status"] == "up"),
                              ts=ts))
    samples += _replica_samples(info, ts)
    samples += _keyspace_samples(info, ts)
    return samples


def _replica_samples(info: Info, ts: datetime) -> list[Sample]:
    primary_offset = info_number(info, "replication", "master_repl_offset") or 0
    samples = []
    for r in parse_replicas(info):
        labels = {"replica": f"{r.ip}:{r.port}"}
        samples += [Sample(name="redis_replica_offset", value=r.offset, ts=ts, labels=labels),
                    Sample(name="redis_replica_lag_bytes", value=max(primary_offset - r.offset, 0), ts=ts,
                           labels=labels),
                    Sample(name="redis_replica_lag_seconds", value=r.lag_s, ts=ts, labels=labels),
                    Sample(name="redis_replica_online", value=float(r.state == "online"), ts=ts, labels=labels)]
    return samples


def _keyspace_samples(info: Info, ts: datetime) -> list[Sample]:
    samples = []
    for space in parse_keyspace(info):
        labels = {"db": space.db}
        samples += [Sample(name="redis_db_keys", value=space.keys, ts=ts, labels=labels),
                    Sample(name="redis_db_expiring_keys", value=space.expires, ts=ts, labels=labels),
                    Sample(name="redis_db_avg_ttl_seconds", value=space.avg_ttl_ms / 1000, ts=ts, labels=labels)]
    return samples


def slowlog_samples(length: int, ts: datetime) -> list[Sample]:
    return [Sample(name="redis_slowlog_length", value=length, ts=ts)]
