"""One conformance suite over every plugin installed through the ``kubestack.plugins`` entry points (as river's checks
run over every estimator): no list of plugins here. Each must follow the protocol, declare a strict config, declare
its rules (each with a runbook) and actions (typed parameters; remedies that answer its own rules), and name
capacity series and runbook metrics that its own code produces. The live behaviour of each plugin is in its own
tests, against a real server."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from kubestack.agents.collector import TARGET_DOWN
from kubestack.contract.events import Risk
from kubestack.knowledge.runbook import load_runbooks, runbook_dirs
from kubestack.plugins.base import ActionParams, ActionRunner, ActionSpec, Capacity, LogSource, Plugin, PluginConfig
from kubestack.plugins.registry import GROUP, broken_plugins, client_installed, plugins

NAMES = sorted(ep.name for ep in entry_points(group=GROUP))
BOOKS = load_runbooks()


def package_source(name: str) -> str:
    """The source of the plugin's package (the folder of the module that defines it)."""
    folder = Path(inspect.getfile(plugins()[name])).parent
    return "\n".join(p.read_text() for p in sorted(folder.rglob("*.py")))


def instance(name: str) -> Plugin:
    plugin = plugins()[name]
    return plugin.create(plugin.config_model.model_validate(plugin.example_config()))


def test_every_entry_point_loads() -> None:
    assert broken_plugins() == {}
    assert NAMES and set(plugins()) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_plugin_follows_the_protocol(name: str) -> None:
    plugin = plugins()[name]
    assert plugin.name == name
    assert client_installed(plugin), f"{plugin.client_module} should be a declared dependency"
    built = instance(name)
    assert isinstance(built, Plugin)
    for method in ("collect", "snapshot_config", "check_health", "close"):
        assert inspect.iscoroutinefunction(getattr(built, method)), method
    assert all(isinstance(s, LogSource) for s in built.log_sources())


@pytest.mark.parametrize("name", NAMES)
def test_config_is_strict_and_its_example_is_valid(name: str) -> None:
    plugin = plugins()[name]
    assert issubclass(plugin.config_model, PluginConfig)
    plugin.config_model.model_validate(plugin.example_config())
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        plugin.config_model.model_validate(plugin.example_config() | {"no_such_option": 1})


@pytest.mark.parametrize("name", NAMES)
def test_rules_are_declared_complete_and_each_has_a_runbook(name: str) -> None:
    plugin = plugins()[name]
    rules = set(plugin.rules)
    assert len(rules) == len(plugin.rules) and all(r.startswith(f"{name}.") for r in rules), plugin.rules
    assert plugin.symptoms <= rules
    actions = {a.id for a in instance(name).actions()}
    written = set(re.findall(rf'"({re.escape(name)}\.[a-z_]+)"', package_source(name))) - actions
    assert sorted(written - rules) == [], "rule ids the plugin reports but does not declare"
    documented = {r for b in BOOKS for r in b.meta.signals.rules}
    assert sorted(rules - documented) == [], "rules without a runbook"


@pytest.mark.parametrize("name", NAMES)
def test_its_runbooks_name_its_own_rules_metrics_and_actions(name: str) -> None:
    books = [b for b in BOOKS if b.meta.middleware == name]
    assert bool(books) == (name in runbook_dirs())
    source = package_source(name)
    declared = {r for p in plugins().values() for r in p.rules} | {TARGET_DOWN}
    actions = {a.id for p in plugins() for a in instance(p).actions()}
    for book in books:
        assert set(book.meta.signals.rules) <= declared, book.id
        assert set(book.meta.actions) <= actions, book.id
        assert [m for m in book.meta.signals.metrics if m.startswith(f"{name}_") and m.split("{")[0] not in source
                and not _templated(m, source)] == [], book.id


def _templated(metric: str, source: str) -> bool:
    """Produced by an f-string name of the plugin (``f"host_load{n}"``)."""
    return any(re.fullmatch(re.sub(r"\{[^}]+\}", "[a-z0-9_]+", t), metric)
               for t in re.findall(r'f"([a-z_]+\{[^}"]+\}[a-z_]*)"', source))


@pytest.mark.parametrize("name", NAMES)
def test_actions_are_typed_and_answer_only_its_own_rules(name: str) -> None:
    built, plugin = instance(name), plugins()[name]
    actions = built.actions()
    assert all(isinstance(a, ActionSpec) and a.id.startswith(f"{name}.") for a in actions)
    assert len({a.id for a in actions}) == len(actions)
    for action in actions:
        assert issubclass(action.params, ActionParams), action.id
        schema = action.parameters
        assert schema["type"] == "object" and set(schema.get("properties", {})) == set(action.params.model_fields)
        assert all(f.description for f in action.params.model_fields.values()), f"{action.id}: undocumented params"
        if action.risk != Risk.FORBIDDEN:
            assert action.preconditions and action.rollback, action.id
        for remedy in action.answers:
            assert action.risk != Risk.FORBIDDEN, f"{action.id} is forbidden yet answers signals"
            assert isinstance(built, ActionRunner), f"{action.id} answers signals the plugin cannot act on"
            assert remedy.findings or remedy.changes or remedy.logs, action.id
            forecasts = {f"{c.used} exhaustion" for c in getattr(plugin, "capacities", ())}  # a forecast's cause
            assert set(remedy.findings) <= set(plugin.rules) | forecasts, action.id
            assert not remedy.changes or hasattr(plugin, "config_risks"), action.id
            for pattern in remedy.logs:
                re.compile(pattern)


@pytest.mark.parametrize("name", NAMES)
def test_capacity_series_are_its_own_metrics(name: str) -> None:
    plugin, source = plugins()[name], package_source(name)
    for capacity in getattr(plugin, "capacities", ()):
        assert isinstance(capacity, Capacity)
        assert (capacity.limit is None) != (capacity.limit_value is None), capacity
        for metric in filter(None, (capacity.used, capacity.limit)):
            assert metric.startswith(f"{name}_"), f"{metric}: a plugin's metrics are named <plugin>_<what>"
            assert f'"{metric}"' in source or _templated(metric, source), f"{name} does not produce {metric}"


@pytest.mark.parametrize("name", NAMES)
def test_keywords_are_lower_case_words(name: str) -> None:
    keywords = plugins()[name].keywords
    assert isinstance(keywords, tuple) and all(k and k == k.lower() for k in keywords), keywords
