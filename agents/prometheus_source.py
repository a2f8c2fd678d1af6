"""Prometheus as a source: pull selected series from an existing Prometheus into ``MetricBatch`` events.

Each configured query is an instant PromQL query; every series it returns is mapped to a resource through the
query's ``resource`` rule (kind fixed or from a label, name from the first present of some labels, namespace,
host and cluster from labels) and becomes one ``Sample`` named after the query. ``to_batches`` (pure) groups
one poll's samples into one batch per resource.

```yaml
url: http://prometheus:9090
interval: 30s
bearer_token: {env: PROM_TOKEN}
queries:
  - name: redis_connected_clients
    promql: redis_connected_clients
    resource: {kind: redis, name_labels: [instance]}
  - name: http_requests_per_second
    promql: sum by (service, namespace, code) (rate(http_requests_total[5m]))
    resource: {kind: service, name_labels: [service], namespace_label: namespace}
    keep_labels: [code]
```

Series that lack the labels their rule needs, and non-finite values (NaN, ±Inf), are left out and counted in
the log. A query Prometheus rejects is a ``ConfigError`` naming it; an unreachable Prometheus a
``TargetUnreachableError``; 401/403 a ``TargetAuthError``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from kubestack.agents.prometheus_config import PrometheusSourceConfig, PromQuery
from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import MetricBatch, Sample
from kubestack.errors import ConfigError, TargetAuthError, TargetTimeoutError, TargetUnreachableError

log = logging.getLogger(__name__)

_STATUS = re.compile(r"HTTP Status Code (\d{3})")


def _series(result: Any) -> list[tuple[dict[str, str], list[tuple[float, str]]]]:
    """(labels, [(ts, value)]) per series of a ``custom_query`` result: vector, matrix or scalar."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return [({}, [(result[0], result[1])])]  # a scalar: [ts, "value"]
    series = []
    for item in result:
        points = item["values"] if "values" in item else [item["value"]]
        series.append((item.get("metric", {}), [(ts, value) for ts, value in points]))
    return series


def samples_of(query: PromQuery, result: Any) -> list[tuple[ResourceRef, Sample]]:
    """The samples one query's result yields, each with the resource it belongs to."""
    out: list[tuple[ResourceRef, Sample]] = []
    unmapped = non_finite = 0
    for labels, points in _series(result):
        resource = query.resource.resource(labels)
        if resource is None:
            unmapped += 1
            continue
        kept = {key: labels[key] for key in query.keep_labels if key in labels}
        for ts, raw in points:
            value = float(raw)
            if not math.isfinite(value):
                non_finite += 1
                continue
            out.append((resource, Sample(name=query.name, value=value, labels=kept,
                                         ts=datetime.fromtimestamp(float(ts), timezone.utc))))
    if unmapped or non_finite:
        log.warning("query %s: left out %d series without the labels its resource rule needs and %d non-finite "
                    "values", query.name, unmapped, non_finite)
    return out


def to_batches(results: Sequence[tuple[PromQuery, Any]], *, source: Source, tenant: str = "default",
               interval_s: float | None = None) -> list[MetricBatch]:
    """One poll's query results → one ``MetricBatch`` per resource, in first-seen order."""
    grouped: dict[str, tuple[ResourceRef, list[Sample]]] = {}
    for query, result in results:
        for resource, sample in samples_of(query, result):
            grouped.setdefault(resource.key, (resource, []))[1].append(sample)
    return [MetricBatch.of_samples(samples, source=source, resource=resource, tenant=tenant, interval_s=interval_s)
            for resource, samples in grouped.values()]


class PrometheusSource:
    """Polls the configured queries against one Prometheus (the client is sync; it runs in a thread)."""

    def __init__(self, config: PrometheusSourceConfig, *, source: Source, tenant: str = "default") -> None:
        self.config = config
        self.source = source
        self.tenant = tenant
        headers = None
        if config.bearer_token is not None:
            headers = {"Authorization": f"Bearer {config.bearer_token.resolve()}"}
        auth = None
        if config.basic_auth is not None:
            auth = (config.basic_auth.username, config.basic_auth.password.resolve())
        self._session = requests.Session()
        self._session.verify = config.verify_tls
        # no retries inside a poll: the next poll is the retry, and a dead Prometheus must fail fast
        self._client = PrometheusConnect(url=config.url.rstrip("/"), headers=headers, auth=auth,
                                         session=self._session, retry=Retry(total=0), timeout=config.timeout)

    async def poll(self) -> list[MetricBatch]:
        results = []
        for query in self.config.queries:
            results.append((query, await asyncio.to_thread(self._query, query)))
        return to_batches(results, source=self.source, tenant=self.tenant, interval_s=self.config.interval)

    def _query(self, query: PromQuery) -> Any:
        url = self.config.url
        try:
            return self._client.custom_query(query.promql)
        except requests.Timeout:
            raise TargetTimeoutError(
                f"Prometheus at {url} gave no answer to {query.name} in {self.config.timeout:g}s") from None
        except requests.ConnectionError as exc:
            raise TargetUnreachableError(f"Prometheus at {url} is unreachable: {_reason(exc)}") from None
        except requests.RequestException as exc:
            raise TargetUnreachableError(f"Prometheus at {url} failed on {query.name}: {exc}") from None
        except PrometheusApiClientException as exc:
            raise _http_error(url, query, str(exc)) from None

    async def close(self) -> None:
        self._session.close()


def _http_error(url: str, query: PromQuery, message: str) -> Exception:
    match = _STATUS.search(message)
    status = int(match.group(1)) if match else 0
    if status in (401, 403):
        return TargetAuthError(f"Prometheus at {url} refused the credentials (HTTP {status}): check basic_auth "
                               "or bearer_token")
    if status in (400, 422):
        return ConfigError(f"Prometheus at {url} rejected query {query.name} ({query.promql!r}): "
                           f"{message[:300]}")
    return TargetUnreachableError(f"Prometheus at {url} answered {query.name} with {message[:300]}")


def _reason(exc: requests.ConnectionError) -> str:
    """The innermost cause (e.g. 'Connection refused') instead of urllib3's nested repr."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
    return getattr(cause, "strerror", None) or str(cause)
