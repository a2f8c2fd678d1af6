"""Where collectors hand their events: the agent's producer (with its disk spool) implements this."""

from __future__ import annotations

from typing import Protocol

from kubestack.contract.base import Event
from kubestack.contract.topics import TopicSpec


class Publisher(Protocol):
    async def publish(self, spec: TopicSpec, event: Event) -> None:
        """Queue ``event`` for ``spec``'s topic; returns once it is accepted (sent or spooled), never drops it."""
        ...

    async def publish_many(self, items: list[tuple[TopicSpec, Event]]) -> None:
        """``publish`` for several events at once, kept in order."""
        ...
