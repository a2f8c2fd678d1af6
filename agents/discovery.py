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
    """The targets each configured target's plugin finds (once, at start); one that cannot look (its source is
    away, a wrong setting) is logged and finds none: the agent starts anyway. A name found twice (two clusters)
    is suffixed with ``@cluster``."""
    found: list[TargetConfig] = []
    taken = {(t.type, t.name) for t in targets}
    for target in targets:
        plugin = get_plugin(target.type)
        if not isinstance(plugin, TargetDiscovery):
            continue
        try:
            config = plugin.config_model.model_validate(target.config)
            dicts = plugin.discover(config)
        except ValidationError as exc:
            log.warning("target %s/%s: %s", target.type, target.name, validation_problems(exc))
            continue
        except (PluginError, ConfigError) as exc:
            log.warning("target %s/%s cannot discover targets now: %s", target.type, target.name, exc)
            continue
        for data in dicts:
            if (data["type"], data["name"]) in taken:
                data = data | {"name": f"{data['name']}@{data.get('cluster') or target.name}"}
            if (data["type"], data["name"]) in taken:
                continue
            taken.add((data["type"], data["name"]))
            found.append(TargetConfig.model_validate(data))
        log.info("target %s/%s found %d target(s)", target.type, target.name, len(dicts))
    return found
