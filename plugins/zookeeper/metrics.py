"""Samples from one round: ``mntr`` fields by a table (times in ms scaled to seconds; counters keep their raw
cumulative value, ``_total``), the ensemble as this server sees it, connections per client IP against
``maxClientCnxns``, and the size of the snapshots and transaction logs."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.zookeeper.checks import Observation, data_dir_bytes, per_ip
from kubestack.plugins.zookeeper.parse import number

# (mntr key, metric name, scale)
_FIELDS: tuple[tuple[str, str, float], ...] = (
    ("zk_uptime", "zookeeper_uptime_seconds", 1e-3),
    ("zk_num_alive_connections", "zookeeper_connections", 1),
    ("zk_outstanding_requests", "zookeeper_outstanding_requests", 1),
    ("zk_avg_latency", "zookeeper_avg_latency_seconds", 1e-3),
    ("zk_max_latency", "zookeeper_max_latency_seconds", 1e-3),
    ("zk_znode_count", "zookeeper_znodes", 1),
    ("zk_watch_count", "zookeeper_watches", 1),
    ("zk_ephemerals_count", "zookeeper_ephemerals", 1),
    ("zk_approximate_data_size", "zookeeper_data_size_bytes", 1),
    ("zk_open_file_descriptor_count", "zookeeper_open_fds", 1),
    ("zk_max_file_descriptor_count", "zookeeper_max_fds", 1),
    ("zk_global_sessions", "zookeeper_global_sessions", 1),
    ("zk_local_sessions", "zookeeper_local_sessions", 1),
    ("zk_packets_received", "zookeeper_packets_received_total", 1),
    ("zk_packets_sent", "zookeeper_packets_sent_total", 1),
    ("zk_connection_rejected", "zookeeper_connections_rejected_total", 1),
    ("zk_connection_drop_count", "zookeeper_connection_drops_total", 1),
    ("zk_auth_failed_count", "zookeeper_auth_failures_total", 1),
    ("zk_throttled_ops", "zookeeper_throttled_ops_total", 1),
    ("zk_looking_count", "zookeeper_elections_total", 1),
    ("zk_unrecoverable_error_count", "zookeeper_unrecoverable_errors_total", 1),
    ("zk_digest_mismatches_count", "zookeeper_digest_mismatches_total", 1),
    ("zk_sum_fsynctime", "zookeeper_fsync_seconds_total", 1e-3),
    ("zk_cnt_fsynctime", "zookeeper_fsyncs_total", 1),
    ("zk_sum_updatelatency", "zookeeper_update_latency_seconds_total", 1e-3),
    ("zk_cnt_updatelatency", "zookeeper_updates_total", 1),
    ("zk_sum_readlatency", "zookeeper_read_latency_seconds_total", 1e-3),
    ("zk_cnt_readlatency", "zookeeper_reads_total", 1),
    ("zk_synced_followers", "zookeeper_synced_followers", 1),
    ("zk_pending_syncs", "zookeeper_pending_syncs", 1),
    ("zk_quorum_size", "zookeeper_quorum_size", 1),
)


def samples(obs: Observation, ts: datetime) -> list[Sample]:
    out = [Sample(name=name, value=value * scale, ts=ts) for key, name, scale in _FIELDS
           if (value := obs.value(key)) is not None]
    serving = sum(v.serving for v in obs.views.values())
    out += [Sample(name="zookeeper_serving", value=float(obs.serving), ts=ts),
            Sample(name="zookeeper_is_leader", value=float(obs.mntr.get("zk_server_state") == "leader"), ts=ts),
            Sample(name="zookeeper_members", value=obs.participants, ts=ts),
            Sample(name="zookeeper_members_serving", value=serving, ts=ts)]
    limit = number(obs.settings.get("maxClientCnxns"))
    if limit is not None:
        out.append(Sample(name="zookeeper_max_client_cnxns", value=limit, ts=ts))
        counts = per_ip(obs.connections)
        out.append(Sample(name="zookeeper_connections_max_per_ip", value=max(counts.values(), default=0), ts=ts))
    if "dataDirSize" in obs.settings:
        out.append(Sample(name="zookeeper_data_dir_bytes", value=data_dir_bytes(obs.settings), ts=ts))
    return out
