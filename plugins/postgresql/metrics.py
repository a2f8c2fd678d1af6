"""Samples from one round of parsed PostgreSQL results: server and connection figures, per-database counters
(label ``db``), standbys (``replica``), replication slots (``slot``) and checkpoint/background writer counters."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.postgresql.parse import (
    XID_WRAPAROUND,
    DatabaseStats,
    Observation,
    client_sessions,
    connections_used_ratio,
)

# pg_stat_bgwriter (<= 16) and pg_stat_checkpointer (17+) column → (metric name, scale)
BACKGROUND_COUNTERS: dict[str, tuple[str, float]] = {
    "checkpoints_timed": ("postgresql_checkpoints_timed_total", 1),
    "num_timed": ("postgresql_checkpoints_timed_total", 1),
    "checkpoints_req": ("postgresql_checkpoints_requested_total", 1),
    "num_requested": ("postgresql_checkpoints_requested_total", 1),
    "checkpoint_write_time": ("postgresql_checkpoint_write_seconds_total", 1e-3),
    "write_time": ("postgresql_checkpoint_write_seconds_total", 1e-3),
    "checkpoint_sync_time": ("postgresql_checkpoint_sync_seconds_total", 1e-3),
    "sync_time": ("postgresql_checkpoint_sync_seconds_total", 1e-3),
    "buffers_checkpoint": ("postgresql_checkpoint_buffers_written_total", 1),
    "buffers_written": ("postgresql_checkpoint_buffers_written_total", 1),
    "buffers_clean": ("postgresql_bgwriter_buffers_clean_total", 1),
    "maxwritten_clean": ("postgresql_bgwriter_maxwritten_clean_total", 1),
    "buffers_backend": ("postgresql_buffers_backend_total", 1),
    "buffers_backend_fsync": ("postgresql_buffers_backend_fsync_total", 1),
    "buffers_alloc": ("postgresql_buffers_alloc_total", 1),
}

# DatabaseStats attribute → metric name
DATABASE_FIELDS: tuple[tuple[str, str], ...] = (
    ("backends", "postgresql_db_backends"),
    ("commits", "postgresql_db_commits_total"),
    ("rollbacks", "postgresql_db_rollbacks_total"),
    ("blocks_read", "postgresql_db_blocks_read_total"),
    ("blocks_hit", "postgresql_db_blocks_hit_total"),
    ("tuples_returned", "postgresql_db_tuples_returned_total"),
    ("tuples_fetched", "postgresql_db_tuples_fetched_total"),
    ("tuples_inserted", "postgresql_db_tuples_inserted_total"),
    ("tuples_updated", "postgresql_db_tuples_updated_total"),
    ("tuples_deleted", "postgresql_db_tuples_deleted_total"),
    ("conflicts", "postgresql_db_conflicts_total"),
    ("temp_files", "postgresql_db_temp_files_total"),
    ("temp_bytes", "postgresql_db_temp_bytes_total"),
    ("deadlocks", "postgresql_db_deadlocks_total"),
    ("xid_age", "postgresql_db_xid_age"),
)


def server_samples(obs: Observation, ts: datetime) -> list[Sample]:
    server = obs.server
    samples = [Sample(name="postgresql_in_recovery", value=float(server.in_recovery), ts=ts),
               Sample(name="postgresql_uptime_seconds", value=server.uptime_s, ts=ts),
               Sample(name="postgresql_max_connections", value=server.max_connections, ts=ts)]
    if server.wal_bytes is not None:
        samples.append(Sample(name="postgresql_wal_position_bytes_total", value=server.wal_bytes, ts=ts))
    if server.replay_lag_s is not None:
        samples.append(Sample(name="postgresql_replay_lag_seconds", value=server.replay_lag_s, ts=ts))
    return samples


def connection_samples(obs: Observation, ts: datetime) -> list[Sample]:
    clients = client_sessions(obs.sessions)
    by_state = Counter(s.state or "unknown" for s in clients)
    samples = [Sample(name="postgresql_connections", value=count, ts=ts, labels={"state": state})
               for state, count in sorted(by_state.items())]
    samples.append(Sample(name="postgresql_client_connections", value=len(clients), ts=ts))
    ratio = connections_used_ratio(obs.server, obs.sessions)
    if ratio is not None:
        samples.append(Sample(name="postgresql_connections_used_ratio", value=ratio, ts=ts))
    xact_ages = [s.xact_age_s for s in clients if s.xact_age_s is not None and not s.own]
    idle = [s.state_age_s or 0.0 for s in clients if s.state.startswith("idle in transaction")]
    samples += [
        Sample(name="postgresql_longest_transaction_seconds", value=max(xact_ages, default=0.0), ts=ts),
        Sample(name="postgresql_idle_in_transaction_sessions", value=len(idle), ts=ts),
        Sample(name="postgresql_longest_idle_in_transaction_seconds", value=max(idle, default=0.0), ts=ts),
        Sample(name="postgresql_lock_waiting_sessions", value=sum(s.wait_event_type == "Lock" for s in obs.sessions),
               ts=ts),
        Sample(name="postgresql_blocked_sessions", value=len({w.blocked_pid for w in obs.lock_waits}), ts=ts),
        Sample(name="postgresql_longest_lock_wait_seconds", value=max((w.wait_s for w in obs.lock_waits), default=0.0),
               ts=ts),
    ]
    return samples


def database_samples(databases: list[DatabaseStats], ts: datetime) -> list[Sample]:
    samples = []
    for db in databases:
        labels = {"db": db.name}
        samples += [Sample(name=name, value=getattr(db, attr), ts=ts, labels=labels) for attr, name in DATABASE_FIELDS]
        samples.append(Sample(name="postgresql_db_xid_wraparound_ratio", value=db.xid_age / XID_WRAPAROUND, ts=ts,
                              labels=labels))
        if db.size_bytes is not None:
            samples.append(Sample(name="postgresql_db_size_bytes", value=db.size_bytes, ts=ts, labels=labels))
        if db.cache_hit_ratio is not None:
            samples.append(Sample(name="postgresql_db_cache_hit_ratio", value=db.cache_hit_ratio, ts=ts,
                                  labels=labels))
    return samples


def replication_samples(obs: Observation, ts: datetime) -> list[Sample]:
    samples = []
    for r in obs.replicas:
        labels = {"replica": r.name or r.client_addr}
        samples.append(Sample(name="postgresql_replica_streaming", value=float(r.state == "streaming"), ts=ts,
                              labels=labels))
        if r.lag_bytes is not None:
            samples.append(Sample(name="postgresql_replica_lag_bytes", value=r.lag_bytes, ts=ts, labels=labels))
        if r.replay_lag_s is not None:
            samples.append(Sample(name="postgresql_replica_replay_lag_seconds", value=r.replay_lag_s, ts=ts,
                                  labels=labels))
    for slot in obs.slots:
        labels = {"slot": slot.name, "slot_type": slot.slot_type}
        samples.append(Sample(name="postgresql_slot_active", value=float(slot.active), ts=ts, labels=labels))
        if slot.retained_bytes is not None:
            samples.append(Sample(name="postgresql_slot_retained_wal_bytes", value=slot.retained_bytes, ts=ts,
                                  labels=labels))
    limits = [s.keep_limit_bytes for s in obs.slots if s.keep_limit_bytes is not None]
    if limits:  # 0: no limit, as a capacity's limit reads it
        samples.append(Sample(name="postgresql_max_slot_wal_keep_size_bytes", value=max(limits[0], 0.0), ts=ts))
    return samples


def background_samples(counters: dict[str, float], ts: datetime) -> list[Sample]:
    return [Sample(name=BACKGROUND_COUNTERS[key][0], value=value * BACKGROUND_COUNTERS[key][1], ts=ts)
            for key, value in sorted(counters.items()) if key in BACKGROUND_COUNTERS]


def observation_samples(obs: Observation, ts: datetime) -> list[Sample]:
    return (server_samples(obs, ts) + connection_samples(obs, ts) + database_samples(obs.databases, ts)
            + replication_samples(obs, ts))
