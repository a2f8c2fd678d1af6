"""Samples from one round: the cluster's totals and cumulative counters (``/api/overview``), the figures of the
node the API answers from (``/api/nodes``), and the fullest queues as their own series."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubestack.contract.events import Sample
from kubestack.plugins.rabbitmq.parse import BLOCKED_STATES, Connection, Node, Queue, counter, num

# (overview section, key, metric name)
_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("message_stats", "publish", "rabbitmq_published_total"),
    ("message_stats", "deliver_get", "rabbitmq_delivered_total"),
    ("message_stats", "ack", "rabbitmq_acked_total"),
    ("message_stats", "redeliver", "rabbitmq_redelivered_total"),
    ("message_stats", "confirm", "rabbitmq_confirmed_total"),
    ("message_stats", "return_unroutable", "rabbitmq_unroutable_returned_total"),
    ("message_stats", "drop_unroutable", "rabbitmq_unroutable_dropped_total"),
    ("churn_rates", "connection_created", "rabbitmq_connections_opened_total"),
    ("churn_rates", "connection_closed", "rabbitmq_connections_closed_total"),
    ("churn_rates", "channel_created", "rabbitmq_channels_opened_total"),
    ("churn_rates", "channel_closed", "rabbitmq_channels_closed_total"),
    ("churn_rates", "queue_created", "rabbitmq_queues_created_total"),
    ("churn_rates", "queue_deleted", "rabbitmq_queues_deleted_total"),
)
_OBJECTS = (("connections", "rabbitmq_connections"), ("channels", "rabbitmq_channels"),
            ("queues", "rabbitmq_queues"), ("consumers", "rabbitmq_consumers"), ("exchanges", "rabbitmq_exchanges"))


def overview_samples(overview: dict[str, Any], queues: list[Queue], ts: datetime) -> list[Sample]:
    samples = []
    for section, key, name in _COUNTERS:
        value = counter(overview.get(section), key)
        if value is not None:
            samples.append(Sample(name=name, value=value, ts=ts))
    objects = overview.get("object_totals") or {}
    samples += [Sample(name=name, value=num(objects[key]), ts=ts) for key, name in _OBJECTS if key in objects]
    totals = overview.get("queue_totals") or {}
    for key, name, fallback in (("messages", "rabbitmq_messages", sum(q.messages for q in queues)),
                                ("messages_ready", "rabbitmq_messages_ready", sum(q.ready for q in queues)),
                                ("messages_unacknowledged", "rabbitmq_messages_unacked",
                                 sum(q.unacked for q in queues))):
        samples.append(Sample(name=name, value=num(totals[key]) if key in totals else fallback, ts=ts))
    return samples


def node_samples(node: Node, nodes: list[Node], connections: list[Connection], ts: datetime) -> list[Sample]:
    values = {
        "rabbitmq_mem_used_bytes": node.mem_used, "rabbitmq_mem_limit_bytes": node.mem_limit,
        "rabbitmq_mem_alarm": float(node.mem_alarm), "rabbitmq_disk_free_bytes": node.disk_free,
        "rabbitmq_disk_free_limit_bytes": node.disk_free_limit, "rabbitmq_disk_free_alarm": float(node.disk_free_alarm),
        "rabbitmq_fd_used": node.fd_used, "rabbitmq_fd_total": node.fd_total,
        "rabbitmq_sockets_used": node.sockets_used, "rabbitmq_sockets_total": node.sockets_total,
        "rabbitmq_processes_used": node.proc_used, "rabbitmq_processes_total": node.proc_total,
        "rabbitmq_uptime_seconds": node.uptime_s, "rabbitmq_run_queue": node.run_queue,
        "rabbitmq_nodes_running": float(sum(n.running for n in nodes)),
        "rabbitmq_partitions": float(len(node.partitions)),
        "rabbitmq_blocked_connections": float(sum(c.state in BLOCKED_STATES for c in connections)),
    }
    if node.memory_ratio is not None:
        values["rabbitmq_memory_used_ratio"] = node.memory_ratio
    return [Sample(name=name, value=value, ts=ts) for name, value in values.items()]


def queue_samples(queues: list[Queue], limit: int, ts: datetime) -> list[Sample]:
    samples = []
    for q in sorted(queues, key=lambda q: -q.messages)[:limit]:
        labels = {"vhost": q.vhost, "queue": q.name}
        samples += [Sample(name="rabbitmq_queue_messages_ready", value=q.ready, ts=ts, labels=labels),
                    Sample(name="rabbitmq_queue_messages_unacked", value=q.unacked, ts=ts, labels=labels),
                    Sample(name="rabbitmq_queue_consumers", value=q.consumers, ts=ts, labels=labels),
                    Sample(name="rabbitmq_queue_memory_bytes", value=q.memory, ts=ts, labels=labels)]
        if q.published is not None:
            samples.append(Sample(name="rabbitmq_queue_published_total", value=q.published, ts=ts, labels=labels))
        if q.delivered is not None:
            samples.append(Sample(name="rabbitmq_queue_delivered_total", value=q.delivered, ts=ts, labels=labels))
    return samples
