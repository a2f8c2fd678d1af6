"""The PgBouncer plugin: metrics from the admin console (SHOW POOLS, STATS, LISTS, DATABASES), the SHOW CONFIG
snapshot, health rules (clients waiting, pools exhausted, backends down, databases paused, client limit near), the
pooled PostgreSQL servers as peers, and admin-console actions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.errors import ConfigError
from kubestack.plugins.base import ActionOutcome, ActionSpec, Capacity, CommandRunner, KubeDiscovery, LogSource
from kubestack.plugins.pgbouncer import actions as pgbouncer_actions
from kubestack.plugins.pgbouncer.capacity import CAPACITIES
from kubestack.plugins.pgbouncer.checks import Observation, evaluate
from kubestack.plugins.pgbouncer.client import DirectPgBouncerClient, PgBouncerClient
from kubestack.plugins.pgbouncer.config import PgBouncerConfig
from kubestack.plugins.pgbouncer.declaration import ACTIONS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.pgbouncer.metrics import samples
from kubestack.plugins.pgbouncer.parse import (
    Database,
    parse_config,
    parse_databases,
    parse_lists,
    parse_pools,
    parse_stats,
)
from kubestack.plugins.pgbouncer.peers import pgbouncer_peers
from kubestack.plugins.pgbouncer.risks import config_risks

DEFAULT_LOG = "/var/log/postgresql/pgbouncer.log"
LOG_FORMAT = "<Date> <Time> <Zone> [<Pid>] <Level> <Content>"
PROBE_TIMEOUT_S = 2.0


async def probe(host: str, port: int, timeout: float) -> str | None:
    """Why a TCP connection to ``host:port`` fails, or None when it opens."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return f"no answer in {timeout:g}s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    writer.close()
    return None


async def unreachable_backends(databases: Sequence[Database], timeout: float) -> dict[str, str]:
    """Backend ``host:port`` → reason, for the TCP listeners (not Unix sockets) that refuse a connection."""
    targets = {d.backend: (d.host, d.port) for d in databases if d.backend and d.host and not d.host.startswith("/")}
    reasons = await asyncio.gather(*(probe(host, port, timeout) for host, port in targets.values()))
    return {backend: reason for backend, reason in zip(targets, reasons, strict=True) if reason}


class PgBouncerPlugin:
    """PgBouncer: pools, waiting clients, stats and limits from the admin console; pooled PostgreSQL servers."""

    name: ClassVar[str] = "pgbouncer"
    config_model: ClassVar[type[PgBouncerConfig]] = PgBouncerConfig
    client_module: ClassVar[str] = "psycopg"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 6432
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(apps=("pgbouncer",), images=("pgbouncer",))

    def __init__(self, config: PgBouncerConfig, client: PgBouncerClient) -> None:
        self.config = config
        self.client = client

    @classmethod
    def create(cls, config: PgBouncerConfig, runner: CommandRunner | None = None) -> PgBouncerPlugin:
        if runner is not None:
            raise ConfigError("the pgbouncer plugin talks to the admin console directly: give the target its host "
                              "and port instead of ssh")
        return cls(config, DirectPgBouncerClient(config))

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": cls.default_port, "user": "kubestack"}

    async def observe(self, *, probe_backends: bool | None = None) -> Observation:
        """Everything the rules and metrics look at, read in one round."""
        databases = parse_databases(await self.client.show("DATABASES"))
        probing = self.config.probe_backends if probe_backends is None else probe_backends
        return Observation(pools=parse_pools(await self.client.show("POOLS")), databases=databases,
                           stats=parse_stats(await self.client.show("STATS")),
                           lists=parse_lists(await self.client.show("LISTS")),
                           config=parse_config(await self.client.show("CONFIG")),
                           unreachable=await unreachable_backends(databases, min(PROBE_TIMEOUT_S,
                                                                                 self.config.timeout_s))
                           if probing else {})

    async def collect(self) -> list[Sample]:
        return samples(await self.observe(), utcnow())

    async def snapshot_config(self) -> dict[str, str]:
        """SHOW CONFIG holds no secret (the auth file's path, not its content)."""
        return parse_config(await self.client.show("CONFIG"))

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=self.config.log_path or DEFAULT_LOG, format=LOG_FORMAT)]

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe(), self.config)

    async def peers(self) -> list[Peer]:
        """The pooled PostgreSQL servers (SHOW DATABASES) and the clients by address (SHOW CLIENTS)."""
        return pgbouncer_peers(parse_databases(await self.client.show("DATABASES")),
                               await self.client.show("CLIENTS"))

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await pgbouncer_actions.execute(self.client, ACTIONS, action_id, params, dry_run=dry_run)

    async def close(self) -> None:
        await self.client.close()
