"""Samples from one round: the member's status (db size, raft indexes, revision), its alarms and members, and a
table of its Prometheus series; counters keep their raw cumulative value (``_total``), latency histograms are sent
as their sum and count (cumulative too) and as the p99 of the round (from the second round on)."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.etcd.checks import COMMIT, FSYNC, Observation
from kubestack.plugins.etcd.parse import buckets, metric, quantile

# (Prometheus series, metric name)
_SERIES: tuple[tuple[str, str], ...] = (
    ("etcd_server_quota_backend_bytes", "etcd_quota_backend_bytes"),
    ("etcd_server_has_leader", "etcd_has_leader"),
    ("etcd_server_is_leader", "etcd_is_leader"),
    ("etcd_server_leader_changes_seen_total", "etcd_leader_changes_total"),
    ("etcd_server_proposals_committed_total", "etcd_proposals_committed_total"),
    ("etcd_server_proposals_applied_total", "etcd_proposals_applied_total"),
    ("etcd_server_proposals_pending", "etcd_proposals_pending"),
    ("etcd_server_proposals_failed_total", "etcd_proposals_failed_total"),
    ("etcd_server_slow_apply_total", "etcd_slow_applies_total"),
    ("etcd_server_slow_read_indexes_total", "etcd_slow_read_indexes_total"),
    ("etcd_server_heartbeat_send_failures_total", "etcd_heartbeat_send_failures_total"),
    ("etcd_mvcc_put_total", "etcd_puts_total"),
    ("etcd_mvcc_range_total", "etcd_ranges_total"),
    ("etcd_mvcc_txn_total", "etcd_txns_total"),
    ("etcd_mvcc_delete_total", "etcd_deletes_total"),
    ("etcd_debugging_mvcc_keys_total", "etcd_keys"),
    ("etcd_debugging_mvcc_watcher_total", "etcd_watchers"),
    ("etcd_debugging_mvcc_slow_watcher_total", "etcd_slow_watchers"),
    ("etcd_debugging_mvcc_compact_revision", "etcd_compact_revision"),
    ("etcd_disk_wal_write_bytes_total", "etcd_wal_write_bytes_total"),
    ("etcd_disk_defrag_inflight", "etcd_defrag_inflight"),
    (f"{FSYNC}_sum", "etcd_wal_fsync_seconds_total"),
    (f"{FSYNC}_count", "etcd_wal_fsyncs_total"),
    (f"{COMMIT}_sum", "etcd_backend_commit_seconds_total"),
    (f"{COMMIT}_count", "etcd_backend_commits_total"),
    ("etcd_network_client_grpc_received_bytes_total", "etcd_client_received_bytes_total"),
    ("etcd_network_client_grpc_sent_bytes_total", "etcd_client_sent_bytes_total"),
    ("os_fd_used", "etcd_open_fds"),
    ("os_fd_limit", "etcd_max_fds"),
)


def samples(obs: Observation, ts: datetime) -> list[Sample]:
    out = [Sample(name=name, value=value, ts=ts) for series, name in _SERIES
           if (value := metric(obs.metrics, series)) is not None]
    s = obs.status
    out += [Sample(name="etcd_db_size_bytes", value=s.db_size, ts=ts),
            Sample(name="etcd_db_size_in_use_bytes", value=s.db_in_use, ts=ts),
            Sample(name="etcd_raft_term", value=s.raft_term, ts=ts),
            Sample(name="etcd_raft_index", value=s.raft_index, ts=ts),
            Sample(name="etcd_raft_apply_lag", value=max(s.raft_index - s.applied_index, 0), ts=ts),
            Sample(name="etcd_revision", value=s.revision, ts=ts),
            Sample(name="etcd_members", value=len(obs.members), ts=ts),
            Sample(name="etcd_members_reachable", value=len(obs.reachable), ts=ts)]
    if obs.quota:
        out.append(Sample(name="etcd_db_used_ratio", value=s.db_size / obs.quota, ts=ts))
    if obs.alarms is not None:
        out.append(Sample(name="etcd_alarms_active", value=len(obs.alarms), ts=ts))
    for histogram, name in ((FSYNC, "etcd_wal_fsync_p99_seconds"), (COMMIT, "etcd_backend_commit_p99_seconds")):
        if obs.previous is None:
            break  # the p99 is of the round: the first one has none
        p99, _ = quantile(buckets(obs.metrics, histogram), buckets(obs.previous, histogram), 0.99)
        if p99 is not None:
            out.append(Sample(name=name, value=p99, ts=ts))
    return out
