"""The PostgreSQL plugin's configuration: where the server is, how to log in, the thresholds of its rules."""

from __future__ import annotations

from pydantic import Field

from kubestack.plugins.base import PluginConfig, SecretRef


class PostgreSQLConfig(PluginConfig):
    host: str = Field(default="127.0.0.1", description="Host name, address, or a Unix socket directory")
    port: int = Field(default=5432, ge=1, le=65535)
    dbname: str = Field(default="postgres", description="Database to log in to (statistics cover every database)")
    user: str = "kubestack"
    password: SecretRef | None = None
    sslmode: str = Field(default="prefer", pattern=r"^(disable|allow|prefer|require|verify-ca|verify-full)$")
    sslrootcert: str | None = Field(default=None, description="CA certificates (PEM) that verify-ca and verify-full "
                                                            "check the server against (default ~/.postgresql/root.crt)")
    psql: str = Field(default="psql", description="psql binary, used when collecting through a runner")
    connections_high_ratio: float = Field(default=0.8, gt=0, le=1,
                                          description="Client connections / (max_connections - reserved)")
    connections_critical_ratio: float = Field(default=0.95, gt=0, le=1)
    long_transaction_s: float = Field(default=300.0, ge=0, description="A transaction open this long is reported")
    idle_in_transaction_s: float = Field(default=60.0, ge=0,
                                         description="A session idle inside a transaction this long is reported")
    lock_wait_s: float = Field(default=5.0, ge=0, description="A lock wait this long is reported")
    cache_hit_min_ratio: float = Field(default=0.9, gt=0, le=1, description="Lowest healthy buffer cache hit ratio")
    cache_min_blocks: int = Field(default=100_000, ge=0,
                                  description="Blocks read + hit before a database's hit ratio is judged")
    xid_age_warning_ratio: float = Field(default=0.5, gt=0, le=1,
                                         description="age(datfrozenxid) / 2^31 that is a warning")
    xid_age_critical_ratio: float = Field(default=0.75, gt=0, le=1)
    freeze_overdue_factor: float = Field(default=2.0, gt=0,
                                         description="age(datfrozenxid) / autovacuum_freeze_max_age that means "
                                                     "anti-wraparound vacuum does not keep up")
    slot_retained_max_bytes: int = Field(default=1024**3, ge=0,
                                         description="WAL an inactive replication slot may hold back")
    replica_lag_max_bytes: int = Field(default=256 * 1024**2, ge=0)
    replica_lag_max_s: float = Field(default=60.0, ge=0)
    max_rows: int = Field(default=20, ge=1, le=1000, description="Sessions kept as evidence per finding")
    log_path: str | None = Field(default=None, description="Server log (glob allowed); default the Debian location")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"
