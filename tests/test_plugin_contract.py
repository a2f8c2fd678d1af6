"""One contract test over every installed plugin (as river's checks run over every estimator)."""

import pytest

from kubestack.plugins.base import ActionSpec, LogSource, Plugin, PluginConfig
from kubestack.plugins.registry import broken_plugins, client_installed, plugins

EXPECTED = {"redis", "mysql", "postgresql", "kafka", "host", "kubernetes"}


def test_the_first_plugins_are_installed_and_load() -> None:
    assert broken_plugins() == {}
    assert EXPECTED <= set(plugins())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_plugin_follows_the_protocol(name: str) -> None:
    plugin = plugins()[name]
    assert plugin.name == name
    assert issubclass(plugin.config_model, PluginConfig)
    assert client_installed(plugin), f"{plugin.client_module} should be a declared dependency"
    config = plugin.config_model.model_validate(plugin.example_config())
    instance = plugin.create(config)
    assert isinstance(instance, Plugin)
    actions = instance.actions()
    assert all(isinstance(a, ActionSpec) and a.id.startswith(f"{name}.") for a in actions)
    assert len({a.id for a in actions}) == len(actions)
    assert all(isinstance(s, LogSource) for s in instance.log_sources())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_plugin_config_rejects_unknown_keys(name: str) -> None:
    plugin = plugins()[name]
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        plugin.config_model.model_validate(plugin.example_config() | {"no_such_option": 1})
