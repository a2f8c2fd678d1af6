"""What every event on the bus carries: an id, a UTC time, where it came from, what it is about, a tenant."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC expected), got a naive datetime")
    return value.astimezone(timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A timezone-aware datetime, normalised to UTC; naive datetimes are rejected, not guessed."""

Name = Annotated[str, Field(min_length=1, max_length=253)]

FiniteNumber = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A measured value: a finite number (an integer is one too). NaN, infinities, booleans and numeric strings are
refused where they enter (a ``true`` is not a 1, a NaN would poison every detector it reached)."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class ContractModel(BaseModel):
    """Base of every contract model: unknown fields are ignored so producers can add fields safely.

    Validators are built on a model's first use (``defer_build``), not at import: a process builds only the
    events it handles (the agent about a dozen of the 27), the rest of the contract costs it no memory."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class Source(ContractModel):
    """Who emitted the event."""

    agent: Name = Field(description="Emitting component, e.g. 'agent', 'worker/anomaly', 'api'")
    host: Name = Field(description="Host name of the emitter")
    cluster: str | None = Field(default=None, description="Kubernetes cluster of the emitter, if any")


class ResourceRef(ContractModel):
    """What the event is about: one middleware instance, host, pod or workload."""

    kind: Name = Field(description="redis, mysql, postgresql, kafka, host, pod, deployment, ...")
    name: Name = Field(description="Instance name, unique within its namespace or host")
    namespace: str | None = Field(default=None, description="Kubernetes namespace, when on Kubernetes")
    host: str | None = Field(default=None, description="Host name, when on bare metal")
    cluster: str | None = Field(default=None, description="Kubernetes cluster or site name")
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="Attributes such as service and environment; not part of the key")

    @property
    def key(self) -> str:
        """Stable identity used as partition key and table key: cluster/scope/kind/name."""
        scope = self.namespace or self.host or "-"
        return f"{self.cluster or '-'}/{scope}/{self.kind}/{self.name}"


class Event(ContractModel):
    """Fields common to every message on the bus."""

    event_id: str = Field(default_factory=new_id, min_length=1, description="Unique id of this event")
    ts: UtcDatetime = Field(default_factory=utcnow, description="When the event happened (UTC)")
    source: Source
    resource: ResourceRef
    tenant: Name = Field(default="default", description="Tenant owning the resource")
