"""Whom nginx talks to: the servers of its upstream blocks and the hosts ``proxy_pass`` names directly (from the
configuration), and its clients (the access log's addresses of the last window, grouped)."""

from __future__ import annotations

import re
from collections import Counter

from kubestack.contract.events import Peer, PeerRole
from kubestack.plugins.nginx.parse import Directive, UpstreamServer

_URL = re.compile(r"^[a-z]+://(?P<host>[^/$]+)")


def proxied(tree: list[Directive], upstreams: set[str]) -> list[str]:
    """Addresses ``proxy_pass`` (and the like) names directly, not through an upstream block."""
    found = []

    def walk(directives: list[Directive]) -> None:
        for d in directives:
            if d.block is not None:
                walk(d.block)
            elif d.name in ("proxy_pass", "grpc_pass", "uwsgi_pass", "fastcgi_pass") and d.args:
                match = _URL.match(d.args[0])
                host = match["host"] if match else d.args[0]
                if host not in upstreams and not host.startswith("unix:"):
                    found.append(host)

    walk(tree)
    return sorted(set(found))


def nginx_peers(tree: list[Directive], servers: list[UpstreamServer], clients: Counter[str]) -> list[Peer]:
    peers = [Peer(role=PeerRole.SERVER, address=s.address, name=f"upstream {s.upstream}")
             for s in servers if not s.address.startswith("unix:")]
    peers += [Peer(role=PeerRole.SERVER, address=host) for host in proxied(tree, {s.upstream for s in servers})]
    peers += [Peer(role=PeerRole.CLIENT, address=host, count=count) for host, count in sorted(clients.items())]
    return peers
