"""Samples from one round of the admin console: per pool (``{"db", "user"}``) the clients and server connections
by state, the longest wait and the pool's size; per database (``{"db"}``) the cumulative counters of SHOW STATS
(raw ``_total`` values, the detectors difference them) and its averages; process-wide the lists and limits."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.pgbouncer.checks import Observation, pool_size_of

# SHOW STATS column, metric name, scale (times are microseconds)
_STATS: tuple[tuple[str, str, float], ...] = (
    ("total_xact_count", "pgbouncer_xacts_total", 1),
    ("total_query_count", "pgbouncer_queries_total", 1),
    ("total_received", "pgbouncer_received_bytes_total", 1),
    ("total_sent", "pgbouncer_sent_bytes_total", 1),
    ("total_xact_time", "pgbouncer_xact_time_seconds_total", 1e-6),
    ("total_query_time", "pgbouncer_query_time_seconds_total", 1e-6),
    ("total_wait_time", "pgbouncer_wait_time_seconds_total", 1e-6),
    ("avg_xact_time", "pgbouncer_avg_xact_time_seconds", 1e-6),
    ("avg_query_time", "pgbouncer_avg_query_time_seconds", 1e-6),
    ("avg_wait_time", "pgbouncer_avg_wait_time_seconds", 1e-6),
)
# SHOW LISTS entry, metric name
_LISTS: tuple[tuple[str, str], ...] = (
    ("databases", "pgbouncer_databases"), ("users", "pgbouncer_users"), ("pools", "pgbouncer_pools"),
    ("free_clients", "pgbouncer_free_clients"), ("used_clients", "pgbouncer_client_connections"),
    ("login_clients", "pgbouncer_login_clients"), ("free_servers", "pgbouncer_free_servers"),
    ("used_servers", "pgbouncer_server_connections"),
)
# SHOW CONFIG setting, metric name
_LIMITS: tuple[tuple[str, str], ...] = (
    ("max_client_conn", "pgbouncer_max_client_conn"), ("default_pool_size", "pgbouncer_default_pool_size"),
    ("reserve_pool_size", "pgbouncer_reserve_pool_size"), ("max_db_connections", "pgbouncer_max_db_connections"),
)


def pool_samples(obs: Observation, ts: datetime) -> list[Sample]:
    samples = []
    for p in obs.pools:
        labels = {"db": p.db, "user": p.user}
        for name, value in (("pgbouncer_pool_client_active", p.cl_active),
                            ("pgbouncer_pool_client_waiting", p.cl_waiting),
                            ("pgbouncer_pool_server_active", p.sv_active), ("pgbouncer_pool_server_idle", p.sv_idle),
                            ("pgbouncer_pool_server_used", p.sv_used), ("pgbouncer_pool_server_login", p.sv_login),
                            ("pgbouncer_pool_server_connections", p.servers),
                            ("pgbouncer_pool_maxwait_seconds", p.maxwait_s),
                            ("pgbouncer_pool_size", pool_size_of(obs, p))):
            samples.append(Sample(name=name, value=value, ts=ts, labels=labels))
    return samples


def database_samples(obs: Observation, ts: datetime) -> list[Sample]:
    samples = []
    for db in obs.databases:
        labels = {"db": db.name}
        samples += [Sample(name="pgbouncer_database_paused", value=float(db.paused or db.disabled), ts=ts,
                           labels=labels),
                    Sample(name="pgbouncer_database_connections", value=db.current_connections, ts=ts,
                           labels=labels)]
    for db, stats in obs.stats.items():
        samples += [Sample(name=name, value=stats[column] * scale, ts=ts, labels={"db": db})
                    for column, name, scale in _STATS if column in stats]
    return samples


def process_samples(obs: Observation, ts: datetime) -> list[Sample]:
    samples = [Sample(name=name, value=obs.lists[key], ts=ts) for key, name in _LISTS if key in obs.lists]
    samples += [Sample(name=name, value=obs.setting(key), ts=ts) for key, name in _LIMITS if key in obs.config]
    samples.append(Sample(name="pgbouncer_client_waiting", value=sum(p.cl_waiting for p in obs.pools), ts=ts))
    samples.append(Sample(name="pgbouncer_backends_unreachable", value=len(obs.unreachable), ts=ts))
    return samples


def samples(obs: Observation, ts: datetime) -> list[Sample]:
    return process_samples(obs, ts) + pool_samples(obs, ts) + database_samples(obs, ts)
