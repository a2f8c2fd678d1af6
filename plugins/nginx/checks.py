"""Nginx health rules: pure functions over one observation (stub_status, the configuration, and the access and
error log lines written since the previous observation). Each finding carries the values the rule looked at
(``evidence``) and where they come from (``query``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.nginx.config import NginxConfig
from kubestack.plugins.nginx.parse import Access, ErrorLine, UpstreamServer
from kubestack.plugins.nginx.traffic import server_traffic, upstream_failures


@dataclass(frozen=True)
class Observation:
    stub: dict[str, int]
    workers: int
    worker_connections: int
    servers: list[UpstreamServer] = field(default_factory=list)
    accesses: list[Access] = field(default_factory=list)
    errors: list[ErrorLine] = field(default_factory=list)

    def others_up(self, upstream: str, address: str) -> list[str]:
        """The other servers of ``upstream`` that take traffic (not down, not backup)."""
        return [s.address for s in self.servers
                if s.upstream == upstream and s.address != address and not s.down and not s.backup]


Rule = Callable[[Observation, NginxConfig], list[Finding]]
ACCESS = "access log since the last check"


def _paths(accesses: list[Access], limit: int = 5) -> dict[str, int]:
    return dict(Counter(" ".join(a.request.split()[:2]) for a in accesses).most_common(limit))


def http_5xx(obs: Observation, limits: NginxConfig) -> list[Finding]:
    total = len(obs.accesses)
    failed = [a for a in obs.accesses if 500 <= a.status < 600]
    if total < limits.errors_min_requests or len(failed) / total < limits.errors_5xx_ratio:
        return []
    evidence: dict[str, Any] = {"requests": total, "responses_5xx": len(failed),
                                "ratio_5xx": round(len(failed) / total, 4),
                                "statuses": dict(Counter(a.status for a in failed)), "requests_failing": _paths(failed)}
    traffic = server_traffic(failed, obs.servers)
    worst = max(traffic.values(), key=lambda t: t.responses["5xx"], default=None)
    if worst is not None and worst.responses["5xx"]:
        evidence |= {"upstream": worst.upstream, "server": worst.address,
                     "server_responses_5xx": worst.responses["5xx"],
                     "servers_up": obs.others_up(worst.upstream, worst.address)}
    by = (f"; upstream server {worst.address} ({worst.upstream}) answered {worst.responses['5xx']} of them"
          if worst is not None and worst.responses["5xx"] else "")
    return [Finding(rule_id="nginx.http_5xx_high",
                    severity=Severity.CRITICAL if len(failed) / total >= 0.5 else Severity.WARNING,
                    message=f"{len(failed)} of {total} responses were 5xx ({len(failed) / total:.0%}){by}",
                    evidence=evidence, query=ACCESS)]


def http_4xx(obs: Observation, limits: NginxConfig) -> list[Finding]:
    total = len(obs.accesses)
    refused = [a for a in obs.accesses if 400 <= a.status < 500]
    if total < limits.errors_min_requests or len(refused) / total < limits.errors_4xx_ratio:
        return []
    return [Finding(rule_id="nginx.http_4xx_high", severity=Severity.WARNING,
                    message=f"{len(refused)} of {total} responses were 4xx ({len(refused) / total:.0%}): clients ask "
                            "for what is not there or not allowed",
                    evidence={"requests": total, "responses_4xx": len(refused),
                              "ratio_4xx": round(len(refused) / total, 4),
                              "statuses": dict(Counter(a.status for a in refused)), "requests_refused": _paths(refused),
                              "clients": dict(Counter(a.client for a in refused).most_common(5))},
                    query=ACCESS)]


def upstream_unreachable(obs: Observation, _: NginxConfig) -> list[Finding]:
    failures = upstream_failures(obs.errors, obs.servers)
    no_live = sum(1 for e in obs.errors if "no live upstreams" in e.message)
    if not failures:
        return []
    worst = max(failures.values(), key=lambda f: sum(f.kinds.values()))
    count = sum(worst.kinds.values())
    others = obs.others_up(worst.upstream, worst.address)
    return [Finding(
        rule_id="nginx.upstream_unreachable", severity=Severity.CRITICAL if no_live or not others else Severity.WARNING,
        message=f"upstream server {worst.address} ({worst.upstream}) failed {count} time(s): "
                + "; ".join(worst.kinds) + (f"; {no_live} request(s) found no live upstream" if no_live else ""),
        evidence={"upstream": worst.upstream, "server": worst.address, "failures": count,
                  "errors": dict(worst.kinds), "servers_up": others, "no_live_upstreams": no_live,
                  "servers_failing": {f.address: sum(f.kinds.values()) for f in failures.values()}},
        query="error log since the last check")]


def upstream_slow(obs: Observation, limits: NginxConfig) -> list[Finding]:
    traffic = server_traffic(obs.accesses, obs.servers)
    slow = [t for t in traffic.values() if len(t.times) >= limits.upstream_slow_min_requests
            and (t.mean_s or 0) >= limits.upstream_slow_s]
    if not slow:
        return []
    worst = max(slow, key=lambda t: t.mean_s or 0)
    return [Finding(
        rule_id="nginx.upstream_slow", severity=Severity.WARNING,
        message=f"upstream server {worst.address} ({worst.upstream}) answers in {worst.mean_s:.2f}s on average "
                f"over {len(worst.times)} responses (slow from {limits.upstream_slow_s:g}s)",
        evidence={"upstream": worst.upstream, "server": worst.address, "mean_s": round(worst.mean_s or 0, 3),
                  "max_s": round(max(worst.times), 3), "responses": len(worst.times),
                  "threshold_s": limits.upstream_slow_s,
                  "servers_slow": {t.address: round(t.mean_s or 0, 3) for t in slow}},
        query=f"{ACCESS}: $upstream_response_time")]


def connections_near_limit(obs: Observation, limits: NginxConfig) -> list[Finding]:
    limit = obs.workers * obs.worker_connections
    active = obs.stub.get("active", 0)
    dropped = obs.stub.get("accepts", 0) - obs.stub.get("handled", 0)
    if not limit or (active / limit < limits.connections_high_ratio and not dropped):
        return []
    return [Finding(
        rule_id="nginx.connections_near_limit",
        severity=Severity.CRITICAL if dropped or active >= limit else Severity.WARNING,
        message=f"{active} active connections of {limit} ({obs.workers} worker(s) x {obs.worker_connections} "
                f"worker_connections, {active / limit:.0%})"
                + (f"; {dropped} connection(s) dropped" if dropped else ""),
        evidence={"active": active, "limit": limit, "ratio": round(active / limit, 4), "worker_processes": obs.workers,
                  "worker_connections": obs.worker_connections, "reading": obs.stub.get("reading"),
                  "writing": obs.stub.get("writing"), "waiting": obs.stub.get("waiting"), "dropped": dropped},
        query="stub_status; nginx -T: worker_processes, worker_connections")]


RULES: tuple[Rule, ...] = (http_5xx, http_4xx, upstream_unreachable, upstream_slow, connections_near_limit)


def evaluate(obs: Observation, limits: NginxConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
