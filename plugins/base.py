"""The plugin interface: a small Protocol every middleware plugin implements, and what it returns.

A plugin is a class registered under the ``kubestack.plugins`` entry-point group. It declares its own
pydantic config model and takes its client as an argument: ``create(config, runner)`` builds the default
client (a direct connection with the middleware's client library, or, when ``runner`` is given, a client
that runs the middleware's own CLI through it: locally or over SSH for agentless collection). Raw output
(``INFO``, ``SHOW GLOBAL STATUS``, ``pg_stat_*`` rows, ``/proc`` files) is parsed by pure functions in the
plugin's ``parse`` module, tested on recorded output as well as live.

Metric names: ``<plugin>_<what>[_<unit>]`` in snake case; counters end in ``_total`` and are sent as the
raw cumulative value (the detectors difference them); ratios end in ``_ratio`` (0..1); sizes ``_bytes``,
durations ``_seconds``. Per-object series carry labels (``{"db": "shop"}``, ``{"topic": "t", "partition": "0"}``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol, runtime_checkable

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    computed_field,
)
from pydantic.json_schema import SkipJsonSchema

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigChange, Finding, Peer, Risk, Sample
from kubestack.errors import (
    ActionError,
    ActionParamsError,
    CommandFailedError,
    ConfigError,
    TargetTimeoutError,
    TargetUnreachableError,
    UnknownActionError,
)
from kubestack.plugins.remedy import Remedy


class PluginConfig(BaseModel):
    """Base of every plugin's config model: unknown keys are errors, so typos surface at load time."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(default=5.0, gt=0, description="Per-request timeout against the target")


class SecretRef(BaseModel):
    """A credential given inline, by environment variable or by file; never logged."""

    model_config = ConfigDict(extra="forbid")

    value: SecretStr | None = None
    env: str | None = None
    file: Path | None = None

    def resolve(self) -> str | None:
        if self.value is not None:
            return self.value.get_secret_value()
        if self.env is not None:
            if self.env not in os.environ:
                raise ConfigError(f"credential variable {self.env} is not set")
            return os.environ[self.env]
        if self.file is not None:
            try:
                return self.file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"credential file {self.file} cannot be read: {exc.strerror}") from exc
        return None


class LogSource(BaseModel):
    """Where a target's logs are: a file (glob allowed) or a journald unit, and their line format."""

    path: str | None = None
    journald_unit: str | None = None
    format: str | None = Field(default=None, description="<Field> layout, e.g. '<Pid>:<Role> <Date> <Time> <Content>'")


class ActionParams(BaseModel):
    """Base of every action's typed parameters: one model per action, whose fields validate, document (their
    descriptions) and say what is required (a field without a default). Unknown names are refused; a number given
    as digits (as a form sends it) is accepted, a boolean is not."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def no_bool(value: Any) -> Any:
    """Refuses a boolean where a number is expected (pydantic would read True as 1)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


WholeNumber = Annotated[int, BeforeValidator(no_bool)]
"""An integer parameter; digits in a string are accepted, a boolean is not."""
Number = Annotated[float, BeforeValidator(no_bool), Field(allow_inf_nan=False)]
"""A finite number parameter; digits in a string are accepted, a boolean is not."""


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError("contains a NUL character")
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=63), AfterValidator(_no_nul)]
"""A name given as text (a role, a database, a group): 1 to 63 characters."""


class NoParams(ActionParams):
    """An action that takes no parameters."""


class ActionSpec(BaseModel):
    """A safe action a plugin offers, declared once: its risk, its typed parameters, what it answers (the
    remedies the proposals stage reads) and what the remediation stage checks before acting."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str = Field(pattern=r"^[a-z0-9_]+\.[a-z0-9_]+$", description="<plugin>.<action>")
    title: str
    risk: Risk
    params: SkipJsonSchema[type[ActionParams]] = Field(default=NoParams, exclude=True,
                                                       description="The typed parameter model")
    preconditions: list[str] = Field(default_factory=list)
    rollback: str = ""
    answers: SkipJsonSchema[tuple[Remedy, ...]] = Field(
        default=(), exclude=True, description="The signals this action answers and how their evidence sets its params")

    @computed_field(description="JSON schema of the parameters: their types, meanings and which are required")
    @property
    def parameters(self) -> dict[str, Any]:
        return self.params.model_json_schema()

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` validated by the action's model and normalised (optional ones left out when not given);
        ``ActionParamsError`` says which parameter is wrong and what is expected."""
        try:
            return self.params.model_validate(params).model_dump(exclude_none=True)
        except ValidationError as exc:
            raise ActionParamsError(f"{self.id}: {_param_problems(exc, self.params)}") from None

    def accepts(self, params: dict[str, Any]) -> bool:
        """Whether ``params`` are complete and valid for this action (no exception: the proposals ask this)."""
        try:
            self.params.model_validate(params)
        except ValidationError:
            return False
        return True


def _param_problems(exc: ValidationError, model: type[ActionParams]) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        name = ".".join(str(part) for part in error["loc"])
        field = model.model_fields.get(str(error["loc"][0])) if error["loc"] else None
        meaning = field.description if field is not None and field.description else ""
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            problems.append(f"parameter {name!r} is missing" + (f" ({meaning})" if meaning else ""))
        elif error["type"] == "extra_forbidden":
            problems.append(f"unknown parameter {name!r}; expected {', '.join(model.model_fields) or 'none'}")
        elif not name:
            problems.append(message)
        elif error["type"] == "value_error":
            problems.append(f"parameter {name!r}: {message}, not {error['input']!r}")
        elif error["type"] == "string_pattern_mismatch":
            expected = f"{meaning[0].lower()}{meaning[1:]}" if meaning else "another form"
            problems.append(f"parameter {name!r} is {error['input']!r}; expected {expected}")
        else:
            said = message[0].lower() + message[1:]
            for pydantic_words in ("input should ", "string should ", "list should "):
                said = said.replace(pydantic_words, "must ", 1)
            expected = f"; expected {meaning[0].lower()}{meaning[1:]}" if meaning else ""
            problems.append(f"parameter {name!r} {said}, not {error['input']!r}{expected}")
    return "; ".join(problems)


@runtime_checkable
class CommandRunner(Protocol):
    """Runs a command where the target lives (this host, or a remote one over SSH); returns stdout."""

    async def run(self, argv: Sequence[str], *, timeout: float, stdin: str | None = None) -> str: ...

    async def close(self) -> None: ...


class LocalRunner:
    """Runs commands on this machine."""

    async def run(self, argv: Sequence[str], *, timeout: float, stdin: str | None = None) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError as exc:
            raise TargetUnreachableError(f"{argv[0]} is not installed on this host") from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise TargetTimeoutError(f"{' '.join(argv)} gave no answer in {timeout:.0f}s") from None
        if proc.returncode != 0:
            raise CommandFailedError(list(argv), proc.returncode, err.decode(errors="replace"))
        return out.decode(errors="replace")

    async def close(self) -> None:
        """Nothing to release: every command is its own process."""


@runtime_checkable
class Plugin(Protocol):
    """What every middleware plugin offers. Methods that reach the target raise ``TargetError`` subclasses
    (unreachable, auth, timeout) with a reason; the agent turns those into "target down" findings."""

    name: ClassVar[str]
    config_model: ClassVar[type[PluginConfig]]
    client_module: ClassVar[str]
    """Import name of the client library used for direct connections, e.g. ``redis``."""
    rules: ClassVar[tuple[str, ...]]
    """Every health and config-risk rule id the plugin reports (``<plugin>.<rule>``); each has a runbook."""
    symptoms: ClassVar[frozenset[str]]
    """Those of ``rules`` that say what clients feel (slow, blocked, busy) rather than a cause: root cause ranks a
    cause of the same severity on the same resource above them, and a remedy verifies against the others."""
    keywords: ClassVar[tuple[str, ...]]
    """Words that name this middleware in a question ("mariadb", "pg", "缓存"); its name always does."""

    @classmethod
    def create(cls, config: PluginConfig, runner: CommandRunner | None = None) -> Plugin:
        """Build the plugin with its default client (direct, or through ``runner``)."""
        ...

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        """A config that works against a default local install; shown by ``kubestack plugins check``."""
        ...

    async def collect(self) -> list[Sample]: ...

    async def snapshot_config(self) -> dict[str, str]: ...

    def log_sources(self) -> list[LogSource]: ...

    async def check_health(self) -> list[Finding]: ...

    def actions(self) -> list[ActionSpec]: ...

    async def close(self) -> None: ...


def declared(specs: Sequence[ActionSpec], action_id: str, middleware: str) -> ActionSpec:
    """The spec of ``action_id`` among a plugin's ``specs``; a forbidden action is refused here, before anything
    reaches the server."""
    spec = next((s for s in specs if s.id == action_id), None)
    if spec is None:
        raise UnknownActionError(f"{action_id} is not a {middleware} action; known: {', '.join(s.id for s in specs)}")
    if spec.risk == Risk.FORBIDDEN:
        raise ActionError(f"{action_id} is forbidden ({'; '.join(spec.preconditions)}): it is never executed")
    return spec


class ActionOutcome(BaseModel):
    """What executing (or dry-running) an action did, and how to undo it."""

    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool
    output: str = Field(description="What was done, or with dry_run what would be done, in words")
    before: dict[str, Any] = Field(default_factory=dict, description="State read just before acting")
    undo: tuple[str, dict[str, Any]] | None = Field(
        default=None, description="(action id, params) that restores the state before, when one exists")


@runtime_checkable
class ActionRunner(Protocol):
    """Optional for a plugin: carries out the actions ``actions()`` declares. ``execute`` re-checks the action's
    preconditions on the target first (``PreconditionFailedError``, nothing changed), then with ``dry_run``
    only says what it would do; unknown ids raise ``UnknownActionError``, bad params ``ActionParamsError``,
    and actions whose risk is forbidden are never executed."""

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome: ...


@runtime_checkable
class ConfigRiskRules(Protocol):
    """Optional for a plugin: which configuration changes are risky. Pure: the change carries the old and new
    values and the metrics the agent saw last (``ConfigChange.observed``)."""

    @staticmethod
    def config_risks(change: ConfigChange) -> list[Finding]: ...


@runtime_checkable
class PeerDiscovery(Protocol):
    """Optional for a plugin: the connections it can observe on its target (clients, replication partners,
    consumer groups), sent with every health report so the worker learns the dependency graph."""

    async def peers(self) -> list[Peer]: ...


class ResourceSink(Protocol):
    """Where a ``ResourceWatcher`` reports the resources it watches; the agent publishes for it (its source, tenant,
    disk spool, and configuration diffs against what it last saw of each resource)."""

    async def metrics(self, resource: ResourceRef, samples: list[Sample]) -> None: ...

    async def health(self, resource: ResourceRef, findings: list[Finding], peers: list[Peer] = ()) -> None:
        """The resource's full health state (no findings: healthy)."""
        ...

    async def config(self, resource: ResourceRef, config: dict[str, str]) -> None: ...


@runtime_checkable
class ResourceWatcher(Protocol):
    """Optional for a plugin whose target holds many resources (the pods, nodes and workloads of a Kubernetes
    cluster): ``watch`` runs next to the target's rounds until cancelled, reporting through ``sink``. It keeps
    going while its source is away (the target's own rounds report that as the target down); if it raises, the
    agent logs it and calls it again after a pause."""

    async def watch(self, sink: ResourceSink) -> None: ...


@runtime_checkable
class ResourceChecks(Protocol):
    """Optional for a plugin whose target holds many resources of other kinds (``resource_kinds``: the pods, nodes
    and workloads of a Kubernetes cluster): which of them an instance speaks for, and their health findings read
    now, so the remediation stage can act on one of them through this target and verify that it recovered."""

    resource_kinds: ClassVar[frozenset[str]]

    def owns(self, resource: ResourceRef) -> bool: ...

    async def check_resource(self, resource: ResourceRef) -> list[Finding]: ...


@runtime_checkable
class TargetDiscovery(Protocol):
    """Optional for a plugin whose target can reveal more targets (middleware running in a Kubernetes cluster):
    ``discover`` returns them as ``TargetConfig``-shaped dicts; blocking, raises ``TargetError`` when it cannot
    look."""

    @classmethod
    def discover(cls, config: PluginConfig) -> list[dict[str, Any]]: ...


class KubeDiscovery(BaseModel):
    """How the Kubernetes plugin recognises this middleware's pods and reaches them (``discovery`` on the plugin
    class, see ``KubeDiscoverable``): by the pod's ``app.kubernetes.io/name`` (or ``app``) label or a container's
    image name (``docker.io/bitnami/rabbitmq:3.13`` → ``rabbitmq``); the target's config gets ``host`` and ``port``,
    or ``address_key: "host:port"`` when the plugin takes one address (Kafka's ``bootstrap``)."""

    model_config = ConfigDict(frozen=True)

    apps: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    port: int | None = Field(default=None, ge=1, le=65535,
                             description="The port it listens on in its container; default: the plugin's default_port")
    address_key: str | None = None


@runtime_checkable
class KubeDiscoverable(Protocol):
    """Optional for a plugin: its middleware is found in Kubernetes clusters (``KubeDiscovery``)."""

    discovery: ClassVar[KubeDiscovery]


class Capacity(BaseModel):
    """A capacity-like series: ``used`` runs out when it reaches ``limit`` (another metric of the same batch, with
    the same values for ``match_labels``) or the constant ``limit_value``. A limit of 0 or below means "no limit"
    (Redis ``maxmemory 0``) and the series is not forecast."""

    model_config = ConfigDict(frozen=True)

    used: str
    limit: str | None = None
    limit_value: float | None = Field(default=None, gt=0)
    match_labels: tuple[str, ...] = ()
    title: str = Field(description="What runs out, for people: 'disk space', 'Redis memory'")
    outcome: str = Field(default="", description=(
        "What happens at the limit, with {label} placeholders: 'group {group} on {topic} will lose unconsumed "
        "records'; empty: '<series> runs out'"))


@runtime_checkable
class CapacitySeries(Protocol):
    """Optional for a plugin: which of its series fill up towards a limit (forecast by the worker)."""

    capacities: ClassVar[tuple[Capacity, ...]]
