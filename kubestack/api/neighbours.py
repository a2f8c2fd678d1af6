"""A resource's neighbours as the API can see them: the dependency graph learned from the latest health report of
each resource (their observed peers, ``pipeline.topology``) and what configuration says (same host, ``service``,
``depends_on``: ``pipeline.correlation.relation``), over the resources of the health reports and incidents of
one tenant scope. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import HealthReport
from kubestack.pipeline.correlation import relation
from kubestack.pipeline.topology import Topology


class Neighbour(BaseModel):
    resource: str = Field(description="Resource key (cluster/scope/kind/name)")
    kind: str
    name: str
    relation: str = Field(description="client, server, primary, replica, consumer_group (observed), depends_on, "
                                      "same_host or service (configured)")
    direction: str = Field(description="'calls' (the resource depends on this neighbour), 'called_by', or "
                                       "'peer' when the relation has no direction")


class NeighbourList(BaseModel):
    resource: str
    known: bool = Field(description="Whether the resource was seen in a health report or an incident")
    neighbours: list[Neighbour]


UNDIRECTED = frozenset({"same_host", "service"})


def neighbours(wanted: str, reports: Iterable[HealthReport], seen: Iterable[ResourceRef]) -> NeighbourList:
    """``wanted``: a resource key, or a name when only one known resource has it."""
    graph = Topology()
    refs: dict[str, ResourceRef] = {}
    for report in reports:
        graph.learn(report)
        refs[report.resource.key] = report.resource
    for ref in seen:
        refs.setdefault(ref.key, ref)
    target = refs.get(wanted) or _by_name(wanted, refs.values())
    if target is None:
        return NeighbourList(resource=wanted, known=False, neighbours=[])
    found = []
    for other in sorted(refs.values(), key=lambda r: r.key):
        if other.key == target.key:
            continue
        link = relation(target, other, graph)
        if link is None:
            continue
        source, _, reason = link
        direction = "peer" if reason in UNDIRECTED else ("calls" if source == target.key else "called_by")
        found.append(Neighbour(resource=other.key, kind=other.kind, name=other.name, relation=reason,
                               direction=direction))
    return NeighbourList(resource=target.key, known=True, neighbours=found)


def _by_name(name: str, refs: Iterable[ResourceRef]) -> ResourceRef | None:
    named = [r for r in refs if r.name == name or f"{r.kind}/{r.name}" == name]
    return named[0] if len(named) == 1 else None
