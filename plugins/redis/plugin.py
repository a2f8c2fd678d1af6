"""The Redis plugin: metrics from INFO and SLOWLOG, the CONFIG GET * snapshot (secrets redacted), health rules,
and the actions the remediation stage may take."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.plugins.base import ActionOutcome, ActionSpec, Capacity, CommandRunner, KubeDiscovery, LogSource
from kubestack.plugins.redis import actions as redis_actions
from kubestack.plugins.redis.capacity import CAPACITIES
from kubestack.plugins.redis.checks import Observation, evaluate
from kubestack.plugins.redis.client import CliRedisClient, DirectRedisClient, RedisClient
from kubestack.plugins.redis.config import RedisConfig
from kubestack.plugins.agreement import PeerAgreements
from kubestack.plugins.redis.declaration import ACTIONS, AGREEMENTS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.redis.metrics import info_samples, slowlog_samples
from kubestack.plugins.redis.parse import info_number, parse_client_list, parse_info
from kubestack.plugins.redis.peers import redis_peers
from kubestack.plugins.redis.risks import config_risks

REDACTED = "<redacted>"
SECRET_KEYS = frozenset({"requirepass", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass"})
DEFAULT_LOG = "/var/log/redis/redis-server*.log"
LOG_FORMAT = "<Pid>:<Role> <Day> <Month> <Year> <Time> <Level> <Content>"



def redact(config: dict[str, str]) -> dict[str, str]:
    """Secret values replaced by ``<redacted>`` (an unset one stays empty, which says "no password")."""
    return {k: (REDACTED if k in SECRET_KEYS and v else v) for k, v in config.items()}


class RedisPlugin:
    name: ClassVar[str] = "redis"
    config_model: ClassVar[type[RedisConfig]] = RedisConfig
    client_module: ClassVar[str] = "asyncio"  # it speaks RESP2 itself (resp.py): no client library
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    agreements: ClassVar[PeerAgreements] = AGREEMENTS
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 6379
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(
        apps=("redis", "valkey"), images=("redis", "redis-stack-server", "valkey"))

    def __init__(self, config: RedisConfig, client: RedisClient) -> None:
        self.config = config
        self.client = client

    @classmethod
    def create(cls, config: RedisConfig, runner: CommandRunner | None = None) -> RedisPlugin:
        client = DirectRedisClient(config) if runner is None else CliRedisClient(config, runner)
        return cls(config, client)

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": cls.default_port}

    async def collect(self) -> list[Sample]:
        info, slowlog_len = parse_info(await self.client.info()), await self.client.slowlog_len()
        ts = utcnow()
        return info_samples(info, ts) + slowlog_samples(slowlog_len, ts)

    async def snapshot_config(self) -> dict[str, str]:
        return redact(await self.client.config_get("*"))

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=self.config.log_path or DEFAULT_LOG, format=LOG_FORMAT)]

    async def observe(self) -> Observation:
        """Everything the health rules look at, read in one round."""
        info = parse_info(await self.client.info())
        config = await self.client.config_get("*")
        slowlog = await self.client.slowlog_get(self.config.slowlog_entries)
        clients = parse_client_list(await self.client.client_list())
        server_time = info_number(info, "server", "server_time_usec")  # slowlog times are the server's clock
        now = server_time / 1e6 if server_time else time.time()
        return Observation(info=info, config=config, slowlog=slowlog, clients=clients, now=now)

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe(), self.config)

    async def peers(self) -> list[Peer]:
        """Clients by host (CLIENT LIST, the collector's own connection left out) and replication partners."""
        info = parse_info(await self.client.info())
        return redis_peers(info, parse_client_list(await self.client.client_list()))

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await redis_actions.execute(self.client, ACTIONS, action_id, params, dry_run=dry_run)

    async def close(self) -> None:
        await self.client.close()
