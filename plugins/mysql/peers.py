"""Whom a MySQL/MariaDB server talks to, from rows: its clients (``information_schema.PROCESSLIST`` hosts,
grouped without the port), its replicas (their ``Binlog Dump`` threads, and ``SHOW SLAVE HOSTS`` when the user
may run it, which adds their listening port) and the primary it replicates from (``SHOW REPLICA STATUS``)."""

from __future__ import annotations

from collections import Counter

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.mysql.parse import ReplicaStatus, Row

LOCAL = "localhost"
"""What the processlist shows for a connection through the Unix socket."""

_DUMP_COMMANDS = frozenset({"Binlog Dump", "Binlog Dump GTID"})
_REPLICATION_THREADS = frozenset({"Slave_IO", "Slave_SQL", "Slave_worker", "Daemon", "Connect"})


def connection_host(host: str) -> str:
    """``10.0.0.5:51234`` → ``10.0.0.5``; ``[::1]:51234`` → ``::1``; ``localhost`` (the socket) stays."""
    if host.startswith("["):
        return host[1:host.index("]")] if "]" in host else host
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() else host


def listener(host: str, port: str) -> str:
    """``host:port``, an IPv6 address in brackets (``[::1]:3306``) so that the port stays apart."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def client_peers(rows: list[Row]) -> list[Peer]:
    """Application connections grouped by host, with how many each has; replication threads left out."""
    counts = Counter(connection_host(row["host"] or "") for row in rows
                     if row.get("command") not in _DUMP_COMMANDS | _REPLICATION_THREADS and row.get("host"))
    return [Peer(role=PeerRole.CLIENT, address=host, count=count) for host, count in sorted(counts.items())]


def replica_peers(connections: list[Row], replica_hosts: list[Row]) -> list[Peer]:
    """Replicas with their port from ``SHOW SLAVE HOSTS`` (``Server_id`` as the name); a replica only seen by its
    ``Binlog Dump`` thread is reported by host alone (the thread's port is not the one it listens on)."""
    listed = [row for row in replica_hosts if row.get("Host") and row.get("Port")]
    known = {row["Host"] for row in listed}
    dumping = Counter(connection_host(row["host"] or "") for row in connections
                      if row.get("command") in _DUMP_COMMANDS and row.get("host"))
    return [Peer(role=PeerRole.REPLICA, address=listener(row["Host"], row["Port"]), name=row.get("Server_id"))
            for row in listed] + [Peer(role=PeerRole.REPLICA, address=host, count=count)
                                  for host, count in sorted(dumping.items()) if host not in known]


def primary_peers(replicas: list[ReplicaStatus]) -> list[Peer]:
    """The primary of each replication channel (``Master_Host:Master_Port``), the channel name as its name."""
    peers = []
    for replica in replicas:
        host, _, port = replica.source.rpartition(":")  # ReplicaStatus.source is "host:port"
        if host:
            peers.append(Peer(role=PeerRole.PRIMARY, address=listener(host, port), name=replica.channel or None))
    return peers


def mysql_peers(connections: list[Row], replica_hosts: list[Row], replicas: list[ReplicaStatus]) -> list[Peer]:
    return primary_peers(replicas) + replica_peers(connections, replica_hosts) + client_peers(connections)
