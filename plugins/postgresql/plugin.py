"""The PostgreSQL plugin: statistics views as metrics, pg_settings as the configuration snapshot, health rules,
and the actions the remediation stage may take."""

from __future__ import annotations

from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Risk, Sample
from kubestack.plugins.base import ActionOutcome, ActionSpec, Capacity, CommandRunner, LogSource
from kubestack.plugins.postgresql import actions as postgresql_actions
from kubestack.plugins.postgresql.capacity import CAPACITIES
from kubestack.plugins.postgresql import queries
from kubestack.plugins.postgresql.checks import evaluate
from kubestack.plugins.postgresql.client import DirectPostgreSQLClient, PostgreSQLClient, PsqlClient
from kubestack.plugins.postgresql.config import PostgreSQLConfig
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

ACTIONS = (
    ActionSpec(id="postgresql.cancel_backend", title="Cancel the running statement of one session "
               "(pg_cancel_backend)", risk=Risk.LOW, params={"pid": "Backend pid, e.g. the blocked_pid of a lock wait"},
               preconditions=["the session is a client backend, not a replication or system process",
                              "it runs a statement (state active)", "it is not the plugin's own session",
                              "it is not a superuser's session (unless the plugin's role is one)",
                              "the application tolerates a cancelled statement"],
               rollback="none: the statement is rolled back by the server; the client may rerun it"),
    ActionSpec(id="postgresql.terminate_backend", title="Close one session (pg_terminate_backend)",
               risk=Risk.MEDIUM, params={"pid": "Backend pid, e.g. the blocking_pid of a lock wait"},
               preconditions=["the session is a client backend, not a replication or system process",
                              "it is not the plugin's own session",
                              "it is not a superuser's session (unless the plugin's role is one)",
                              "its open transaction may be rolled back", "its application reconnects"],
               rollback="none: the application reconnects"),
    ActionSpec(id="postgresql.terminate_idle_in_transaction",
               title="Close the sessions idle inside a transaction for too long", risk=Risk.MEDIUM,
               params={"min_idle_s": "Only sessions idle in transaction at least this long",
                       "db": "Limit to one database (optional)"},
               preconditions=["at least one client session of a non-superuser is idle in transaction that long",
                              "never the plugin's own session, a superuser's, replication or background processes",
                              "their open transactions are rolled back", "their applications reconnect"],
               rollback="none; to prevent it: ALTER SYSTEM SET idle_in_transaction_session_timeout"),
    ActionSpec(id="postgresql.terminate_idle_sessions", title="Close the client sessions idle for too long",
               risk=Risk.MEDIUM,
               params={"min_idle_s": "Only sessions idle (state 'idle') at least this long",
                       "user": "Limit to one role (optional)", "db": "Limit to one database (optional)"},
               preconditions=["at least one client session of a non-superuser is idle that long",
                              "never the plugin's own session, a superuser's, replication or background processes",
                              "their applications reconnect (a pool may log errors)"],
               rollback="none: the applications reconnect; to prevent it: ALTER SYSTEM SET idle_session_timeout"),
    ActionSpec(id="postgresql.alter_system_set", title="Change a server setting (ALTER SYSTEM SET; pg_reload_conf)",
               risk=Risk.HIGH, params={"name": "pg_settings name", "value": "New value"},
               preconditions=["the setting exists and its context is sighup, user or superuser (postmaster ones "
                              "need a restart)", "it is not fixed on the command line (which wins over ALTER SYSTEM)",
                              "the value fits the setting's type, choices and bounds",
                              "the host has the memory or disk the new value implies"],
               rollback="ALTER SYSTEM SET <name> = <previous value>, or ALTER SYSTEM RESET <name> when it had none; "
                        "SELECT pg_reload_conf()"),
    ActionSpec(id="postgresql.alter_system_reset", title="Drop a setting's ALTER SYSTEM value (ALTER SYSTEM RESET; "
               "pg_reload_conf)", risk=Risk.MEDIUM, params={"name": "pg_settings name"},
               preconditions=["the setting has a value in postgresql.auto.conf",
                              "its context is sighup, user or superuser"],
               rollback="ALTER SYSTEM SET <name> = <previous value>; SELECT pg_reload_conf()"),
    ActionSpec(id="postgresql.lock_role", title="Refuse new logins of one role (ALTER ROLE ... NOLOGIN)",
               risk=Risk.HIGH, params={"name": "Role name, e.g. the user of failed password attempts"},
               preconditions=["the role exists and can log in", "it is not a superuser",
                              "it is not the role the plugin is connected as",
                              "its applications may be refused new connections (open sessions stay)"],
               rollback="ALTER ROLE <name> LOGIN (postgresql.unlock_role)"),
    ActionSpec(id="postgresql.unlock_role", title="Allow logins of one role again (ALTER ROLE ... LOGIN)",
               risk=Risk.MEDIUM, params={"name": "Role name"},
               preconditions=["the role exists and cannot log in"],
               rollback="ALTER ROLE <name> NOLOGIN (postgresql.lock_role)"),
)


class PostgreSQLPlugin:
    """PostgreSQL: pg_stat_* metrics, locks, replication and slots, wraparound, pg_settings, health rules."""

    name: ClassVar[str] = "postgresql"
    config_model: ClassVar[type[PostgreSQLConfig]] = PostgreSQLConfig
    client_module: ClassVar[str] = "psycopg"
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 5432

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
