"""Pure readers of the management API's JSON: ``/api/overview``, ``/api/nodes``, ``/api/queues``,
``/api/connections`` and ``/api/channels`` (a page of them, ``{"items": [...]}``, or a plain list). Fields a
version or a stats setting leaves out read as 0 or empty, never as an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def items(reply: Any) -> list[dict[str, Any]]:
    """The rows of a list reply or of a paged one."""
    if isinstance(reply, dict):
        reply = reply.get("items", [])
    return [row for row in reply or [] if isinstance(row, dict)]


def num(value: Any) -> float:
    """A number of the API, 0 for a missing or non-numeric one (a boolean is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def counter(stats: dict[str, Any] | None, key: str) -> float | None:
    """A cumulative count of ``message_stats``/``churn_rates``, None when the API does not have it yet."""
    if not stats or key not in stats:
        return None
    return num(stats[key])


@dataclass(frozen=True)
class Node:
    name: str
    running: bool
    mem_used: float
    mem_limit: float
    mem_alarm: bool
    disk_free: float
    disk_free_limit: float
    disk_free_alarm: bool
    fd_used: float
    fd_total: float
    sockets_used: float
    sockets_total: float
    proc_used: float
    proc_total: float
    uptime_s: float
    run_queue: float
    partitions: tuple[str, ...]

    @property
    def host(self) -> str:
        """``rabbit@mq-0.mq`` → ``mq-0.mq``."""
        return self.name.partition("@")[2] or self.name

    @property
    def memory_ratio(self) -> float | None:
        return self.mem_used / self.mem_limit if self.mem_limit > 0 else None


def parse_nodes(reply: Any) -> list[Node]:
    nodes = []
    for n in items(reply):
        nodes.append(Node(
            name=str(n.get("name", "")), running=bool(n.get("running", False)),
            mem_used=num(n.get("mem_used")), mem_limit=num(n.get("mem_limit")), mem_alarm=bool(n.get("mem_alarm")),
            disk_free=num(n.get("disk_free")), disk_free_limit=num(n.get("disk_free_limit")),
            disk_free_alarm=bool(n.get("disk_free_alarm")), fd_used=num(n.get("fd_used")),
            fd_total=num(n.get("fd_total")), sockets_used=num(n.get("sockets_used")),
            sockets_total=num(n.get("sockets_total")), proc_used=num(n.get("proc_used")),
            proc_total=num(n.get("proc_total")), uptime_s=num(n.get("uptime")) / 1000,
            run_queue=num(n.get("run_queue")), partitions=tuple(map(str, n.get("partitions") or ()))))
    return nodes


@dataclass(frozen=True)
class Queue:
    vhost: str
    name: str
    type: str
    state: str
    messages: int
    ready: int
    unacked: int
    consumers: int
    memory: int
    policy: str | None
    exclusive: bool
    auto_delete: bool
    published: float | None
    delivered: float | None
    definition: dict[str, Any] = field(default_factory=dict)
    """The effective policy's definition (max-length, dead-letter-exchange, ...)."""

    @property
    def key(self) -> str:
        return f"{self.name!r} (vhost {self.vhost!r})"

    def evidence(self) -> dict[str, Any]:
        return {"vhost": self.vhost, "queue": self.name, "messages": self.messages, "messages_ready": self.ready,
                "messages_unacknowledged": self.unacked, "consumers": self.consumers, "memory": self.memory,
                "type": self.type, "policy": self.policy}


def parse_queues(reply: Any) -> list[Queue]:
    queues = []
    for q in items(reply):
        stats = q.get("message_stats") or {}
        queues.append(Queue(
            vhost=str(q.get("vhost", "/")), name=str(q.get("name", "")), type=str(q.get("type", "classic")),
            state=str(q.get("state", "")), messages=int(num(q.get("messages"))), ready=int(num(q.get("messages_ready"))),
            unacked=int(num(q.get("messages_unacknowledged"))), consumers=int(num(q.get("consumers"))),
            memory=int(num(q.get("memory"))), policy=q.get("policy") or None,
            exclusive=bool(q.get("exclusive")), auto_delete=bool(q.get("auto_delete")),
            published=counter(stats, "publish"), delivered=counter(stats, "deliver_get"),
            definition=dict(q.get("effective_policy_definition") or {})))
    return queues


@dataclass(frozen=True)
class Connection:
    name: str
    peer_host: str
    peer_port: int
    user: str
    vhost: str
    state: str
    channels: int
    client_name: str
    product: str

    def evidence(self) -> dict[str, Any]:
        return {"connection": self.name, "peer_host": self.peer_host, "user": self.user, "vhost": self.vhost,
                "state": self.state, "client_name": self.client_name}


def parse_connections(reply: Any) -> list[Connection]:
    connections = []
    for c in items(reply):
        props = c.get("client_properties") or {}
        connections.append(Connection(
            name=str(c.get("name", "")), peer_host=str(c.get("peer_host") or ""),
            peer_port=int(num(c.get("peer_port"))), user=str(c.get("user", "")), vhost=str(c.get("vhost", "")),
            state=str(c.get("state", "")), channels=int(num(c.get("channels"))),
            client_name=str(props.get("connection_name") or ""), product=str(props.get("product") or "")))
    return connections


@dataclass(frozen=True)
class Channel:
    name: str
    connection: str
    peer_host: str
    user: str
    vhost: str
    unacked: int
    prefetch: int
    consumers: int

    def evidence(self) -> dict[str, Any]:
        return {"channel": self.name, "connection": self.connection, "peer_host": self.peer_host,
                "user": self.user, "vhost": self.vhost, "messages_unacknowledged": self.unacked,
                "prefetch_count": self.prefetch, "consumers": self.consumers}


def parse_channels(reply: Any) -> list[Channel]:
    channels = []
    for c in items(reply):
        details = c.get("connection_details") or {}
        channels.append(Channel(
            name=str(c.get("name", "")), connection=str(details.get("name", "")),
            peer_host=str(details.get("peer_host") or ""), user=str(c.get("user", "")),
            vhost=str(c.get("vhost", "")), unacked=int(num(c.get("messages_unacknowledged"))),
            prefetch=int(num(c.get("prefetch_count"))), consumers=int(num(c.get("consumer_count")))))
    return channels


BLOCKED_STATES = frozenset({"blocked", "blocking"})
"""A connection held by a resource alarm: ``blocked`` once it published, ``blocking`` until it does."""
