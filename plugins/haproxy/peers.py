"""Whom HAProxy talks to: the servers of its backends (their addresses, as ``show stat`` gives them) and its
clients (``show sess``, grouped by host)."""

from __future__ import annotations

from collections import Counter

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.haproxy.parse import StatRow


def client_host(src: str) -> str:
    """``10.0.0.5:51234`` → ``10.0.0.5``; ``[::1]:51234`` → ``::1``."""
    host = src.rpartition(":")[0] or src
    return host.strip("[]")


def server_peers(rows: list[StatRow]) -> list[Peer]:
    return [Peer(role=PeerRole.SERVER, address=row.fields["addr"], name=f"{row.proxy}/{row.name}")
            for row in rows if row.kind == "server" and row.fields.get("addr")]


def client_peers(sessions: list[tuple[str, str]]) -> list[Peer]:
    counts = Counter(client_host(src) for src, _ in sessions)
    return [Peer(role=PeerRole.CLIENT, address=host, count=count) for host, count in sorted(counts.items()) if host]


def haproxy_peers(rows: list[StatRow], sessions: list[tuple[str, str]]) -> list[Peer]:
    return server_peers(rows) + client_peers(sessions)
