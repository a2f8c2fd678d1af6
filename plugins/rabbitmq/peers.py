"""Whom a RabbitMQ node talks to: its clients (AMQP/MQTT/STOMP connections, grouped by host, named when all of a
host's connections carry the same ``connection_name``) and the other members of its cluster."""

from __future__ import annotations

from collections import Counter, defaultdict

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.rabbitmq.parse import Connection, Node


def client_peers(connections: list[Connection]) -> list[Peer]:
    counts: Counter[str] = Counter()
    names: dict[str, set[str]] = defaultdict(set)
    for c in connections:
        if not c.peer_host:
            continue  # a direct (in-node) connection: a shovel or federation link of the node itself
        counts[c.peer_host] += 1
        names[c.peer_host].add(c.client_name)
    return [Peer(role=PeerRole.CLIENT, address=host, count=count,
                 name=next(iter(names[host])) if len(names[host]) == 1 and "" not in names[host] else None)
            for host, count in sorted(counts.items())]


def cluster_peers(nodes: list[Node], local: str) -> list[Peer]:
    """The other cluster members, by host, named by their node name (``rabbit@mq-1``)."""
    return [Peer(role=PeerRole.SERVER, address=n.host, name=n.name) for n in nodes if n.name != local and n.host]


def rabbitmq_peers(nodes: list[Node], local: str, connections: list[Connection]) -> list[Peer]:
    return cluster_peers(nodes, local) + client_peers(connections)
