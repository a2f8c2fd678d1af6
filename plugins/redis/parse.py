"""Pure parsers of raw Redis replies: ``INFO`` text, ``CONFIG GET`` pairs, ``SLOWLOG GET`` entries and
``CLIENT LIST`` lines. The direct client and the ``redis-cli`` client both hand these the same raw shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Info = dict[str, dict[str, str]]
"""INFO section (lower case, e.g. ``memory``) → field → raw value."""


def parse_info(text: str) -> Info:
    """``# Memory`` headers open a section; ``key:value`` lines fill it (values keep inner colons)."""
    sections: Info = {}
    current = sections.setdefault("", {})
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            current = sections.setdefault(line.lstrip("#").strip().lower(), {})
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key] = value
    if not sections[""]:
        del sections[""]
    return sections


def parse_fields(value: str) -> dict[str, str]:
    """``keys=3,expires=1,avg_ttl=0`` (keyspace and ``slaveN`` lines) → ``{"keys": "3", ...}``."""
    fields = {}
    for part in value.split(","):
        key, sep, item = part.partition("=")
        if sep:
            fields[key.strip()] = item.strip()
    return fields


def number(value: str | None) -> float | None:
    """A numeric INFO value, or None for absent or non-numeric ones (``-nan``, ``ok``)."""
    if value is None:
        return None
    try:
        result = float(value)
    except ValueError:
        return None
    return result if result == result else None  # NaN is not a value


def info_number(info: Info, section: str, key: str) -> float | None:
    return number(info.get(section, {}).get(key))


@dataclass(frozen=True)
class Keyspace:
    db: str
    keys: int
    expires: int
    avg_ttl_ms: int


def parse_keyspace(info: Info) -> list[Keyspace]:
    spaces = []
    for db, value in info.get("keyspace", {}).items():
        fields = parse_fields(value)
        spaces.append(Keyspace(db=db, keys=int(fields.get("keys", 0)), expires=int(fields.get("expires", 0)),
                               avg_ttl_ms=int(fields.get("avg_ttl", 0))))
    return spaces


@dataclass(frozen=True)
class Replica:
    """One ``slaveN`` line of a primary's replication section."""

    name: str
    ip: str
    port: str
    state: str
    offset: int
    lag_s: int


def parse_replicas(info: Info) -> list[Replica]:
    replicas = []
    for key, value in info.get("replication", {}).items():
        if not (key.startswith("slave") and key[5:].isdigit()):
            continue
        fields = parse_fields(value)
        replicas.append(Replica(name=key, ip=fields.get("ip", ""), port=fields.get("port", ""),
                                state=fields.get("state", ""), offset=int(fields.get("offset", 0)),
                                lag_s=int(fields.get("lag", 0))))
    return replicas


def parse_config_pairs(reply: list[str] | dict[str, str]) -> dict[str, str]:
    """``CONFIG GET *`` reply: a flat ``[name, value, name, value, ...]`` list (RESP2) or a map (RESP3)."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    if len(reply) % 2:
        raise ValueError(f"CONFIG GET reply has an odd number of items ({len(reply)})")
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply), 2)}


@dataclass(frozen=True)
class SlowlogEntry:
    id: int
    started_at: int
    """Unix time the command started."""
    duration_us: int
    command: str
    client: str

    def evidence(self, max_command: int = 120) -> dict[str, Any]:
        return {"id": self.id, "started_at": self.started_at, "duration_us": self.duration_us,
                "command": self.command[:max_command], "client": self.client}


def parse_slowlog(reply: list[list[Any]]) -> list[SlowlogEntry]:
    """``SLOWLOG GET n`` reply: ``[id, unix_time, duration_us, [argv...], client_addr, client_name]`` each."""
    entries = []
    for item in reply:
        args = [str(a) for a in item[3]]
        client = str(item[4]) if len(item) > 4 else ""
        entries.append(SlowlogEntry(id=int(item[0]), started_at=int(item[1]), duration_us=int(item[2]),
                                    command=" ".join(args), client=client))
    return entries


def parse_client_list(text: str) -> list[dict[str, str]]:
    """``CLIENT LIST``: one client a line, ``key=value`` pairs separated by spaces (``cmd`` has no spaces)."""
    clients = []
    for line in text.splitlines():
        if not line.strip():
            continue
        clients.append({k: v for k, sep, v in (p.partition("=") for p in line.split(" ")) if sep})
    return clients
