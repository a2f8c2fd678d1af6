"""The PostgreSQL plugin: statistics views as metrics, pg_settings as the configuration snapshot, health rules,
and the actions the remediation stage may take."""

from __future__ import annotations

from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.plugins.base import ActionOutcome, ActionSpec, Capacity, CommandRunner, KubeDiscovery, LogSource
from kubestack.plugins.postgresql import actions as postgresql_actions
from kubestack.plugins.postgresql.capacity import CAPACITIES
from kubestack.plugins.postgresql import queries
from kubestack.plugins.postgresql.checks import evaluate
from kubestack.plugins.postgresql.client import DirectPostgreSQLClient, PostgreSQLClient, PsqlClient
from kubestack.plugins.postgresql.config import PostgreSQLConfig
from kubestack.plugins.agreement import PeerAgreements
from kubestack.plugins.postgresql.declaration import ACTIONS, AGREEMENTS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.postgresql.metrics import background_samples, observation_samples
from kubestack.plugins.postgresql.peers import postgresql_peers
from kubestack.plugins.postgresql.parse import (
    Observation,
    parse_activity,
    parse_blocking,
    parse_databases,
    parse_key_values,
    parse_numbers,
    parse_replication,
    parse_server,
    parse_slots,
    redact_settings,
)
from kubestack.plugins.postgresql.risks import config_risks

DEFAULT_LOG = "/var/log/postgresql/postgresql-*-main.log"
LOG_FORMAT = "<Date> <Time> <Zone> [<Pid>] <Content>"
"""Debian's default log_line_prefix '%m [%p] %q%u@%d '."""



class PostgreSQLPlugin:
    """PostgreSQL: pg_stat_* metrics, locks, replication and slots, wraparound, pg_settings, health rules."""

    name: ClassVar[str] = "postgresql"
    config_model: ClassVar[type[PostgreSQLConfig]] = PostgreSQLConfig
    client_module: ClassVar[str] = "asyncio"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    agreements: ClassVar[PeerAgreements] = AGREEMENTS
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 5432
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(
        apps=("postgresql", "postgres", "postgresql-ha"), images=("postgres", "postgresql", "postgis", "timescaledb"))

    def __init__(self, config: PostgreSQLConfig, client: PostgreSQLClient) -> None:
        self.config = config
        self.client = client

    @classmethod
    def create(cls, config: PostgreSQLConfig, runner: CommandRunner | None = None) -> PostgreSQLPlugin:
        client = DirectPostgreSQLClient(config) if runner is None else PsqlClient(config, runner)
        return cls(config, client)

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": cls.default_port, "dbname": "postgres", "user": "kubestack",
                "password": {"env": "KUBESTACK_POSTGRESQL_PASSWORD"}}

    async def observe(self) -> Observation:
        """Everything the metrics and the health rules look at, read in one round."""
        server = parse_server(await self.client.rows(queries.SERVER))
        blocking_query = queries.blocking_sql(server.version_num)
        return Observation(
            server=server,
            databases=parse_databases(await self.client.rows(queries.DATABASES)),
            sessions=parse_activity(await self.client.rows(queries.ACTIVITY)),
            lock_waits=parse_blocking(await self.client.rows(blocking_query)),
            replicas=parse_replication(await self.client.rows(queries.REPLICATION)),
            slots=parse_slots(await self.client.rows(queries.SLOTS)),
            blocking_query=blocking_query)

    async def collect(self) -> list[Sample]:
        obs = await self.observe()
        background = parse_numbers(parse_key_values(
            await self.client.rows(queries.background_writer_sql(obs.server.version_num))))
        ts = utcnow()
        return observation_samples(obs, ts) + background_samples(background, ts)

    async def snapshot_config(self) -> dict[str, str]:
        return redact_settings(parse_key_values(await self.client.rows(queries.SETTINGS)))

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=self.config.log_path or DEFAULT_LOG, format=LOG_FORMAT)]

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe(), self.config)

    async def peers(self) -> list[Peer]:
        """Client addresses (pg_stat_activity, this session left out), standbys (pg_stat_replication) and the
        primary a standby streams from (pg_stat_wal_receiver)."""
        return postgresql_peers(await self.client.rows(queries.CONNECTIONS),
                                parse_replication(await self.client.rows(queries.REPLICATION)),
                                await self.client.rows(queries.WAL_RECEIVER))

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await postgresql_actions.execute(self.client, ACTIONS, action_id, params, dry_run=dry_run)

    async def close(self) -> None:
        await self.client.close()
