"""The settings every process reads, below ``kubestack.settings`` so that a lean process (the agent) can read them
without pydantic-settings: where state lives, the log level, and how to reach Kafka. ``kubestack.settings`` builds
its ``Settings`` from these; ``kubestack.agents.settings`` reads the same sources for the agent."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from kubestack.errors import ConfigError

BOOTSTRAP_SHORTCUT_ENV = "KUBESTACK_KAFKA_BOOTSTRAP"
CONFIG_FILE_ENV = "KUBESTACK_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


KafkaComponent = Literal["agent", "worker", "api"]


class KafkaCredentials(_Section):
    """One SASL identity (a Kafka principal ``User:<username>``)."""

    username: str = Field(min_length=1)
    password: SecretStr


class KafkaSettings(_Section):
    """How to reach the Kafka cluster the product uses (local or remote).

    ``sasl_username``/``sasl_password`` are the shared identity; ``components`` may give the agent, the worker and
    the API identities of their own, so that the cluster's ACLs can allow each only what it writes. Each of those
    processes selects its own with ``for_component``; every other client (the CLI, ``ask``, ``knowledge follow``)
    uses the shared one.
    """

    bootstrap: str = Field(default="127.0.0.1:9092", description="host:port[,host:port...]")
    topic_prefix: str = Field(default="", description="Prepended to every topic name, e.g. 'staging.'")
    client_id: str = "kubestack"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    components: dict[KafkaComponent, KafkaCredentials] = Field(default_factory=dict, description=(
        "SASL identities of the agent, the worker and the API; a component without one uses the shared identity"))
    component: KafkaComponent | None = Field(default=None, description=(
        "Which component this process is (set by its entry point through for_component, not by configuration)"))
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    request_timeout_s: float = Field(default=30.0, gt=0)
    replication_factor: int = Field(default=1, ge=1, description=(
        "Replicas of the topics the product creates (the contract's, the worker's changelogs and signals)"))
    min_insync_replicas: int | None = Field(default=None, ge=1, description=(
        "min.insync.replicas of the topics the product creates; default: the broker's"))

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL"):
            shared = self.sasl_username and self.sasl_password
            if not (self.sasl_mechanism and (shared or self.components)):
                raise ValueError(f"{self.security_protocol} needs sasl_mechanism, sasl_username and sasl_password "
                                 f"(or components with credentials of their own)")
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            raise ValueError(f"min_insync_replicas {self.min_insync_replicas} is over replication_factor "
                             f"{self.replication_factor}: no write could ever succeed")
        return self

    @property
    def bootstrap_servers(self) -> list[str]:
        return [part.strip() for part in self.bootstrap.split(",") if part.strip()]

    def for_component(self, component: KafkaComponent) -> KafkaSettings:
        """These settings as ``component`` uses them: its own identity if it has one, and a client id naming it."""
        return self.model_copy(update={"component": component})

    @property
    def credentials(self) -> KafkaCredentials | None:
        """The SASL identity this process authenticates with; None without SASL."""
        if not self.security_protocol.startswith("SASL"):
            return None
        own = self.components.get(self.component) if self.component else None
        if own is not None:
            return own
        if not (self.sasl_username and self.sasl_password):
            raise ConfigError(f"kafka.components has no credentials for {self.component or 'this client'} and "
                             f"kafka.sasl_username / sasl_password are not set")
        return KafkaCredentials(username=self.sasl_username, password=self.sasl_password)

    @property
    def effective_client_id(self) -> str:
        return f"{self.client_id}-{self.component}" if self.component else self.client_id


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
ENV_PREFIX = "KUBESTACK_"
ENV_NESTED_DELIMITER = "__"


def default_home() -> Path:
    """State: broker jars and data, spools, indexes."""
    return Path.home() / ".local" / "share" / "kubestack"
