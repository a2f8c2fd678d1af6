"""Who reads a Kafka cluster, from described consumer groups: each group (a ``consumer_group`` peer named by its
id, so that a service labelled with that group is linked to the cluster) and the hosts its members run on
(``client`` peers, grouped, the client id as the name when a host's members share one).

A group has no address of its own: its peer carries the group id as ``address`` too, and its member count as
``count`` (at least 1, which the contract requires even of a group whose consumers are all gone)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from kubestack.contract.events import Peer, PeerRole

_GONE = frozenset({"Dead"})


def member_host(client_host: str) -> str:
    """The broker reports ``/10.0.0.5`` or ``app-1/10.0.0.5`` (Java's InetAddress text): the address."""
    return client_host.rpartition("/")[2]


def kafka_peers(described: Iterable[dict[str, Any]]) -> list[Peer]:
    groups: list[Peer] = []
    counts: Counter[str] = Counter()
    client_ids: dict[str, set[str]] = defaultdict(set)
    for group in described:
        if group.get("error_code") or group.get("state") in _GONE:
            continue
        members = group.get("members", [])
        groups.append(Peer(role=PeerRole.CONSUMER_GROUP, address=group["group"], name=group["group"],
                           count=max(1, len(members))))
        for member in members:
            host = member_host(member.get("client_host", ""))
            if host:
                counts[host] += 1
                client_ids[host].add(member.get("client_id", ""))
    clients = [Peer(role=PeerRole.CLIENT, address=host, count=count,
                    name=next(iter(client_ids[host])) if len(client_ids[host]) == 1 and "" not in client_ids[host]
                    else None)
               for host, count in sorted(counts.items())]
    return sorted(groups, key=lambda p: p.address) + clients
