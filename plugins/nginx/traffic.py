"""What a window of access and error log lines says, per response class and per upstream server: pure, shared by
the metrics (counted up over the plugin's life) and the health rules (one window)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from kubestack.plugins.nginx.parse import Access, ErrorLine, UpstreamServer, upstream_failure


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status and 100 <= status < 600 else "other"


@dataclass
class ServerTraffic:
    """The tries at one upstream server in a window."""

    upstream: str
    address: str
    responses: Counter[str] = field(default_factory=Counter)
    """Status class of the server's answers (``5xx``...); ``failed``: no answer (refused, timed out, reset)."""
    times: list[float] = field(default_factory=list)

    @property
    def tries(self) -> int:
        return sum(self.responses.values())

    @property
    def mean_s(self) -> float | None:
        return sum(self.times) / len(self.times) if self.times else None


def upstream_of(servers: list[UpstreamServer]) -> dict[str, str]:
    """Server address → its upstream block's name."""
    return {s.address: s.upstream for s in servers}


def server_traffic(accesses: list[Access], servers: list[UpstreamServer]) -> dict[str, ServerTraffic]:
    names = upstream_of(servers)
    traffic: dict[str, ServerTraffic] = {}
    for access in accesses:
        for attempt in access.attempts:
            t = traffic.setdefault(attempt.address, ServerTraffic(names.get(attempt.address, "-"), attempt.address))
            t.responses[status_class(attempt.status) if attempt.connected else "failed"] += 1
            if attempt.connected and attempt.response_s is not None:
                t.times.append(attempt.response_s)
    return traffic


def responses(accesses: list[Access]) -> Counter[str]:
    return Counter(status_class(a.status) for a in accesses)


@dataclass(frozen=True)
class Failure:
    address: str
    upstream: str
    kinds: Counter[str]


def upstream_failures(errors: list[ErrorLine], servers: list[UpstreamServer]) -> dict[str, Failure]:
    """Failed tries at upstream servers from the error log, by server address."""
    names = upstream_of(servers)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for line in errors:
        kind = upstream_failure(line)
        if kind is not None:
            kinds[line.upstream_address or "-"][kind] += 1
    return {address: Failure(address, names.get(address, "-"), counted) for address, counted in kinds.items()}
