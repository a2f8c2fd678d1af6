import pytest

from kubestack.agents.config import load_agent_config
from kubestack.agents.durations import parse_duration
from kubestack.agents.configdiff import diff, digest
from kubestack.errors import ConfigError


@pytest.mark.parametrize(("text", "seconds"), [("10s", 10), ("500ms", 0.5), ("5m", 300), ("1h", 3600), (15, 15)])
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


def test_agent_yaml_loads_with_defaults(tmp_path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("agent: {name: a1}\ntargets:\n  - {type: redis, name: c1, interval: 5s, labels: {service: shop}}\n")
    config = load_agent_config(path)
    target = config.targets[0]
    assert (target.interval, target.health_interval, target.labels) == (5.0, 60.0, {"service": "shop"})


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("targets:\n  - {type: redis, name: c1, interval: soon}\n", "targets.0.interval"),
        ("targets:\n  - {type: redis, name: c1}\n  - {type: redis, name: c1}\n", "listed twice"),
        ("targets:\n  - {type: redis, name: c1, intervall: 5s}\n", "intervall: Extra inputs"),
        ("targets: [\n", "not valid YAML"),
    ],
)
def test_bad_agent_config_says_where(tmp_path, yaml_text, message) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_agent_config(path)


def test_config_diff_and_digest() -> None:
    old = {"maxmemory": "2gb", "appendonly": "yes", "gone": "1"}
    new = {"maxmemory": "1gb", "appendonly": "yes", "added": "x"}
    assert [(c.key, c.old, c.new) for c in diff(old, new)] == [
        ("added", None, "x"), ("gone", "1", None), ("maxmemory", "2gb", "1gb")]
    assert digest(old) == digest(dict(reversed(old.items()))) != digest(new)


@pytest.mark.parametrize("listen", ["0.0.0.0:9465", ":9465", "10.0.0.5:9465", "db-1.example.com:9465"])
def test_an_alertmanager_receiver_beyond_loopback_needs_a_token(tmp_path, listen) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(f"alertmanager: {{listen: '{listen}'}}\n")
    with pytest.raises(ConfigError, match="alertmanager.token is required when the receiver listens beyond loopback"):
        load_agent_config(path)
    path.write_text(f"alertmanager: {{listen: '{listen}', token: {{env: ALERTMANAGER_TOKEN}}}}\n")
    assert load_agent_config(path).alertmanager.token is not None


def test_an_alertmanager_receiver_on_loopback_may_go_without_a_token(tmp_path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("alertmanager: {listen: '127.0.0.1:9465'}\n")
    assert load_agent_config(path).alertmanager.token is None
