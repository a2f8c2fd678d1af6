"""The MySQL/MariaDB plugin's configuration: where the server is, how to log in, the thresholds of its rules."""

from __future__ import annotations

from pydantic import Field

from kubestack.plugins.base import PluginConfig, SecretRef


class MySQLConfig(PluginConfig):
    """The monitoring user needs ``PROCESS`` (processlist, InnoDB status and lock tables) and the right to read
    replica status: ``GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO kubestack`` on MariaDB 10.5+,
    ``GRANT PROCESS, REPLICATION CLIENT ON *.* TO kubestack`` on MySQL (plus ``SELECT ON performance_schema.*``
    on MySQL 8 for lock waits). The same grants cover ``SHOW BINARY LOGS``; on a replica the same user and password
    on its primary let the plugin read the primary's binary logs (``source_binlogs``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=3306, ge=1, le=65535)
    unix_socket: str | None = Field(default=None, description="Connect through this socket instead of host:port")
    user: str = "kubestack"
    password: SecretRef | None = None
    cli: str = Field(default="mysql", description="mysql or mariadb client binary, used through a runner")
    long_query_s: int = Field(default=60, ge=1, description="A statement running this long is reported")
    lock_wait_min_s: int = Field(default=5, ge=0, description="A row lock wait this long is reported")
    connections_high_ratio: float = Field(default=0.8, gt=0, le=1, description="Threads_connected / max_connections")
    connections_critical_ratio: float = Field(default=0.95, gt=0, le=1)
    buffer_pool_hit_min: float = Field(default=0.95, gt=0, le=1, description="Lowest healthy buffer pool hit ratio")
    buffer_pool_min_requests: int = Field(default=100_000, ge=0,
                                          description="Read requests needed before the hit ratio is judged")
    replica_lag_max_s: int = Field(default=300, ge=0, description="Seconds_Behind_Master that is lagging")
    source_binlogs: bool = Field(default=True, description=(
        "On a replica, also read its primary's binary logs and their expiry (SHOW BINARY LOGS, with this user and "
        "password at Master_Host:Master_Port) to foresee when the replica loses its stream"))
    binlog_dir: str | None = Field(default=None, description=(
        "This server's binary log directory as this agent sees it (a mounted volume), for the files' ages and the "
        "disk's free space; default: the directory of log_bin_basename when the server is on this host (a socket "
        "or a loopback address)"))
    max_rows: int = Field(default=20, ge=1, le=1000, description="Queries and lock waits kept as evidence")
    log_path: str | None = Field(default=None, description="Error log (glob allowed); default the Debian location")
    slow_log_path: str | None = Field(default=None, description="Slow query log, when enabled")

    @property
    def address(self) -> str:
        return self.unix_socket or f"{self.host}:{self.port}"
