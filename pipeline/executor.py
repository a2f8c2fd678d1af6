"""Carrying out an approved proposal on its target: dry run (which re-checks the preconditions on the live target),
execute, then watch the health rules the proposal names until they clear; roll back with the action's undo when
they do not clear within the window or the target gets worse (a new critical finding, or it stops answering).

The targets are the ones of an agent config (``remediation.targets``, an ``agents.targets.TargetSet``), matched to
the proposal's tenant (the agent's) and resource by its whole key (kind, name, host or namespace, cluster), or, for
the resources a target holds (the pods, nodes and workloads of a Kubernetes cluster), the target of that tenant that
owns it; credentials stay in that file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from kubestack.agents.targets import TargetSet
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import Finding, RemediationProposal, ResultStatus, Severity
from kubestack.errors import ConfigError, PluginError, PreconditionFailedError, TargetError
from kubestack.plugins.base import ActionOutcome, ActionRunner, Plugin, ResourceChecks
from kubestack.settings import RemediationSettings

log = logging.getLogger(__name__)


def health_of(plugin: Plugin, resource: ResourceRef):
    """What verification reads: the findings of the very resource acted on (a pod of a cluster target), or the
    target's own health."""
    if isinstance(plugin, ResourceChecks) and resource.kind in plugin.resource_kinds:
        return lambda: plugin.check_resource(resource)
    return plugin.check_health


@dataclass(frozen=True)
class Step:
    status: ResultStatus
    output: str


async def carry_out(proposal: RemediationProposal, targets: TargetSet,
                    settings: RemediationSettings) -> AsyncIterator[Step]:
    """The steps of acting on ``proposal``, as they happen: executed, then verified, rolled back or failed."""
    try:
        opened = await targets.open_for(proposal.resource, proposal.tenant)
    except (PluginError, ConfigError) as exc:
        yield Step(ResultStatus.FAILED, str(exc))
        return
    try:
        if not isinstance(opened.plugin, ActionRunner):
            yield Step(ResultStatus.FAILED, f"the {proposal.resource.kind} plugin cannot carry out actions")
            return
        async for step in _act(opened.plugin, proposal, settings):
            yield step
    finally:
        await opened.close()


async def _act(plugin: Plugin, proposal: RemediationProposal, settings: RemediationSettings) -> AsyncIterator[Step]:
    timeout = settings.action_timeout_s
    health = health_of(plugin, proposal.resource)
    try:
        before = await asyncio.wait_for(health(), timeout)
        dry = await asyncio.wait_for(plugin.execute(proposal.action, proposal.params, dry_run=True), timeout)
        done = await asyncio.wait_for(plugin.execute(proposal.action, proposal.params), timeout)
    except PreconditionFailedError as exc:
        yield Step(ResultStatus.FAILED, f"preconditions do not hold now, nothing was changed: {'; '.join(exc.problems)}")
        return
    except (PluginError, ConfigError, TimeoutError) as exc:
        yield Step(ResultStatus.FAILED, f"{type(exc).__name__}: {exc or 'no answer within ' + str(timeout) + 's'}")
        return
    yield Step(ResultStatus.EXECUTED, f"dry run: {dry.output}\n{done.output}")
    if not proposal.verify_rules:
        return
    verdict, why = await watch(health, proposal.verify_rules, before, settings)
    if verdict == "recovered":
        yield Step(ResultStatus.VERIFIED, why)
        return
    yield await _roll_back(plugin, done, why, timeout)


async def watch(health: Callable[[], Awaitable[list[Finding]]], rules: list[str], before: list[Finding],
                settings: RemediationSettings) -> tuple[str, str]:
    """("recovered" | "not recovered" | "worse", why): the watched rules must clear within ``verify_window_s`` and
    then stay clear for ``verify_hold_s``, checked every ``verify_interval_s``."""
    known_critical = {f.rule_id for f in before if f.severity == Severity.CRITICAL}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.verify_window_s
    clear_since: float | None = None
    while True:
        try:
            findings = await asyncio.wait_for(health(), settings.action_timeout_s)
        except (TargetError, TimeoutError) as exc:
            return "worse", f"the target stopped answering after the action: {exc or 'timeout'}"
        worse = sorted({f.rule_id for f in findings if f.severity == Severity.CRITICAL} - known_critical)
        if worse:
            return "worse", f"new critical finding(s) after the action: {', '.join(worse)}"
        still = {f.rule_id for f in findings} & set(rules)
        now = loop.time()
        if still and clear_since is not None:
            return "not recovered", f"{', '.join(sorted(still))} cleared, then fired again"
        if not still:
            clear_since = now if clear_since is None else clear_since
            if now - clear_since >= settings.verify_hold_s:
                held = f" and stayed clear for {settings.verify_hold_s:g}s" if settings.verify_hold_s else ""
                return "recovered", f"{', '.join(rules)} cleared{held}"
        elif now + settings.verify_interval_s > deadline:
            return "not recovered", f"{', '.join(sorted(still))} still firing after {settings.verify_window_s:g}s"
        await asyncio.sleep(settings.verify_interval_s)


async def _roll_back(plugin: Plugin, done: ActionOutcome, why: str, timeout: float) -> Step:
    if done.undo is None:
        return Step(ResultStatus.FAILED, f"{why}; the action cannot be undone")
    action, params = done.undo
    try:
        undone = await asyncio.wait_for(plugin.execute(action, params), timeout)
    except (PluginError, ConfigError, TimeoutError) as exc:
        log.error("rolling back %s failed: %s", done.action, exc)
        return Step(ResultStatus.FAILED, f"{why}; rolling back with {action} failed: {exc}")
    return Step(ResultStatus.ROLLED_BACK, f"{why}; rolled back: {undone.output}")
