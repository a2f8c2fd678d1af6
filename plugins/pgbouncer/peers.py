"""Whom PgBouncer talks to: the PostgreSQL servers it pools (``SHOW DATABASES`` host:port, as ``server`` peers, so
the worker links it to the PostgreSQL resource listening there) and its clients (``SHOW CLIENTS``, by address)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.pgbouncer.parse import Database, Row, app_clients

LOCAL = "localhost"
"""A client that came in through the Unix socket: PgBouncer's own host."""


def server_peers(databases: Sequence[Database]) -> list[Peer]:
    """One peer per backend listener; named by the pooled database when only one uses it."""
    names: dict[str, list[str]] = defaultdict(list)
    for db in databases:
        if db.backend:
            names[db.backend].append(db.name)
    return [Peer(role=PeerRole.SERVER, address=backend, count=len(dbs), name=dbs[0] if len(dbs) == 1 else None)
            for backend, dbs in sorted(names.items())]


def client_peers(rows: Sequence[Row]) -> list[Peer]:
    """Application clients by address, with how many connections each has; the application name when all of an
    address's connections carry the same one."""
    counts: Counter[str] = Counter()
    apps: dict[str, set[str]] = defaultdict(set)
    for row in app_clients(rows):
        addr = str(row.get("addr") or "")
        host = LOCAL if not addr or addr.startswith("unix") else addr
        counts[host] += 1
        apps[host].add(str(row.get("application_name") or ""))
    return [Peer(role=PeerRole.CLIENT, address=host, count=count,
                 name=next(iter(apps[host])) if len(apps[host]) == 1 and "" not in apps[host] else None)
            for host, count in sorted(counts.items())]


def pgbouncer_peers(databases: Sequence[Database], clients: Sequence[Row]) -> list[Peer]:
    return server_peers(databases) + client_peers(clients)
