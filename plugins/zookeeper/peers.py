"""Whom a ZooKeeper server works with: the other ensemble members by their client address (the leader as the
primary a follower syncs from, the others as replicas), and its clients by IP (``cons``)."""

from __future__ import annotations

from collections import Counter

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.zookeeper.checks import MemberView
from kubestack.plugins.zookeeper.parse import Connection


def zookeeper_peers(own: str, views: dict[str, MemberView], connections: list[Connection]) -> list[Peer]:
    peers = [Peer(role=PeerRole.PRIMARY if view.mode == "leader" else PeerRole.REPLICA, address=address)
             for address, view in sorted(views.items()) if address != own]
    clients = Counter(c.ip for c in connections if c.session)
    peers += [Peer(role=PeerRole.CLIENT, address=ip, count=n) for ip, n in sorted(clients.items())]
    return peers
