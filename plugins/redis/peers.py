"""Whom a Redis server talks to, from raw replies: its clients (``CLIENT LIST``, grouped by host) and its
replication partners (``INFO`` replication: the primary it follows, the replicas that follow it)."""

from __future__ import annotations

from collections import Counter, defaultdict

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.redis.parse import Info, parse_replicas

LOCAL = "localhost"
"""The host of a client that came in through the Unix socket: the server's own host."""

_LINK_FLAGS = frozenset("SM")
"""A replica's link to us (S) and our link to our primary (M): replication, reported from INFO instead."""

_OWN_COMMANDS = frozenset({"client|list", "client"})
"""The connection that runs CLIENT LIST is the collector itself (Redis before 7 shows only ``client``)."""


def client_host(addr: str) -> str:
    """``10.0.0.5:51234`` → ``10.0.0.5``; ``[::1]:51234`` → ``::1``; a Unix socket path → ``localhost``."""
    if addr.startswith("/"):
        return LOCAL
    host = addr.rpartition(":")[0] or addr
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def listener(host: str, port: str) -> str:
    """``host:port``, an IPv6 address in brackets (``[::1]:6379``) so that the port stays apart."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def client_peers(clients: list[dict[str, str]]) -> list[Peer]:
    """Application clients grouped by host, with how many connections each has; the name when all of a host's
    connections carry the same one (``CLIENT SETNAME``)."""
    counts: Counter[str] = Counter()
    names: dict[str, set[str]] = defaultdict(set)
    for client in clients:
        if _LINK_FLAGS & set(client.get("flags", "")) or client.get("cmd") in _OWN_COMMANDS:
            continue
        host = client_host(client.get("addr", ""))
        if not host:
            continue
        counts[host] += 1
        names[host].add(client.get("name", ""))
    return [Peer(role=PeerRole.CLIENT, address=host, count=count,
                 name=next(iter(names[host])) if len(names[host]) == 1 and "" not in names[host] else None)
            for host, count in sorted(counts.items())]


def replication_peers(info: Info) -> list[Peer]:
    """The primary this server replicates from (``master_host:master_port``) and its replicas (``slaveN``)."""
    replication = info.get("replication", {})
    peers = []
    if replication.get("master_host"):
        peers.append(Peer(role=PeerRole.PRIMARY,
                          address=listener(replication["master_host"], replication.get("master_port", "6379"))))
    peers += [Peer(role=PeerRole.REPLICA, address=listener(r.ip, r.port)) for r in parse_replicas(info) if r.ip]
    return peers


def redis_peers(info: Info, clients: list[dict[str, str]]) -> list[Peer]:
    return replication_peers(info) + client_peers(clients)
