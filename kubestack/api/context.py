"""What every route needs, built once per application, and the dependencies that hand it out: the context,
the caller's principal, and role checks whose refusals are audited."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from kubestack.api.auth import Principal, TokenBook
from kubestack.apisettings import ApiSettings, Role
from kubestack.approval import DecisionKeys
from kubestack.api.errors import ForbiddenError
from kubestack.api.feed import Feed
from kubestack.api.metrics import ApiMetrics
from kubestack.api.publisher import Publisher
from kubestack.api.readmodel import ReadModel
from kubestack.api.targets import Targets
from kubestack.errors import KafkaUnavailableError
from kubestack.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ApiContext:
    settings: Settings
    api: ApiSettings
    store: ReadModel
    publisher: Publisher
    feed: Feed
    tokens: TokenBook
    metrics: ApiMetrics
    targets: Targets
    decision_keys: DecisionKeys
    """What signs every decision (``remediation.decision_keys``)."""

    def audit_tenant(self, principal: Principal) -> str:
        """The tenant an entry about this caller belongs to: theirs, or the installation's."""
        return principal.tenant or self.settings.tenant

    async def deny(self, *, actor: str, reason: str, subject_id: str, details: dict, tenant: str) -> None:
        """Audit a refusal (``api.denied``); a broker that is away does not turn the refusal into a 503."""
        self.metrics.denied.labels(reason).inc()
        try:
            await self.publisher.audit(actor=actor, action="api.denied", subject_id=subject_id,
                                       details={"reason": reason} | details, tenant=tenant)
        except KafkaUnavailableError as exc:
            log.error("refusal of %s on %s not audited: %s", actor, subject_id, exc)


def context(request: Request) -> ApiContext:
    return request.app.state.context


def principal(request: Request) -> Principal:
    return context(request).tokens.authenticate(request.headers.get("authorization"))


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, if their role is at least ``role``; otherwise 403, audited as ``api.denied``."""

    async def check(request: Request) -> Principal:
        who = principal(request)
        if who.can(role):
            return who
        ctx = context(request)
        subject = request.path_params.get("proposal_id") or request.url.path
        await ctx.deny(actor=who.name, reason="role", subject_id=subject, tenant=ctx.audit_tenant(who),
                       details={"role": who.role.value, "needed": role.value, "method": request.method,
                                "path": request.url.path})
        raise ForbiddenError(f"{request.method} {request.url.path} needs the {role.value} role; "
                             f"token {who.name!r} is {who.role.value}")

    check.__name__ = f"require_{role.value}"
    return check
