"""The RabbitMQ plugin: metrics, the configuration snapshot, health rules, peers and actions, all through the
management HTTP API (the ``rabbitmq_management`` plugin, port 15672)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.errors import TargetAuthError
from kubestack.plugins.base import ActionOutcome, ActionSpec, Capacity, CommandRunner, KubeDiscovery, LogSource
from kubestack.plugins.rabbitmq import actions as rabbitmq_actions
from kubestack.plugins.rabbitmq.capacity import CAPACITIES
from kubestack.plugins.rabbitmq.checks import Observation, evaluate
from kubestack.plugins.rabbitmq.client import CurlRabbitMQClient, DirectRabbitMQClient, RabbitMQClient
from kubestack.plugins.rabbitmq.config import RabbitMQConfig
from kubestack.plugins.rabbitmq.declaration import ACTIONS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.rabbitmq.metrics import node_samples, overview_samples, queue_samples
from kubestack.plugins.rabbitmq.parse import (
    counter,
    items,
    parse_channels,
    parse_connections,
    parse_nodes,
    parse_queues,
)
from kubestack.plugins.rabbitmq.peers import rabbitmq_peers
from kubestack.plugins.rabbitmq.risks import config_risks
from kubestack.plugins.rabbitmq.snapshot import flatten

DEFAULT_LOG = "/var/log/rabbitmq/rabbit@*.log"
LOG_FORMAT = "<Date> <Time> [<Level>] <Pid> <Content>"
CHANNELS_READ = 50
"""Channels read per round, those holding the most unacknowledged deliveries first."""
CONNECTIONS_READ = 500
"""Connections read per round (the API pages at most 500)."""
_ADMIN_SECTIONS = ("users", "permissions")
"""Snapshot sections only an administrator may read; left out for a monitoring user."""


def _page(size: int, sort: str | None = None) -> dict[str, Any]:
    return {"page": 1, "page_size": size} | ({"sort": sort, "sort_reverse": "true"} if sort else {})


class RabbitMQPlugin:
    """RabbitMQ: queues (backlog, consumers, unacknowledged), memory and disk alarms, blocked publishers, connection
    churn, policies and users, through the management API."""

    name: ClassVar[str] = "rabbitmq"
    config_model: ClassVar[type[RabbitMQConfig]] = RabbitMQConfig
    client_module: ClassVar[str] = "httpx"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 15672
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(
        port=15672, apps=("rabbitmq", "rabbitmq-server"), images=("rabbitmq",))

    def __init__(self, config: RabbitMQConfig, client: RabbitMQClient) -> None:
        self.config = config
        self.client = client
        self._opened: tuple[float, float] | None = None
        """(connections opened so far, monotonic time) at the previous observation: the churn baseline."""

    @classmethod
    def create(cls, config: RabbitMQConfig, runner: CommandRunner | None = None) -> RabbitMQPlugin:
        client = DirectRabbitMQClient(config) if runner is None else CurlRabbitMQClient(config, runner)
        return cls(config, client)

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": cls.default_port, "user": "guest", "password": {"value": "guest"}}

    async def _read(self, *, churn: bool) -> tuple[dict[str, Any], Observation]:
        """One round of reads; ``churn``: measure connection churn since the previous such round (the health
        rounds only, so that a metrics round just before does not shorten the window)."""
        overview = await self.client.get("/overview")
        nodes = parse_nodes(await self.client.get("/nodes"))
        queues = parse_queues(await self.client.get("/queues", _page(self.config.max_queues, "messages")))
        connections = parse_connections(await self.client.get("/connections", _page(CONNECTIONS_READ)))
        channels = parse_channels(await self.client.get("/channels",
                                                        _page(CHANNELS_READ, "messages_unacknowledged")))
        opened = counter(overview.get("churn_rates"), "connection_created")
        rate, window = self._churn(opened) if churn else (None, 0.0)
        return overview, Observation(node=str(overview.get("node", "")), nodes=nodes, queues=queues,
                                     connections=connections, channels=channels, churn_per_s=rate,
                                     churn_window_s=window)

    def _churn(self, opened: float | None) -> tuple[float | None, float]:
        """Connections opened per second since the previous round (None on the first, or after a node restart)."""
        if opened is None:
            return None, 0.0
        now, previous = time.monotonic(), self._opened
        self._opened = (opened, now)
        if previous is None or opened < previous[0] or now <= previous[1]:
            return None, 0.0
        return (opened - previous[0]) / (now - previous[1]), now - previous[1]

    async def observe(self) -> Observation:
        """Everything the health rules look at, read in one round."""
        return (await self._read(churn=True))[1]

    async def collect(self) -> list[Sample]:
        overview, obs = await self._read(churn=False)
        ts = utcnow()
        samples = overview_samples(overview, obs.queues, ts)
        if obs.local is not None:
            samples += node_samples(obs.local, obs.nodes, obs.connections, ts)
        return samples + queue_samples(obs.queues, self.config.queue_series, ts)

    async def snapshot_config(self) -> dict[str, str]:
        overview = await self.client.get("/overview")
        local = str(overview.get("node", ""))
        node = next((n for n in items(await self.client.get("/nodes")) if n.get("name") == local), {})
        sections: dict[str, Any] = {}
        for section in ("policies", "operator-policies", "vhost-limits", *_ADMIN_SECTIONS):
            try:
                sections[section] = await self.client.get(f"/{section}")
            except TargetAuthError:
                if section not in _ADMIN_SECTIONS:
                    raise
        return flatten(overview, node, sections)

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=self.config.log_path or DEFAULT_LOG, format=LOG_FORMAT)]

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe(), self.config)

    async def peers(self) -> list[Peer]:
        overview = await self.client.get("/overview")
        nodes = parse_nodes(await self.client.get("/nodes"))
        connections = parse_connections(await self.client.get("/connections", _page(CONNECTIONS_READ)))
        return rabbitmq_peers(nodes, str(overview.get("node", "")), connections)

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await rabbitmq_actions.execute(self.client, ACTIONS, action_id, params, dry_run=dry_run)

    async def close(self) -> None:
        await self.client.close()

