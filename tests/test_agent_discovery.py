"""Discovery for `make run`: the host and the agent always, middleware that answers on its default port."""

import socket

from kubestack.agents.discovery import discover_local
from kubestack.plugins.registry import plugins


def test_host_and_agent_are_always_watched() -> None:
    targets = {t.type: t for t in discover_local()}
    assert {"host", "agent"} <= set(targets)
    assert targets["host"].name == socket.gethostname()


def test_discovered_configs_validate_against_their_plugins() -> None:
    for target in discover_local():
        plugins()[target.type].config_model.model_validate(target.config)
