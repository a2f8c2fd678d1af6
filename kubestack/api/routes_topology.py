"""The dependency graph around a resource, within the caller's tenant (``kubestack.api.neighbours``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kubestack.api.auth import Principal
from kubestack.api.context import ApiContext, context, principal
from kubestack.api.neighbours import NeighbourList, neighbours
from kubestack.api.queries import list_health, list_incidents
from kubestack.api.views import ErrorBody, shown_to

INCIDENTS_SCANNED = 500

router = APIRouter(prefix="/api/v1", tags=["topology"],
                   responses={401: {"model": ErrorBody, "description": "No token, or an unknown one"},
                              422: {"model": ErrorBody, "description": "No resource given"}})

Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


@router.get("/topology/neighbours", response_model=NeighbourList)
def topology_neighbours(ctx: Ctx, who: Caller, resource: Annotated[str, Query(
        min_length=1, max_length=500, description="Resource key (cluster/scope/kind/name), or a name known once")]
                        ) -> NeighbourList:
    """The resources directly linked to ``resource``: observed connections (health reports' peers, with who calls
    whom) and configured ones (same host, service, depends_on), among the resources of the tenant's health
    reports and incidents. ``known`` false: the resource was never seen in them."""
    reader = ctx.store.reader()
    seen = [r for i in list_incidents(reader, who.tenant, limit=INCIDENTS_SCANNED) for r in i.resources]
    return shown_to(who.role, neighbours(resource, list_health(reader, who.tenant), seen))
