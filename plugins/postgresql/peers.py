"""Whom a PostgreSQL server talks to, from rows: its clients (``pg_stat_activity.client_addr``, grouped), its
standbys (``pg_stat_replication``) and, on a standby, the primary it streams from (``pg_stat_wal_receiver``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.postgresql.parse import Replica, Row

LOCAL = "localhost"
"""A connection through a Unix socket (no client address): the server's own host."""


def _address(addr: str | None) -> str:
    """``10.0.0.5`` or ``10.0.0.5/32`` (an ``inet`` cast to text) → ``10.0.0.5``; empty (a socket) → ``localhost``."""
    return (addr or "").split("/", 1)[0] or LOCAL


def client_peers(rows: Sequence[Row]) -> list[Peer]:
    """Client backends grouped by address, with how many each has; the ``application_name`` as the name when a
    host's connections all carry the same one. Rows: client address, client port, application name."""
    counts: Counter[str] = Counter()
    names: dict[str, set[str]] = defaultdict(set)
    for addr, port, application in rows:
        if not addr and port != "-1":  # neither TCP nor a socket: a background process
            continue
        host = _address(addr)
        counts[host] += 1
        names[host].add(application or "")
    return [Peer(role=PeerRole.CLIENT, address=host, count=count,
                 name=next(iter(names[host])) if len(names[host]) == 1 and "" not in names[host] else None)
            for host, count in sorted(counts.items())]


def replica_peers(replicas: list[Replica]) -> list[Peer]:
    """Standbys by address (their listening port is not known here), ``application_name`` (by default the
    standby's ``cluster_name``) as the name."""
    return [Peer(role=PeerRole.REPLICA, address=_address(r.client_addr), name=r.name or None) for r in replicas]


def primary_peers(rows: Sequence[Row]) -> list[Peer]:
    """The primary of a standby: ``sender_host:sender_port``; a Unix socket directory means this host.
    Rows: sender host, sender port, status."""
    peers = []
    for host, port, _status in rows:
        if not host:
            continue
        where = LOCAL if host.startswith("/") else host
        if port:
            where = f"[{where}]:{port}" if ":" in where else f"{where}:{port}"  # brackets keep an IPv6 port apart
        peers.append(Peer(role=PeerRole.PRIMARY, address=where))
    return peers


def postgresql_peers(connections: Sequence[Row], replicas: list[Replica], receiver: Sequence[Row]) -> list[Peer]:
    return primary_peers(receiver) + replica_peers(replicas) + client_peers(connections)
