"""Samples of one round: stub_status (connections; accepts, handled and requests as the cumulative counters nginx
keeps), the worker capacity from the configuration, and what the access log said since the plugin started
(responses by class, tries per upstream server as counters; mean times of the round)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.nginx.traffic import ServerTraffic

_STUB = (("active", "nginx_connections_active"), ("reading", "nginx_connections_reading"),
         ("writing", "nginx_connections_writing"), ("waiting", "nginx_connections_waiting"),
         ("accepts", "nginx_connections_accepted_total"), ("handled", "nginx_connections_handled_total"),
         ("requests", "nginx_requests_total"))


def stub_samples(stub: dict[str, int], max_connections: int | None, ts: datetime) -> list[Sample]:
    samples = [Sample(name=name, value=stub[key], ts=ts) for key, name in _STUB if key in stub]
    samples.append(Sample(name="nginx_connections_dropped_total", value=stub["accepts"] - stub["handled"], ts=ts))
    if max_connections:
        samples += [Sample(name="nginx_max_connections", value=max_connections, ts=ts),
                    Sample(name="nginx_connections_used_ratio", value=stub["active"] / max_connections, ts=ts)]
    return samples


class TrafficTotals:
    """Counters of the access log lines read since the plugin started."""

    def __init__(self) -> None:
        self.responses: Counter[str] = Counter()
        self.tries: Counter[tuple[str, str, str]] = Counter()

    def add(self, responses: Counter[str], servers: dict[str, ServerTraffic]) -> None:
        self.responses.update(responses)
        for t in servers.values():
            for outcome, count in t.responses.items():
                self.tries[(t.upstream, t.address, outcome)] += count

    def samples(self, servers: dict[str, ServerTraffic], ts: datetime) -> list[Sample]:
        samples = [Sample(name="nginx_http_responses_total", value=count, ts=ts, labels={"code": code})
                   for code, count in sorted(self.responses.items())]
        samples += [Sample(name="nginx_upstream_responses_total", value=count, ts=ts,
                           labels={"upstream": upstream, "server": address, "code": outcome})
                    for (upstream, address, outcome), count in sorted(self.tries.items()) if outcome != "failed"]
        samples += [Sample(name="nginx_upstream_failures_total", value=count, ts=ts,
                           labels={"upstream": upstream, "server": address})
                    for (upstream, address, outcome), count in sorted(self.tries.items()) if outcome == "failed"]
        samples += [Sample(name="nginx_upstream_response_time_seconds", value=t.mean_s, ts=ts,
                           labels={"upstream": t.upstream, "server": t.address})
                    for t in servers.values() if t.mean_s is not None]
        return samples
