"""PostgreSQL: pg_stat_* metrics, lock waits, replication and slots, wraparound, pg_settings, health rules and
safe actions."""

from kubestack.plugins.postgresql.config import PostgreSQLConfig
from kubestack.plugins.postgresql.plugin import PostgreSQLPlugin

__all__ = ["PostgreSQLConfig", "PostgreSQLPlugin"]
