"""The settings every process reads, below ``kubestack.settings`` so that a lean process (the agent) can read them
without pydantic-settings: where state lives, the log level, and how to reach Kafka. ``kubestack.settings`` builds
its ``Settings`` from these; ``kubestack.agents.settings`` reads the same sources for the agent."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from kubestack.errors import ConfigError

if TYPE_CHECKING:
    from kubestack.contract.topics import TopicSpec

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
    min_partitions: int = Field(default=1, ge=1, description=(
        "Every partitioned topic the product creates (the contract's keyed topics, the worker's signals) gets at "
        "least this many partitions: workers share partitions, so a group of N workers wants N. The topics whose "
        "order is their meaning (audit-entries, audit, silences, dead-letter) keep one"))
    partitions: dict[str, int] = Field(default_factory=dict, description=(
        "Partitions of single contract topics by short name, over min_partitions and the registry's counts, "
        "e.g. {metrics: 32, logs: 32}"))

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
        if self.partitions:
            _check_partitions(self)
        return self

    def partitions_of(self, spec: TopicSpec) -> int:
        """How many partitions the product creates ``spec``'s topic with (and its tables on it expect)."""
        if spec.short in self.partitions:
            return self.partitions[spec.short]
        return max(spec.partitions, self.min_partitions) if spec.partitions > 1 else spec.partitions

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


def _check_partitions(kafka: KafkaSettings) -> None:
    """``kafka.partitions`` names contract topics, with counts of at least one; a topic whose order is its meaning
    keeps its one partition, and topics one table reads together keep the same count."""
    from kubestack.contract.topics import TOPICS  # only when set: the registry is heavy for the agent

    partitions = kafka.partitions
    by_short = {spec.short: spec for spec in TOPICS}
    unknown = sorted(set(partitions) - set(by_short))
    if unknown:
        raise ValueError(f"kafka.partitions: no contract topic {', '.join(unknown)}; the topics are "
                         f"{', '.join(by_short)}")
    for short, count in partitions.items():
        if count < 1:
            raise ValueError(f"kafka.partitions.{short} is {count}: a topic needs at least one partition")
        if by_short[short].partitions == 1 and count != 1:
            raise ValueError(f"kafka.partitions.{short}: {short} keeps one partition, its order is its meaning")
    together = ("remediation-proposals", "remediation-decisions")  # one table of the worker reads both
    counts = {short: kafka.partitions_of(by_short[short]) for short in together}
    if len(set(counts.values())) > 1:
        raise ValueError(f"kafka.partitions: {' and '.join(together)} are read together, give them the same count "
                         f"(now {', '.join(f'{k} {v}' for k, v in counts.items())})")
