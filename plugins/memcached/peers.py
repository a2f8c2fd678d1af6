"""Whom a Memcached server talks to: its clients (``stats conns``), grouped by host, listening sockets and the
plugin's own connection left out."""

from __future__ import annotations

from collections import Counter

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.memcached.parse import Conn


def client_peers(conns: list[Conn], own: str | None = None) -> list[Peer]:
    counts: Counter[str] = Counter(c.host for c in conns if not c.listening and c.addr and c.address != own)
    return [Peer(role=PeerRole.CLIENT, address=host, count=count) for host, count in sorted(counts.items()) if host]
