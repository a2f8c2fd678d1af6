"""RabbitMQ health rules: pure functions over one parsed observation. Each finding carries the exact values the
rule looked at (``evidence``) and the API resources that gave them (``query``); a queue finding names its worst
queue at the top of its evidence (``vhost``, ``queue``, ``messages``), where a remedy reads it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.rabbitmq.config import RabbitMQConfig
from kubestack.plugins.rabbitmq.parse import BLOCKED_STATES, Channel, Connection, Node, Queue

LISTED = 10
"""Queues, channels or connections listed in one finding's evidence."""


@dataclass(frozen=True)
class Observation:
    node: str
    """The node the API answered from (``overview.node``): the resource's own metrics are its."""
    nodes: list[Node]
    queues: list[Queue]
    connections: list[Connection]
    channels: list[Channel]
    churn_per_s: float | None = None
    """Connections opened per second since the previous observation (None on the first)."""
    churn_window_s: float = 0.0

    @property
    def local(self) -> Node | None:
        return next((n for n in self.nodes if n.name == self.node), self.nodes[0] if self.nodes else None)


Rule = Callable[[Observation, RabbitMQConfig], list[Finding]]


def _queue_finding(rule_id: str, queues: list[Queue], message: str, query: str,
                   extra: dict[str, Any] | None = None) -> Finding:
    worst = queues[0]
    return Finding(rule_id=rule_id, severity=Severity.WARNING, message=message,
                   evidence=worst.evidence() | (extra or {}) | {"queues": [q.evidence() for q in queues[:LISTED]]},
                   query=query)


def queue_backlog(obs: Observation, limits: RabbitMQConfig) -> list[Finding]:
    """Ready messages piling up in a queue: consumers are too slow, stopped, or too few."""
    full = sorted((q for q in obs.queues if q.ready >= limits.backlog_max), key=lambda q: -q.ready)
    if not full:
        return []
    worst = full[0]
    return [_queue_finding(
        "rabbitmq.queue_backlog", full,
        f"{len(full)} queue(s) hold {limits.backlog_max}+ ready messages; {worst.key} has {worst.ready} with "
        f"{worst.consumers} consumer(s)", "GET /api/queues?sort=messages", {"backlog_max": limits.backlog_max})]


def no_consumers(obs: Observation, limits: RabbitMQConfig) -> list[Finding]:
    """Messages arriving in a queue that nobody consumes: the consuming service is down or subscribed elsewhere."""
    idle = sorted((q for q in obs.queues if q.consumers == 0 and q.ready >= limits.idle_queue_min_messages),
                  key=lambda q: -q.ready)
    if not idle:
        return []
    worst = idle[0]
    return [_queue_finding(
        "rabbitmq.no_consumers", idle,
        f"{len(idle)} queue(s) with messages have no consumer; {worst.key} holds {worst.ready} ready messages",
        "GET /api/queues?sort=messages")]


def unacked_messages(obs: Observation, limits: RabbitMQConfig) -> list[Finding]:
    """Deliveries a consumer took and never acknowledged: a stuck or crashed-but-connected consumer, or a prefetch
    too large for its speed."""
    held = sorted((q for q in obs.queues if q.unacked >= limits.unacked_max), key=lambda q: -q.unacked)
    if not held:
        return []
    holders = sorted((c for c in obs.channels if c.unacked > 0), key=lambda c: -c.unacked)
    worst = held[0]
    extra: dict[str, Any] = {"unacked_max": limits.unacked_max, "channels": [c.evidence() for c in holders[:LISTED]]}
    if holders:
        extra["connection"] = holders[0].connection
    return [_queue_finding(
        "rabbitmq.unacked_messages", held,
        f"{worst.key} has {worst.unacked} unacknowledged deliveries"
        + (f"; the channel holding most ({holders[0].unacked}) is on {holders[0].connection}" if holders else ""),
        "GET /api/queues?sort=messages; GET /api/channels?sort=messages_unacknowledged", extra)]


def _biggest_queues(obs: Observation) -> dict[str, Any]:
    """The fullest queue (what a remedy caps) and the biggest by memory, for a memory finding."""
    by_messages = sorted(obs.queues, key=lambda q: -q.messages)
    if not by_messages or not by_messages[0].messages:
        return {}
    return by_messages[0].evidence() | {
        "queues": [q.evidence() for q in sorted(obs.queues, key=lambda q: -q.memory)[:LISTED]]}


def memory(obs: Observation, limits: RabbitMQConfig) -> list[Finding]:
    findings = []
    for node in obs.nodes:
        evidence = {"node": node.name, "mem_used": int(node.mem_used), "mem_limit": int(node.mem_limit),
                    "memory_used_ratio": round(node.memory_ratio, 4) if node.memory_ratio is not None else None}
        if node.mem_alarm:
            findings.append(Finding(
                rule_id="rabbitmq.memory_alarm", severity=Severity.CRITICAL,
                message=f"the memory alarm is on at {node.name} ({int(node.mem_used)} of {int(node.mem_limit)} "
                        "bytes): every publisher in the cluster is blocked",
                evidence=evidence | {"mem_alarm": True} | _biggest_queues(obs), query="GET /api/nodes"))
        elif node.memory_ratio is not None and node.memory_ratio >= limits.memory_high_ratio:
            findings.append(Finding(
                rule_id="rabbitmq.memory_near_watermark", severity=Severity.WARNING,
                message=f"{node.name} uses {node.memory_ratio:.0%} of its memory high watermark: publishers will be "
                        "blocked when it is reached", evidence=evidence | _biggest_queues(obs),
                query="GET /api/nodes"))
    return findings


def disk_alarm(obs: Observation, _: RabbitMQConfig) -> list[Finding]:
    return [Finding(
        rule_id="rabbitmq.disk_alarm", severity=Severity.CRITICAL,
        message=f"the disk alarm is on at {n.name}: {int(n.disk_free)} bytes free, below the limit of "
                f"{int(n.disk_free_limit)}: every publisher in the cluster is blocked",
        evidence={"node": n.name, "disk_free": int(n.disk_free), "disk_free_limit": int(n.disk_free_limit),
                  "disk_free_alarm": True} | _biggest_queues(obs),
        query="GET /api/nodes") for n in obs.nodes if n.disk_free_alarm]


def blocked_publishers(obs: Observation, _: RabbitMQConfig) -> list[Finding]:
    blocked = [c for c in obs.connections if c.state in BLOCKED_STATES]
    if not blocked:
        return []
    alarms = [f"{kind} on {n.name}" for n in obs.nodes
              for kind, on in (("memory", n.mem_alarm), ("disk", n.disk_free_alarm)) if on]
    return [Finding(
        rule_id="rabbitmq.blocked_publishers", severity=Severity.WARNING,
        message=f"{len(blocked)} connection(s) are blocked from publishing"
                + (f" by the {', '.join(alarms)} alarm" if alarms else ""),
        evidence={"blocked_connections": len(blocked), "alarms": alarms,
                  "connections": [c.evidence() for c in blocked[:LISTED]]},
        query="GET /api/connections; GET /api/nodes")]


def connection_churn(obs: Observation, limits: RabbitMQConfig) -> list[Finding]:
    """Clients opening a connection per message or reconnecting in a loop: each open costs the node a TLS/AMQP
    handshake and a process, and hides the client's real error."""
    if obs.churn_per_s is None or obs.churn_per_s < limits.churn_max_per_s:
        return []
    by_host: dict[str, int] = {}
    for c in obs.connections:
        by_host[c.peer_host] = by_host.get(c.peer_host, 0) + 1
    return [Finding(
        rule_id="rabbitmq.connection_churn", severity=Severity.WARNING,
        message=f"{obs.churn_per_s:.1f} connections opened per second over the last {obs.churn_window_s:.0f}s "
                f"(more than {limits.churn_max_per_s:g}/s): a client reconnects in a loop or opens one per message",
        evidence={"connections_opened_per_s": round(obs.churn_per_s, 2), "window_s": round(obs.churn_window_s, 1),
                  "churn_max_per_s": limits.churn_max_per_s, "connections_now": len(obs.connections),
                  "connections_by_host": dict(sorted(by_host.items(), key=lambda kv: -kv[1])[:LISTED])},
        query="GET /api/overview (churn_rates.connection_created)")]


RULES: tuple[Rule, ...] = (queue_backlog, no_consumers, unacked_messages, memory, disk_alarm, blocked_publishers,
                           connection_churn)


def evaluate(obs: Observation, limits: RabbitMQConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
