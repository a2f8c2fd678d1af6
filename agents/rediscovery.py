"""Looking again: every ``agent.rediscover_interval`` the targets that find others (a Kubernetes cluster) are
asked again; new middleware gets a collector, middleware that is gone (or whose settings moved) loses its own.
A finder that cannot look now changes nothing."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from kubestack.agents.discovery import changes, discover_each
from kubestack.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from kubestack.agents.runtime import Agent

log = logging.getLogger(__name__)


async def look_again(agent: Agent) -> None:
    """One look: the agent's found targets brought in line with what their finders see now."""
    finders = [t for t in agent.config.targets if t.found_by is None]
    try:
        found = await asyncio.to_thread(discover_each, finders)
    except Exception:  # one per long-running loop: the next look is the retry
        log.exception("looking for targets again failed")
        return
    added, dropped = changes(agent.config.targets, found)
    for target in dropped:
        log.info("%s/%s is no longer found by %s: not watched any more", target.type, target.name, target.found_by)
        await agent.drop_target(target)
    for target in added:
        try:
            agent.add_target(target)
        except (ConfigError, PluginError) as exc:
            log.warning("found %s/%s but cannot watch it: %s", target.type, target.name, exc)
            continue
        log.info("%s found %s/%s: watching it", target.found_by, target.type, target.name)
