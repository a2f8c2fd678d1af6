"""The MySQL/MariaDB plugin: metrics from GLOBAL STATUS/VARIABLES, replication and InnoDB status, the GLOBAL
VARIABLES snapshot, health rules, and the actions the remediation stage may take."""

from __future__ import annotations

from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.plugins.base import ActionOutcome, ActionSpec, Capacity, CommandRunner, KubeDiscovery, LogSource
from kubestack.plugins.mysql import actions as mysql_actions
from kubestack.plugins.mysql.binlogs import own_samples, stream_samples
from kubestack.plugins.mysql.capacity import CAPACITIES
from kubestack.plugins.mysql import queries
from kubestack.plugins.mysql.checks import Observation, evaluate
from kubestack.plugins.mysql.client import CliMySQLClient, DirectMySQLClient, MySQLClient
from kubestack.plugins.mysql.config import MySQLConfig
from kubestack.plugins.agreement import PeerAgreements
from kubestack.plugins.mysql.declaration import ACTIONS, AGREEMENTS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.mysql.metrics import innodb_samples, replica_samples, status_samples
from kubestack.plugins.mysql.parse import parse_innodb_status, parse_replica_status
from kubestack.plugins.mysql.peers import mysql_peers
from kubestack.plugins.mysql.risks import config_risks
from kubestack.plugins.mysql.sources import BinlogReader, OpenClient

DEFAULT_LOG = "/var/log/mysql/error.log"
LOG_FORMAT = "<Date> <Time> <Thread> [<Level>] <Content>"

# Positions that move with every write: they would turn each snapshot into a "configuration change".
VOLATILE_VARIABLES = frozenset({"gtid_binlog_pos", "gtid_binlog_state", "gtid_current_pos", "gtid_slave_pos",
                                "gtid_executed", "gtid_purged", "timestamp"})


class MySQLPlugin:
    name: ClassVar[str] = "mysql"
    config_model: ClassVar[type[MySQLConfig]] = MySQLConfig
    client_module: ClassVar[str] = "pymysql"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    agreements: ClassVar[PeerAgreements] = AGREEMENTS
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 3306
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(
        apps=("mysql", "mariadb", "mariadb-galera", "percona"),
        images=("mysql", "mysql-server", "mariadb", "percona-server"))

    def __init__(self, config: MySQLConfig, client: MySQLClient, open_client: OpenClient | None = None, *,
                 files_here: bool = True) -> None:
        """``open_client``: how to reach another server (a replica's primary) with the same credentials;
        default a direct connection."""
        self.config = config
        self.client = client
        self.open_client = open_client or (lambda host, port: DirectMySQLClient(_elsewhere(config, host, port)))
        self.binlogs = BinlogReader(client, self.open_client, host=None if config.unix_socket else config.host,
                                    binlog_dir=config.binlog_dir, read_sources=config.source_binlogs,
                                    files_here=files_here)

    @classmethod
    def create(cls, config: MySQLConfig, runner: CommandRunner | None = None) -> MySQLPlugin:
        if runner is None:
            return cls(config, DirectMySQLClient(config))
        return cls(config, CliMySQLClient(config, runner),
                   lambda host, port: CliMySQLClient(_elsewhere(config, host, port), runner), files_here=False)

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": cls.default_port, "user": "kubestack",
                "password": {"env": "KUBESTACK_MYSQL_PASSWORD"}}

    async def collect(self) -> list[Sample]:
        status = await self.client.global_status()
        variables = await self.client.global_variables()
        replicas = parse_replica_status(await self.client.replica_status())
        innodb = parse_innodb_status(await self.client.innodb_status())
        own = await self.binlogs.own(variables)
        sources = [(r, await self.binlogs.of_source(r)) for r in replicas]
        ts = utcnow()
        samples = status_samples(status, variables, ts) + replica_samples(replicas, ts) + innodb_samples(innodb, ts)
        if own is not None:
            samples += own_samples(own.logs, own.written, own.expire_s, own.disk_free, ts)
        for replica, view in sources:
            if view is not None and view.logs:
                samples += stream_samples(replica, view.logs, view.written, view.expire_s, ts)
        return samples

    async def snapshot_config(self) -> dict[str, str]:
        variables = await self.client.global_variables()
        return {k: v for k, v in variables.items() if k not in VOLATILE_VARIABLES}

    def log_sources(self) -> list[LogSource]:
        sources = [LogSource(path=self.config.log_path or DEFAULT_LOG, format=LOG_FORMAT)]
        if self.config.slow_log_path:
            sources.append(LogSource(path=self.config.slow_log_path))
        return sources

    async def observe(self) -> Observation:
        """Everything the health rules look at, read in one round."""
        c, server = self.config, await self.client.server()
        replicas = parse_replica_status(await self.client.replica_status())
        sources = {r.source: await self.binlogs.of_source(r) for r in replicas}
        return Observation(
            status=await self.client.global_status(),
            variables=await self.client.global_variables(),
            replicas=replicas,
            source_binlogs={source: view.logs for source, view in sources.items() if view is not None and view.logs},
            long_queries=await self.client.long_queries(c.long_query_s, c.max_rows),
            lock_waits=await self.client.lock_waits(c.max_rows),
            replica_query=queries.replica_status_sql(server),
            long_queries_query=queries.long_queries_sql(min_seconds=c.long_query_s, limit=c.max_rows),
            lock_waits_query=queries.lock_waits_sql(server, limit=c.max_rows))

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe(), self.config)

    async def peers(self) -> list[Peer]:
        """Client hosts (processlist), replicas (SHOW SLAVE HOSTS if allowed, else their dump threads) and the
        primary of each replication channel."""
        return mysql_peers(await self.client.connections(), await self.client.replica_hosts(),
                           parse_replica_status(await self.client.replica_status()))

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await mysql_actions.execute(self.client, ACTIONS, action_id, params, dry_run=dry_run,
                                           open_client=self.open_client)

    async def close(self) -> None:
        await self.binlogs.close()
        await self.client.close()


def _elsewhere(config: MySQLConfig, host: str, port: int) -> MySQLConfig:
    """The same credentials and limits for another server (a replica's primary)."""
    return config.model_copy(update={"host": host, "port": port, "unix_socket": None})
