"""The Kafka plugin's configuration: how to reach the cluster (the same fields as the product's own Kafka
settings, with the password as a ``SecretRef``), which groups to watch, and the thresholds of its rules."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from kubestack.plugins.base import PluginConfig, SecretRef
from kubestack.commonsettings import KafkaSettings


class KafkaPluginConfig(PluginConfig):
    bootstrap: str = Field(default="127.0.0.1:9092", description="host:port[,host:port...]")
    client_id: str = "kubestack-plugin"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretRef | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    groups: list[str] | None = Field(default=None, description="Consumer groups to watch; none means every group")
    include_internal_topics: bool = Field(default=False, description="Also report __consumer_offsets and the like")
    lag_high: int = Field(default=10_000, ge=0, description="Total lag of a group (messages) that is high")
    lag_critical: int | None = Field(default=None, ge=0, description="Total lag that is critical; none: never")
    lag_growing_rounds: int = Field(default=3, ge=2, description="Health rounds of strictly growing lag to report")
    lag_growing_min: int = Field(default=100, ge=0, description="Growth over those rounds below this is ignored")
    inactive_lag_min: int = Field(default=1, ge=1, description="Lag of a group without members that is reported")
    max_rows: int = Field(default=20, ge=1, le=1000, description="Partitions kept as evidence per finding")
    retention_forecast: bool = Field(default=True, description=(
        "Collect what data-loss forecasts need: log start offsets, partition sizes (DescribeLogDirs), topic "
        "retention and the timestamp of each lagging partition's oldest unconsumed record"))
    max_peeked_partitions: int = Field(default=200, ge=1, le=10_000, description=(
        "Lagging partitions whose oldest unconsumed record is read per round (the most lagging first)"))
    log_path: str | None = Field(default=None, description="Broker server.log (glob allowed), if on this host")

    def settings(self) -> KafkaSettings:
        """The product's ``KafkaSettings`` for this cluster, so ``kubestack.bus.client_options`` applies."""
        password = self.sasl_password.resolve() if self.sasl_password else None
        return KafkaSettings(bootstrap=self.bootstrap, client_id=self.client_id,
                             security_protocol=self.security_protocol, sasl_mechanism=self.sasl_mechanism,
                             sasl_username=self.sasl_username,
                             sasl_password=SecretStr(password) if password is not None else None,
                             ssl_cafile=self.ssl_cafile, ssl_certfile=self.ssl_certfile, ssl_keyfile=self.ssl_keyfile,
                             ssl_check_hostname=self.ssl_check_hostname, request_timeout_s=self.timeout_s)
