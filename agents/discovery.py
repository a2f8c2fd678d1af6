"""Targets for this machine: plugins that always apply locally (``always_local``: the host, the agent
itself), plus every plugin whose server answers on its default local port (``default_port``), configured
with the plugin's example config."""

from __future__ import annotations

import socket

from kubestack.agents.config import TargetConfig
from kubestack.plugins.registry import plugins


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
