"""The installation: liveness, plugins, targets, on-demand checks, Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from kubestack.api.auth import Principal
from kubestack.apisettings import Role
from kubestack.api.context import ApiContext, context, principal, require
from kubestack.api.errors import NotFoundError
from kubestack.api.queries import list_health
from kubestack.api.views import (
    DiagnoseRequest,
    DiagnoseResponse,
    ErrorBody,
    FeedStatus,
    HealthResponse,
    PluginsResponse,
    PluginView,
    TargetsResponse,
    WhoAmI,
    health_view,
    shown_to,
)
from kubestack.bus import describe_cluster
from kubestack.errors import KafkaUnavailableError
from kubestack.plugins.registry import action_specs, broken_plugins, plugins as installed_plugins

KAFKA_PROBE_S = 3.0

router = APIRouter(prefix="/api/v1", tags=["system"])

Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
AUTH_ERRORS = {401: {"model": ErrorBody, "description": "No token, or an unknown one"}}


@router.get("/health", response_model=HealthResponse, response_model_exclude_none=True)
async def health(ctx: Ctx, request: Request) -> HealthResponse:
    """Liveness and Kafka reachability, with no token (for probes). Details (the Kafka error, the feed's lag, the
    read model's rows) only with a token: without one the answer names no address, count or error."""
    error = None
    try:
        await asyncio.wait_for(describe_cluster(ctx.settings.kafka), KAFKA_PROBE_S)
    except (KafkaUnavailableError, TimeoutError) as exc:
        error = str(exc) or f"no answer within {KAFKA_PROBE_S:.0f}s"
    feed = ctx.feed
    answer = HealthResponse(status="ok" if error is None else "degraded", kafka_reachable=error is None,
                            feed_running=feed.running)
    if request.headers.get("authorization") is None:
        return answer
    principal(request)  # a token that is sent must be a valid one
    return answer.model_copy(update={
        "kafka_error": error, "read_model": ctx.store.counts(),
        "feed": FeedStatus(running=feed.running, lag=feed.lag, last_event_age_s=feed.last_event_age(),
                           error=feed.error)})


@router.get("/me", response_model=WhoAmI, responses=AUTH_ERRORS)
def me(who: Caller) -> WhoAmI:
    """Who the token is: its name, role and tenant (the console shows or hides the decision buttons by it)."""
    return WhoAmI(name=who.name, role=who.role, tenant=who.tenant)


@router.get("/plugins", response_model=PluginsResponse, responses=AUTH_ERRORS)
def plugins(who: Caller) -> PluginsResponse:
    """Installed middleware plugins and the actions they offer."""
    return PluginsResponse(plugins=[PluginView(name=name, actions=list(action_specs(name)))
                                    for name in installed_plugins()], broken=broken_plugins())


@router.get("/targets", response_model=TargetsResponse, responses=AUTH_ERRORS)
def targets(ctx: Ctx, who: Caller) -> TargetsResponse:
    """The agent config's targets (never their credentials) and the resources health reports came from."""
    known = ctx.targets
    listed = [t for t in known.views() if who.sees(t.tenant)]
    return shown_to(who.role, TargetsResponse(
        targets=listed, resources=[health_view(r) for r in list_health(ctx.store.reader(), who.tenant)]))


@router.post("/diagnose", response_model=DiagnoseResponse,
             responses=AUTH_ERRORS | {403: {"model": ErrorBody, "description": "Below operator (audited)"},
                                      404: {"model": ErrorBody, "description": "No such target"},
                                      422: {"model": ErrorBody, "description": "The body is invalid"}})
async def diagnose(ctx: Ctx, who: Operator, body: DiagnoseRequest) -> DiagnoseResponse:
    """Run a target's health checks now and return the findings (audited as target.diagnosed)."""
    known = ctx.targets
    if not who.sees(known.tenant):  # before the lookup, whose "not found" lists the targets
        raise NotFoundError(f"no target {body.target!r}")
    target = known.find(body.target)
    result = await known.diagnose(target, ctx.api.diagnose_timeout_s)
    await ctx.publisher.audit(actor=who.name, action="target.diagnosed", subject_id=result.resource,
                              tenant=known.tenant, resource=known.resource(target),
                              details={"role": who.role.value, "target": target.name, "error": result.error,
                                       "findings": [f.rule_id for f in result.findings]})
    return result


def metrics_text(ctx: ApiContext) -> Response:
    return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
