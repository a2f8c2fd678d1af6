"""Whom an etcd member works with: the other members of its cluster, by their client URL (the address their own
targets are watched at): the leader as the primary this member follows, the others as replicas of the log."""

from __future__ import annotations

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.etcd.parse import Member, Status


def member_peers(status: Status, members: list[Member]) -> list[Peer]:
    peers = []
    for member in members:
        if member.id == status.member_id or member.endpoint is None:
            continue
        role = PeerRole.PRIMARY if member.id == status.leader else PeerRole.REPLICA
        peers.append(Peer(role=role, address=member.endpoint, name=member.name or None))
    return peers
