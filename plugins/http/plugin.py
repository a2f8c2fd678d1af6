"""The http plugin: one application's Prometheus exposition, read over HTTP each round."""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar

import httpx

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, PeerRole, Sample
from kubestack.errors import TargetAuthError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.base import ActionSpec, CommandRunner, LogSource
from kubestack.plugins.http.checks import evaluate
from kubestack.plugins.http.config import HttpConfig
from kubestack.plugins.http.declaration import KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.http.parse import Key, Round, parse_exposition, round_between

_SKIPPED = re.compile(r"^(python_|process_)|_(bucket|created)$")


class HttpPlugin:
    """An instrumented application: request rate, error ratio and latency, and its dependencies."""

    name: ClassVar[str] = "http"
    config_model: ClassVar[type[HttpConfig]] = HttpConfig
    client_module: ClassVar[str] = "httpx"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS

    def __init__(self, config: HttpConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        self._previous: dict[str, dict[Key, float]] = {}
        """The read of the round before, per use (collect, health): a round's figures are what lies between."""

    @classmethod
    def create(cls, config: HttpConfig, runner: CommandRunner | None = None) -> HttpPlugin:
        """HTTP from here: the same client with or without a runner."""
        headers = {}
        if config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {config.bearer_token.resolve()}"
        return cls(config, httpx.AsyncClient(timeout=config.timeout_s, headers=headers))

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"url": "http://127.0.0.1:8080/metrics"}

    async def scrape(self) -> tuple[dict[Key, float], float]:
        started = time.monotonic()
        url = self.config.url
        try:
            response = await self.client.get(url)
        except httpx.TimeoutException:
            raise TargetTimeoutError(f"{url} gave no answer in {self.config.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise TargetUnreachableError(f"{url} is unreachable: {exc}") from None
        if response.status_code in (401, 403):
            raise TargetAuthError(f"{url} refused the credentials (HTTP {response.status_code})")
        if response.status_code != 200:
            raise TargetUnreachableError(f"{url} answered HTTP {response.status_code}")
        return parse_exposition(response.text), time.monotonic() - started

    def _round(self, use: str, now: dict[Key, float]) -> Round | None:
        c = self.config
        current = round_between(self._previous.get(use), now, requests=c.requests_metric,
                                status_label=c.status_label, error_status=c.error_status, latency=c.latency_metric)
        self._previous[use] = now
        return current

    async def collect(self) -> list[Sample]:
        series, took = await self.scrape()
        ts = utcnow()
        out = [Sample(name="http_scrape_seconds", value=took, ts=ts)]
        current = self._round("collect", series)
        if current is not None:
            out.append(Sample(name="http_round_requests", value=current.requests, ts=ts))
            if current.error_ratio is not None:
                out.append(Sample(name="http_error_ratio", value=current.error_ratio, ts=ts))
            if current.p95_s is not None:
                out.append(Sample(name="http_latency_p95_seconds", value=current.p95_s, ts=ts))
            if current.mean_s is not None:
                out.append(Sample(name="http_latency_mean_seconds", value=current.mean_s, ts=ts))
        passed = 0
        for (name, labels), value in series.items():
            if passed >= self.config.passthrough_max:
                break
            if _SKIPPED.search(name) or name == self.config.peer_metric:
                continue
            out.append(Sample(name=name, value=value, labels=dict(labels), ts=ts))
            passed += 1
        return out

    async def snapshot_config(self) -> dict[str, str]:
        series, _ = await self.scrape()
        peers = sorted(f"{labels}" for (name, labels) in series if name == self.config.peer_metric)
        return {"url": self.config.url, "series": str(len(series)), "dependencies": ";".join(peers)}

    def log_sources(self) -> list[LogSource]:
        return []

    async def check_health(self) -> list[Finding]:
        series, _ = await self.scrape()
        return evaluate(self._round("health", series), self.config)

    async def peers(self) -> list[Peer]:
        """The dependencies the application names in its peer series (value > 0)."""
        series, _ = await self.scrape()
        peers = []
        for (name, labels), value in series.items():
            info = dict(labels)
            if name != self.config.peer_metric or value <= 0 or not info.get("address"):
                continue
            try:
                role = PeerRole(info.get("role") or PeerRole.SERVER.value)
            except ValueError:
                continue
            peers.append(Peer(role=role, address=info["address"], name=info.get("name") or None))
        return peers

    def actions(self) -> list[ActionSpec]:
        return []

    async def close(self) -> None:
        await self.client.aclose()
