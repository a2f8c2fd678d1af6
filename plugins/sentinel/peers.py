"""Whom a sentinel watches and talks to: each monitored primary and its replicas (Redis servers at ``ip:port``: the
worker links the sentinel to the Redis resources listening there) and the other sentinels of each primary."""

from __future__ import annotations

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.sentinel.checks import Observation


def sentinel_peers(obs: Observation) -> list[Peer]:
    peers: dict[str, Peer] = {}
    for p in obs.primaries:
        peers.setdefault(p.address, Peer(role=PeerRole.SERVER, address=p.address, name=f"{p.name} primary"))
        for r in obs.replicas.get(p.name, []):
            peers.setdefault(r.address, Peer(role=PeerRole.SERVER, address=r.address, name=f"{p.name} replica"))
        for s in obs.sentinels.get(p.name, []):
            peers.setdefault(s.address, Peer(role=PeerRole.SERVER, address=s.address, name=f"sentinel {s.runid[:8]}"))
    return list(peers.values())
