"""The Memcached plugin: metrics from ``stats`` (and per slab class), the ``stats settings`` snapshot, health rules
over the counters' increase between rounds, its clients as peers, and the runtime memory limit as an action."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.errors import ConfigError
from kubestack.plugins.base import ActionOutcome, ActionSpec, Capacity, CommandRunner, KubeDiscovery, LogSource
from kubestack.plugins.memcached import actions as memcached_actions
from kubestack.plugins.memcached.capacity import CAPACITIES
from kubestack.plugins.memcached.checks import Observation, evaluate, increase
from kubestack.plugins.memcached.client import DirectMemcachedClient, MemcachedClient
from kubestack.plugins.memcached.config import MemcachedConfig
from kubestack.plugins.memcached.declaration import ACTIONS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.memcached.metrics import slab_samples, stats_samples
from kubestack.plugins.memcached.parse import parse_conns, parse_per_slab, parse_stats
from kubestack.plugins.memcached.peers import client_peers
from kubestack.plugins.memcached.risks import config_risks

LOG_FORMAT = "<Content>"
_VOLATILE_SETTINGS = frozenset({"stat_key_prefix"})


class MemcachedPlugin:
    """Memcached: memory and evictions, refused stores, connections against the limit, hit ratio, slab classes,
    through the text protocol's stats."""

    name: ClassVar[str] = "memcached"
    config_model: ClassVar[type[MemcachedConfig]] = MemcachedConfig
    client_module: ClassVar[str] = "asyncio"
    """The text protocol over a plain socket: no client library."""
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 11211
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(port=11211, apps=("memcached",), images=("memcached",))

    def __init__(self, config: MemcachedConfig, client: MemcachedClient) -> None:
        self.config = config
        self.client = client
        self._previous: tuple[dict[str, str], float] | None = None
        """(``stats``, monotonic time) of the previous health round: the baseline of the counters' increase."""

    @classmethod
    def create(cls, config: MemcachedConfig, runner: CommandRunner | None = None) -> MemcachedPlugin:
        if runner is not None:
            raise ConfigError("the memcached plugin talks to the server's port directly: give the target a host "
                              "and port instead of ssh")
        return cls(config, DirectMemcachedClient(config))

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": cls.default_port}

    async def collect(self) -> list[Sample]:
        stats = parse_stats(await self.client.stats())
        slabs = parse_per_slab(parse_stats(await self.client.stats("slabs")))
        items = parse_per_slab(parse_stats(await self.client.stats("items")))
        ts = utcnow()
        return stats_samples(stats, ts) + slab_samples(slabs, items, ts)

    async def snapshot_config(self) -> dict[str, str]:
        settings = parse_stats(await self.client.stats("settings"))
        version = parse_stats(await self.client.stats()).get("version")
        return {k: v for k, v in settings.items() if k not in _VOLATILE_SETTINGS} | (
            {"version": version} if version else {})

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=self.config.log_path, format=LOG_FORMAT)] if self.config.log_path else []

    async def observe(self) -> Observation:
        """Everything the health rules look at, read in one round; the counters' increase since the previous."""
        stats = parse_stats(await self.client.stats())
        settings = parse_stats(await self.client.stats("settings"))
        items = parse_per_slab(parse_stats(await self.client.stats("items")))
        slabs = parse_per_slab(parse_stats(await self.client.stats("slabs")))
        now, previous = time.monotonic(), self._previous
        self._previous = (stats, now)
        delta = increase(previous[0], stats) if previous is not None else None
        return Observation(stats=stats, settings=settings, items=items, slabs=slabs, delta=delta,
                           window_s=now - previous[1] if previous is not None else 0.0)

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe(), self.config)

    async def peers(self) -> list[Peer]:
        conns = parse_conns(parse_stats(await self.client.stats("conns")))
        return client_peers(conns, own=self.client.local_address())

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await memcached_actions.execute(self.client, self.config, ACTIONS, action_id, params, dry_run=dry_run)

    async def close(self) -> None:
        await self.client.close()
