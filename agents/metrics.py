"""The agent's own Prometheus metrics (served on ``agent.metrics_listen``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.samples = Counter("kubestack_agent_samples_total", "Metric samples collected", ["target"], registry=r)
        self.collect_errors = Counter("kubestack_agent_collect_errors_total", "Failed collections by reason",
                                      ["target", "reason"], registry=r)
        self.collect_seconds = Histogram("kubestack_agent_collect_duration_seconds", "Time per collection round",
                                         ["target"], registry=r)
        self.log_lines = Counter("kubestack_agent_log_lines_total", "Log lines tailed", ["target"], registry=r)
        self.events_sent = Counter("kubestack_agent_events_sent_total", "Events acknowledged by Kafka", ["topic"],
                                   registry=r)
        self.undeliverable = Counter("kubestack_agent_events_undeliverable_total",
                                     "Events Kafka refused for good (e.g. too large)", ["topic"], registry=r)
        self.spool_pending = Gauge("kubestack_agent_spool_pending", "Events waiting in the disk spool", registry=r)
        self.spool_bytes = Gauge("kubestack_agent_spool_bytes", "Size of the disk spool", registry=r)
        self.spool_dropped = Gauge("kubestack_agent_spool_dropped_total",
                                   "Events dropped because the spool was over its bound", registry=r)
        self.kafka_up = Gauge("kubestack_agent_kafka_up", "1 when the last send to Kafka succeeded", registry=r)

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)
