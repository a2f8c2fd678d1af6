"""The event contract: every message on the bus (``events``), what they share (``base``), where they go
(``topics``), and their JSON schemas (``schemas``)."""

from kubestack.contract.base import ContractModel, Event, ResourceRef, Source, utcnow
from kubestack.contract.topics import TOPICS, TopicSpec, topic

__all__ = ["TOPICS", "ContractModel", "Event", "ResourceRef", "Source", "TopicSpec", "topic", "utcnow"]
