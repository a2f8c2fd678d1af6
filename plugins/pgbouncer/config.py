"""The PgBouncer plugin's configuration: where the admin console is, how to log in, the thresholds of its rules."""

from __future__ import annotations

from pydantic import Field

from kubestack.plugins.base import PluginConfig, SecretRef


class PgBouncerConfig(PluginConfig):
    """The user must be in ``stats_users`` to collect (SHOW only) and in ``admin_users`` for the actions (SET,
    PAUSE, RESUME, KILL, RELOAD); it logs in to the virtual ``pgbouncer`` database."""

    host: str = Field(default="127.0.0.1", description="Host name or address of PgBouncer's listener")
    port: int = Field(default=6432, ge=1, le=65535)
    user: str = Field(default="kubestack", description="A stats_users (collect) or admin_users (act) member")
    password: SecretRef | None = None
    wait_max_s: float = Field(default=1.0, ge=0, description="A client waiting this long for a server is reported")
    avg_wait_max_ms: float = Field(default=100.0, ge=0,
                                   description="Average wait for a server per transaction (SHOW STATS) that is high")
    clients_high_ratio: float = Field(default=0.8, gt=0, le=1,
                                      description="Client connections / max_client_conn that is high")
    probe_backends: bool = Field(default=True, description="Open a TCP connection to each pooled database's "
                                                           "host:port to tell a backend that is down")
    log_path: str | None = Field(default=None, description="Log file (glob allowed); default the Debian location")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
