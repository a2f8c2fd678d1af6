"""Pure parsers of Memcached's ``stats`` replies: ``STAT name value`` lines (``stats``, ``stats settings``),
per slab class ones (``stats slabs``: ``STAT 3:chunk_size 152``; ``stats items``: ``STAT items:3:evicted 12``) and
per connection ones (``stats conns``: ``STAT 12:addr tcp:10.0.0.5:51234``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


def parse_stats(text: str) -> dict[str, str]:
    stats = {}
    for line in text.splitlines():
        parts = line.strip().split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            stats[parts[1]] = parts[2]
    return stats


def number(stats: dict[str, str], key: str) -> float | None:
    try:
        return float(stats[key])
    except (KeyError, ValueError):
        return None


def parse_per_slab(stats: dict[str, str]) -> dict[str, dict[str, str]]:
    """``{"3:chunk_size": ..}`` or ``{"items:3:evicted": ..}`` → slab class → field → value; global keys
    (``active_slabs``) are left out."""
    slabs: dict[str, dict[str, str]] = defaultdict(dict)
    for key, value in stats.items():
        parts = key.removeprefix("items:").split(":", 1)
        if len(parts) == 2 and parts[0].isdigit():
            slabs[parts[0]][parts[1]] = value
    return dict(slabs)


@dataclass(frozen=True)
class Conn:
    fd: str
    addr: str
    state: str
    listening: bool
    idle_s: int

    @property
    def host(self) -> str:
        """``tcp:10.0.0.5:51234`` → ``10.0.0.5``; ``tcp6:[::1]:5`` → ``::1``; a Unix socket → ``localhost``."""
        proto, _, rest = self.addr.partition(":")
        if not proto.startswith(("tcp", "udp")):
            return "localhost"
        host = rest.rpartition(":")[0]
        return host[1:-1] if host.startswith("[") else host

    @property
    def address(self) -> str:
        """``ip:port`` of the client."""
        return self.addr.partition(":")[2]


def parse_conns(stats: dict[str, str]) -> list[Conn]:
    fields: dict[str, dict[str, str]] = defaultdict(dict)
    for key, value in stats.items():
        fd, sep, name = key.partition(":")
        if sep and fd.isdigit():
            fields[fd][name] = value
    conns = []
    for fd, f in sorted(fields.items(), key=lambda kv: int(kv[0])):
        state = f.get("state", "")
        idle = f.get("secs_since_last_cmd", "0")
        conns.append(Conn(fd=fd, addr=f.get("addr", ""), state=state,
                          listening=state == "conn_listening" or f.get("addr", "").startswith("udp"),
                          idle_s=int(idle) if idle.isdigit() else 0))
    return conns
