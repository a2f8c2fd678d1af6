"""One ``Settings`` object, built once at start-up by ``load_settings`` and passed down.

Sources, strongest first: keyword overrides, environment (``KUBESTACK_`` prefix, ``__`` between nested
names, e.g. ``KUBESTACK_KAFKA__BOOTSTRAP``), a YAML file (``--config`` or ``KUBESTACK_CONFIG``), defaults.
``KUBESTACK_KAFKA_BOOTSTRAP`` is accepted as a shortcut for ``KUBESTACK_KAFKA__BOOTSTRAP``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from kubestack.apisettings import ApiSettings
from kubestack.commonsettings import (  # noqa: F401  (KafkaComponent, KafkaCredentials: imported from here too)
    BOOTSTRAP_SHORTCUT_ENV,
    CONFIG_FILE_ENV,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    KafkaComponent,
    KafkaCredentials,
    KafkaSettings,
    LogLevel,
    _Section,
    default_home,
)
from kubestack.errors import ConfigError, validation_problems
from kubestack.notifysettings import NotifySettings

class LocalKafkaSettings(_Section):
    """The broker, or cluster of brokers, ``kubestack kafka up`` runs on this machine (KRaft, each node both broker
    and controller). Node ``i`` (from 1) listens on ``ports[i-1]``, else on ``port + 100 * (i - 1)`` (9092, 9192,
    9292: never 9093, Alertmanager's); its controller likewise from ``controller_port``."""

    host: str = "127.0.0.1"
    port: int = Field(default=9092, ge=1, le=65535)
    controller_port: int = Field(default=19093, ge=1, le=65535, description="Not 9093: Alertmanager's port")
    brokers: int = Field(default=1, ge=1, le=9, description="Nodes of the local cluster")
    ports: list[int] = Field(default_factory=list, description="Client port of each node, the first brokers of them "
                                                               "(default: from port)")
    controller_ports: list[int] = Field(default_factory=list, description="Controller port of each node")
    secure: bool = Field(default=False, description=(
        "TLS and SASL/SCRAM-SHA-512 for clients and between brokers, with a CA and users made here"))
    heap: str = Field(default="1g", pattern=r"^\d+[mMgG]$")
    start_timeout_s: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _one_port_per_node(self) -> LocalKafkaSettings:
        for name in ("ports", "controller_ports"):
            given = getattr(self, name)
            if given and len(given) < self.brokers:
                raise ValueError(f"local_kafka.{name} has {len(given)} ports for {self.brokers} brokers")
        if len(set(self.node_ports) | set(self.node_controller_ports)) != 2 * self.brokers:
            raise ValueError("local_kafka: every node needs a client port and a controller port of its own")
        return self

    @property
    def node_ports(self) -> list[int]:
        return self.ports[:self.brokers] or [self.port + 100 * i for i in range(self.brokers)]

    @property
    def node_controller_ports(self) -> list[int]:
        return self.controller_ports[:self.brokers] or [self.controller_port + 100 * i for i in range(self.brokers)]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{port}" for port in self.node_ports)

    @property
    def replication_factor(self) -> int:
        """Replicas of every topic on this cluster: three at most, as production clusters run."""
        return min(self.brokers, 3)

    @property
    def min_insync_replicas(self) -> int:
        """A write with acks=all survives one node down: two of three replicas, one of one or two."""
        return 2 if self.replication_factor == 3 else 1


class LocalKubeSettings(_Section):
    """The Kubernetes control plane ``kubestack kube up`` runs on this machine: etcd, kube-apiserver,
    kube-controller-manager and kube-scheduler (no kubelet), built by ``deploy/kube/build.sh``."""

    host: str = "127.0.0.1"
    port: int = Field(default=6443, ge=1, le=65535, description="kube-apiserver's HTTPS port")
    etcd_port: int = Field(default=2379, ge=1, le=65535)
    etcd_peer_port: int = Field(default=2380, ge=1, le=65535)
    controller_manager: bool = Field(default=True, description="Run kube-controller-manager (Deployments get "
                                                               "ReplicaSets and Pods, namespaces finalize)")
    controller_manager_port: int = Field(default=10257, ge=1, le=65535)
    scheduler: bool = Field(default=True, description="Run kube-scheduler (Pods get bound to Ready Nodes)")
    scheduler_port: int = Field(default=10259, ge=1, le=65535)
    bin_dir: Path | None = Field(default=None, description="Default: where deploy/kube/build.sh puts them, "
                                                           "${KUBESTACK_CACHE:-~/.cache/kubestack}/kube/v<version>/bin")
    start_timeout_s: float = Field(default=120.0, gt=0)

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.port}"


class WorkerSettings(_Section):
    """The Faust stream processor."""

    app_id: str = Field(default="kubestack-worker", description="Faust app id: consumer group and table prefix")
    store: str = Field(default="memory://", description="Table store: memory:// or rocksdb://")
    web_enabled: bool = False
    web_port: int = Field(default=6066, ge=1, le=65535)
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    anomaly_detector: str = Field(default="likelihood", description=(
        "Metric detector of every series: likelihood, metric or gaussian (kubestack.models.registry)"))
    anomaly_threshold: float = Field(default=0.5, gt=0, le=1, description=(
        "Detector score that makes an anomaly; the detectors alert and quiet at it"))
    log_anomaly_threshold: float = Field(default=0.7, gt=0, le=1,
                                         description="Score of a log signal (new template, burst, rate) that counts")
    log_window_s: float = Field(default=60.0, gt=0, description="Window of the log stage's template rates")
    log_warmup_windows: int = Field(default=5, ge=0, description="Windows of a log source before it can alert")
    metric_alone_score: float = Field(default=0.9, gt=0, le=1,
                                      description="A metric anomaly scoring less opens an incident only together "
                                                  "with another signal of its resource; at least this is critical")
    correlation_window_s: float = Field(default=600.0, gt=0, description="Signals this close join one incident")
    incident_quiet_s: float = Field(default=900.0, gt=0, description="An incident with no signal this long resolves")
    incident_reopen_s: float = Field(default=120.0, ge=0, description=(
        "A signal of a resolved incident's resource this soon after reopens it (0: never)"))
    checkpoint_s: float = Field(default=30.0, ge=0, description="Inventory, detector and miner state to its table at most this often")
    signal_partitions: int = Field(default=4, ge=1, description="Partitions of the tenant-keyed correlation input")
    session_timeout_s: float = Field(default=60.0, ge=6, le=300, description=(
        "A worker gone without leaving its group (kill -9, a lost host) keeps its partitions this long before "
        "another worker or its own restart takes them over (heartbeats every 3 s, or a tenth of it if shorter)"))
    forecast_warning_s: float = Field(default=86_400.0, gt=0, description="Warn when a capacity runs out this soon")
    forecast_critical_s: float = Field(default=14_400.0, gt=0, description="Critical when it runs out this soon")
    forecast_time_scale: float = Field(default=1.0, gt=0, le=1,
                                       description="Multiplies every forecasting duration (tests compress days)")

    @model_validator(mode="after")
    def _anomaly_levels(self) -> WorkerSettings:
        if self.metric_alone_score < self.anomaly_threshold:
            raise ValueError(f"worker.metric_alone_score {self.metric_alone_score} is under "
                             f"worker.anomaly_threshold {self.anomaly_threshold}: a weaker score than an anomaly's")
        return self


class LlmSettings(_Section):
    """The LLM that may write narratives; ``provider="none"`` keeps the templated ones."""

    provider: Literal["none", "openai", "ollama"] = "none"
    base_url: str | None = Field(default=None, description="Default: OpenAI's API, or Ollama on 127.0.0.1:11434")
    model: str | None = Field(default=None, description="Model name as the server knows it")
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=20.0, gt=0, description="Longest a narrative may take, retries included")
    max_tokens: int = Field(default=300, ge=16)
    redact_ips: bool = Field(default=False, description="Also replace IP addresses in what is sent")
    structured: Literal["auto", "json_schema", "grammar", "json_object", "off"] = Field(default="auto", description=(
        "How the model is held to cited claims: a JSON schema whose citations can only be the evidence ids given. "
        "json_schema: OpenAI's response_format (OpenAI, vLLM, LM Studio, llama.cpp's llama-server); grammar: one "
        "cited claim as text under a GBNF grammar (llama.cpp's servers; a third of the tokens of JSON); json_object: "
        "a json_object response_format carrying the schema (llama-cpp-python's server); auto: the first that the "
        "server accepts, in that order, else free text; off: free text. Ollama takes the schema as its format "
        "unless off"))

    @model_validator(mode="after")
    def _model_named(self) -> LlmSettings:
        if self.provider != "none" and not self.model:
            raise ValueError(f"llm.model is required with provider {self.provider}")
        return self


class RemediationSettings(_Section):
    """The remediation stage: who may approve what, where it acts, how it verifies."""

    enabled: bool = Field(default=True, description="Off: proposals are recorded and audited, never executed")
    auto_approve_low: bool = Field(default=False, description="Execute low-risk proposals without a person")
    auto_approve_earned: int = Field(default=0, ge=0, description=(
        "N > 0: an action runs without a person on a target class (plugin kind + service/role labels) once its last "
        "N runs there were verified, until a rollback or failed verification resets it; 0: off"))
    targets: Path | None = Field(default=None, description=(
        "Agent config (YAML) whose targets the stage may act on, matched to a proposal by kind and name; without it "
        "every approved proposal fails with 'no target'"))
    verify_window_s: float = Field(default=60.0, gt=0, description="How long the watched findings have to clear")
    verify_interval_s: float = Field(default=5.0, gt=0)
    verify_hold_s: float = Field(default=15.0, ge=0, description=(
        "Once cleared, the watched findings must stay cleared this long (a replaced pod can crash-loop again, a "
        "finding can flap)"))
    action_timeout_s: float = Field(default=20.0, gt=0)
    decision_keys: Path | None = Field(default=None, description=(
        "Key ring (JSON, 0600) the API signs decisions with and the stage checks them against; default "
        "<home>/keys/decision-keys.json. The API makes it on its first start; the worker and the API must share it, "
        "the agents must not have it"))
    decision_ttl_s: float = Field(default=900.0, gt=0, description=(
        "A decision older than this when the stage reads it is refused: approve again"))


class AuditSettings(_Section):
    """The local copy of the audit chain (the audit topic is the other)."""

    store: Path | None = Field(default=None, description="JSON Lines file; default <home>/audit/audit.jsonl")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER,
                                      extra="forbid")

    home: Path = Field(default_factory=default_home, description="State: broker jars and data, spools, indexes")
    log_level: LogLevel = "INFO"
    tenant: str = Field(default="default", min_length=1)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    local_kafka: LocalKafkaSettings = Field(default_factory=LocalKafkaSettings)
    local_kube: LocalKubeSettings = Field(default_factory=LocalKubeSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    remediation: RemediationSettings = Field(default_factory=RemediationSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls), file_secret_settings


def load_settings(config_file: Path | str | None = None, **overrides: object) -> Settings:
    """Build the settings once; ``ConfigError`` says which file or value is wrong."""
    path = config_file or os.environ.get(CONFIG_FILE_ENV)
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file {path} not found")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(yaml_file=path)

    shortcut = os.environ.get(BOOTSTRAP_SHORTCUT_ENV)
    try:
        settings = _FromFile(**overrides)
        if shortcut and "kafka" not in overrides:
            settings = settings.model_copy(
                update={"kafka": KafkaSettings.model_validate(settings.kafka.model_dump() | {"bootstrap": shortcut})}
            )
        return settings
    except ValidationError as exc:
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid settings{where}: {validation_problems(exc)}") from exc
