"""Plugins are found through the ``kubestack.plugins`` entry-point group: adding one touches the plugin and
one ``pyproject.toml`` line, never a list in the core. A plugin that fails to import is reported, not fatal."""

from __future__ import annotations

import importlib.util
import logging
from functools import cache
from importlib.metadata import entry_points

from kubestack.errors import PluginNotFoundError
from kubestack.plugins.base import ActionSpec, Plugin

log = logging.getLogger(__name__)

GROUP = "kubestack.plugins"


@cache
def _load() -> tuple[dict[str, type[Plugin]], dict[str, str]]:
    loaded, broken = {}, {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            loaded[ep.name] = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take the others down
            broken[ep.name] = f"{type(exc).__name__}: {exc}"
            log.warning("plugin %s (%s) cannot be loaded: %s", ep.name, ep.value, broken[ep.name])
    return loaded, broken


def plugins() -> dict[str, type[Plugin]]:
    """Name → plugin class of every installed plugin that loads, sorted by name."""
    return _load()[0]


def broken_plugins() -> dict[str, str]:
    """Name → import error of installed plugins that do not load."""
    return _load()[1]


@cache
def get_plugin(name: str) -> type[Plugin]:
    """One plugin, loading only its own module (and client library): an agent watching Redis does not pay for
    every other plugin's imports."""
    for ep in entry_points(group=GROUP, name=name):
        try:
            return ep.load()
        except Exception as exc:
            raise PluginNotFoundError(f"plugin {name!r} is installed but broken: {type(exc).__name__}: {exc}") from exc
    known = ", ".join(ep.name for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)) or "none"
    raise PluginNotFoundError(f"no plugin {name!r}; installed: {known}")


def client_installed(plugin: type[Plugin]) -> bool:
    return importlib.util.find_spec(plugin.client_module) is not None


@cache
def action_specs(name: str) -> tuple[ActionSpec, ...]:
    """The actions plugin ``name`` offers (none when no such plugin is installed), read from an instance built on
    its example config: building one connects to nothing."""
    try:
        plugin = get_plugin(name)
    except PluginNotFoundError:
        return ()
    return tuple(plugin.create(plugin.config_model.model_validate(plugin.example_config())).actions())


@cache
def plugin_for_kind(kind: str) -> str | None:
    """The plugin whose targets report resources of ``kind``: the plugin of that name, else the one declaring the
    kind in its ``resource_kinds`` (the Kubernetes plugin's pods, nodes and workloads); None when no plugin does."""
    if kind in {ep.name for ep in entry_points(group=GROUP)}:
        return kind
    return next((name for name, plugin in plugins().items() if kind in getattr(plugin, "resource_kinds", ())), None)


def actions_for_kind(kind: str) -> tuple[ActionSpec, ...]:
    """The actions offered on resources of ``kind``, by the plugin that reports them."""
    owner = plugin_for_kind(kind)
    return action_specs(owner) if owner is not None else ()


@cache
def symptom_rules() -> frozenset[str]:
    """The rules every installed plugin declares as symptoms (what clients feel rather than a cause)."""
    return frozenset().union(*(getattr(plugin, "symptoms", frozenset()) for plugin in plugins().values()))
