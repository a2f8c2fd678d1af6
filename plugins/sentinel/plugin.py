"""The Sentinel plugin: one sentinel's view of the primaries it monitors (SENTINEL MASTERS, REPLICAS, SENTINELS,
CKQUORUM, INFO sentinel), their settings as the config snapshot, health rules (failover, primary down, quorum,
too few replicas or sentinels, TILT), the Redis servers and other sentinels as peers, and SENTINEL actions."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.errors import CommandFailedError, ConfigError
from kubestack.plugins.base import ActionOutcome, ActionSpec, CommandRunner, KubeDiscovery, LogSource
from kubestack.plugins.sentinel import actions as sentinel_actions
from kubestack.plugins.sentinel.checks import Observation, Switch, evaluate
from kubestack.plugins.sentinel.client import DirectSentinelClient, SentinelClient
from kubestack.plugins.sentinel.config import SentinelConfig
from kubestack.plugins.sentinel.declaration import ACTIONS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.sentinel.metrics import samples
from kubestack.plugins.sentinel.parse import Primary, pairs, parse_info, parse_primary, parse_replicas, parse_sentinels
from kubestack.plugins.sentinel.peers import sentinel_peers
from kubestack.plugins.sentinel.risks import config_risks

DEFAULT_LOG = "/var/log/redis/redis-sentinel.log"
LOG_FORMAT = "<Pid>:<Role> <Day> <Month> <Year> <Time> <Level> <Content>"
_SECRET_KEYS = frozenset({"sentinel-pass", "auth-pass"})


class SentinelPlugin:
    """Redis Sentinel: monitored primaries, replicas, fellow sentinels, quorum, failovers and TILT."""

    name: ClassVar[str] = "sentinel"
    config_model: ClassVar[type[SentinelConfig]] = SentinelConfig
    client_module: ClassVar[str] = "redis"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 26379
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(apps=("redis-sentinel", "sentinel"),
                                                       images=("redis-sentinel",))

    def __init__(self, config: SentinelConfig, client: SentinelClient) -> None:
        self.config = config
        self.client = client
        self._seen: dict[str, tuple[str, float]] = {}
        """Primary name → (address, since when) as the last rounds saw it."""
        self._switches: dict[str, tuple[str, str, float]] = {}
        """Primary name → (old address, new address, when) of the last move seen between rounds."""

    @classmethod
    def create(cls, config: SentinelConfig, runner: CommandRunner | None = None) -> SentinelPlugin:
        if runner is not None:
            raise ConfigError("the sentinel plugin talks to the sentinel directly: give the target its host and port "
                              "instead of ssh")
        return cls(config, DirectSentinelClient(config))

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": cls.default_port}

    async def primaries(self) -> list[Primary]:
        found = [parse_primary(flat) for flat in await self.client.call("SENTINEL", "MASTERS")]
        return [p for p in found if not self.config.masters or p.name in self.config.masters]

    def _track(self, primaries: list[Primary]) -> dict[str, Switch]:
        """Remember where each primary is; a move between rounds is a switch, reported for the failover window."""
        now = time.monotonic()
        for p in primaries:
            seen = self._seen.get(p.name)
            if seen is not None and seen[0] != p.address:
                self._switches[p.name] = (seen[0], p.address, now)
            if seen is None or seen[0] != p.address:
                self._seen[p.name] = (p.address, now)
        return {name: Switch(old, new, now - at) for name, (old, new, at) in self._switches.items()
                if now - at < self.config.failover_window_s}

    async def _ckquorum(self, name: str) -> str | None:
        try:
            await self.client.call("SENTINEL", "CKQUORUM", name)
        except CommandFailedError as exc:
            return exc.stderr.strip() or "CKQUORUM failed"
        return None

    async def observe(self) -> Observation:
        primaries = await self.primaries()
        replicas = {p.name: parse_replicas(await self.client.call("SENTINEL", "REPLICAS", p.name)) for p in primaries}
        others = {p.name: parse_sentinels(await self.client.call("SENTINEL", "SENTINELS", p.name))
                  for p in primaries}
        quorum = {p.name: await self._ckquorum(p.name) for p in primaries}
        info = parse_info(await self.client.call("INFO", "sentinel"))
        return Observation(primaries=primaries, replicas=replicas, sentinels=others, quorum=quorum, info=info,
                           switches=self._track(primaries))

    async def collect(self) -> list[Sample]:
        return samples(await self.observe(), utcnow())

    async def snapshot_config(self) -> dict[str, str]:
        """Per primary its address and monitoring settings (``mymaster.quorum``), and the sentinel's own
        settings (SENTINEL CONFIG GET *, passwords redacted)."""
        snapshot = {}
        for p in await self.primaries():
            snapshot |= {f"{p.name}.address": p.address, f"{p.name}.quorum": str(p.quorum),
                         f"{p.name}.down-after-milliseconds": str(p.down_after_ms),
                         f"{p.name}.failover-timeout": str(p.failover_timeout_ms),
                         f"{p.name}.parallel-syncs": str(p.parallel_syncs)}
        own = pairs(await self.client.call("SENTINEL", "CONFIG", "GET", "*"))
        return snapshot | {k: ("<redacted>" if k in _SECRET_KEYS and v else v) for k, v in own.items()}

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=self.config.log_path or DEFAULT_LOG, format=LOG_FORMAT)]

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe(), self.config)

    async def peers(self) -> list[Peer]:
        return sentinel_peers(await self.observe())

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await sentinel_actions.execute(self.client, ACTIONS, action_id, params, dry_run=dry_run)

    async def close(self) -> None:
        await self.client.close()
