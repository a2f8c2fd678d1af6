"""Pure parsers of ZooKeeper's four-letter words: ``mntr`` (tab-separated), ``srvr``, ``conf`` (with the ensemble's
``server.N`` lines), ``cons`` (one line per connection) and ``dump`` (sessions and their ephemeral nodes). A server
that lost its quorum answers most words with ``This ZooKeeper instance is not currently serving requests``."""

from __future__ import annotations

import re
from dataclasses import dataclass

NOT_SERVING = "not currently serving requests"


def serving(text: str) -> bool:
    return NOT_SERVING not in text


def parse_mntr(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        if sep and key.startswith("zk_"):
            out[key] = value.strip()
    return out


def number(value: str | None) -> float | None:
    try:
        result = float(value) if value is not None else None
    except ValueError:
        return None
    return result if result is not None and result == result and abs(result) != float("inf") else None


def parse_srvr(text: str) -> dict[str, str]:
    """``Mode: follower`` → ``{"Mode": "follower"}``; the latency line as ``Latency min/avg/max``."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class EnsembleMember:
    sid: int
    host: str
    quorum_port: int
    election_port: int
    role: str
    """participant or observer"""
    client: str | None
    """host:port of its client port when the config says it (dynamic configuration)."""


_SERVER = re.compile(r"^server\.(\d+)=([^:;]+|\[[^\]]+\]):(\d+):(\d+)(?::(\w+))?(?:;(.+))?$")


def parse_conf(text: str) -> tuple[dict[str, str], list[EnsembleMember]]:
    """The settings (``key=value``) and the ensemble members (``server.N`` lines under ``membership:``)."""
    settings, members = {}, []
    for line in text.splitlines():
        line = line.strip()
        match = _SERVER.match(line)
        if match:
            sid, host, quorum, election, role, client = match.groups()
            members.append(EnsembleMember(int(sid), host.strip("[]"), int(quorum), int(election),
                                          role or "participant", _client(client, host.strip("[]"))))
            continue
        key, sep, value = line.partition("=")
        if sep and not key.startswith("server."):
            settings[key.strip()] = value.strip()
    return settings, members


def _client(spec: str | None, host: str) -> str | None:
    """``0.0.0.0:2181`` or ``2181`` (client address of a dynamic config) → ``host:2181``."""
    if not spec:
        return None
    address, _, port = spec.strip().rpartition(":")
    if not port.isdigit():
        return None
    if not address or address in ("0.0.0.0", "[::]", "::"):
        address = host
    return f"{address}:{port}"


@dataclass(frozen=True)
class Connection:
    ip: str
    port: int
    session: str | None
    """``0x...``, none for a connection without a session (a four-letter word, a handshake)."""
    queued: int
    received: int
    sent: int
    fields: dict[str, str]


_CONN = re.compile(r"^/?\[?([0-9A-Fa-f:.]+?)\]?:(\d+)\[\d+\]\((.*)\)$")


def parse_cons(text: str) -> list[Connection]:
    out = []
    for line in text.splitlines():
        match = _CONN.match(line.strip())
        if not match:
            continue
        ip, port, body = match.groups()
        fields = dict(part.split("=", 1) for part in body.split(",") if "=" in part)
        out.append(Connection(ip=ip, port=int(port), session=fields.get("sid"), queued=int(fields.get("queued", 0)),
                              received=int(fields.get("recved", 0)), sent=int(fields.get("sent", 0)), fields=fields))
    return out


def parse_dump(text: str) -> dict[str, list[str]]:
    """Session id → the ephemeral nodes it owns (the ``Sessions with Ephemerals`` part of ``dump``)."""
    owners: dict[str, list[str]] = {}
    inside, current = False, None
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("Sessions with Ephemerals"):
            inside = True
            continue
        if not inside:
            continue
        if line.startswith("Connections dump") or (line and not line.startswith(("\t", " ", "0x"))):
            break
        if line.startswith("0x"):
            current = line.rstrip(":")
            owners[current] = []
        elif line.strip() and current is not None:
            owners[current].append(line.strip())
    return owners
