"""Targets for this machine: plugins that always apply locally (``always_local``: the host, the agent
itself), plus every plugin whose server answers on its default local port (``default_port``), configured
with the plugin's example config. And targets that configured targets reveal (``TargetDiscovery``: the
middleware running in a Kubernetes cluster)."""

from __future__ import annotations

import logging
import socket

from pydantic import ValidationError

from kubestack.agents.config import TargetConfig
from kubestack.errors import ConfigError, PluginError, validation_problems
from kubestack.plugins.base import TargetDiscovery
from kubestack.plugins.registry import get_plugin, plugins

log = logging.getLogger(__name__)


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def discover_local(interval: float = 10.0) -> list[TargetConfig]:
    hostname = socket.gethostname()
    targets = []
    for name, plugin in plugins().items():
        port = getattr(plugin, "default_port", None)
        if getattr(plugin, "always_local", False):
            targets.append(TargetConfig(type=name, name=hostname, interval=interval, config=plugin.example_config()))
        elif port is not None and _answers(port):
            config = plugin.example_config()
            if "port" in plugin.config_model.model_fields:
                config["port"] = port
            targets.append(TargetConfig(type=name, name=f"{name}-{port}", interval=interval, config=config))
    return targets


def discover_from(targets: list[TargetConfig]) -> list[TargetConfig]:
    """The targets each configured target's plugin finds (at start); one that cannot look (its source is away, a
    wrong setting) is logged and finds none: the agent starts anyway."""
    return [t for found in discover_each(targets).values() if found for t in found]


def finds_targets(targets: list[TargetConfig]) -> bool:
    """Whether any configured target's plugin can find others."""
    return any(t.found_by is None and isinstance(get_plugin(t.type), TargetDiscovery) for t in targets)


def discover_each(targets: list[TargetConfig]) -> dict[str, list[TargetConfig] | None]:
    """Per discovering target (``type/name``), the targets it finds now, or None when it cannot look. Blocking. A
    name found twice (two clusters) is suffixed with ``@cluster``; each found target names its finder
    (``found_by``)."""
    found: dict[str, list[TargetConfig] | None] = {}
    taken = {(t.type, t.name) for t in targets}
    for target in targets:
        plugin = get_plugin(target.type)
        if not isinstance(plugin, TargetDiscovery) or target.found_by is not None:
            continue
        finder = f"{target.type}/{target.name}"
        try:
            config = plugin.config_model.model_validate(target.config)
            dicts = plugin.discover(config)
        except ValidationError as exc:
            log.warning("target %s: %s", finder, validation_problems(exc))
            found[finder] = None
            continue
        except (PluginError, ConfigError) as exc:
            log.warning("target %s cannot discover targets now: %s", finder, exc)
            found[finder] = None
            continue
        found[finder] = []
        for data in dicts:
            if (data["type"], data["name"]) in taken:
                data = data | {"name": f"{data['name']}@{data.get('cluster') or target.name}"}
            if (data["type"], data["name"]) in taken:
                continue
            taken.add((data["type"], data["name"]))
            found[finder].append(TargetConfig.model_validate(data | {"found_by": finder}))
        log.info("target %s found %d target(s)", finder, len(dicts))
    return found


def changes(current: list[TargetConfig], found: dict[str, list[TargetConfig] | None],
            ) -> tuple[list[TargetConfig], list[TargetConfig]]:
    """(to add, to drop): what a new look changes among the found targets. A finder that could not look changes
    nothing (its targets keep running while its source is away); one whose target's settings moved is replaced."""
    mine = {(t.type, t.name): t for t in current if t.found_by is not None}
    added, dropped = [], []
    for finder, now in found.items():
        if now is None:
            continue
        fresh = {(t.type, t.name): t for t in now}
        dropped += [t for key, t in mine.items() if t.found_by == finder and fresh.get(key) != t]
        added += [t for key, t in fresh.items() if mine.get(key) != t]
    return added, dropped
