import pytest

from kubestack.errors import ConfigError
from kubestack.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("KUBESTACK_"):
            monkeypatch.delenv(name)


def test_defaults_are_a_local_stack(tmp_path) -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert settings.local_kafka.controller_port == 19093, "9093 belongs to Alertmanager"
    assert str(settings.home).endswith(".local/share/kubestack")


def test_environment_overrides_yaml_and_nested_names_use_double_underscore(tmp_path, monkeypatch) -> None:
    config = tmp_path / "kubestack.yaml"
    config.write_text("tenant: acme\nkafka:\n  bootstrap: file:9092\n  topic_prefix: staging.\n")
    monkeypatch.setenv("KUBESTACK_KAFKA__BOOTSTRAP", "env:9092")
    settings = load_settings(config)
    assert (settings.tenant, settings.kafka.bootstrap, settings.kafka.topic_prefix) == ("acme", "env:9092", "staging.")


def test_config_file_can_come_from_the_environment(tmp_path, monkeypatch) -> None:
    config = tmp_path / "k.yaml"
    config.write_text("log_level: DEBUG\n")
    monkeypatch.setenv("KUBESTACK_CONFIG", str(config))
    assert load_settings().log_level == "DEBUG"


def test_bootstrap_shortcut(monkeypatch) -> None:
    monkeypatch.setenv("KUBESTACK_KAFKA_BOOTSTRAP", "a:1,b:2")
    assert load_settings().kafka.bootstrap_servers == ["a:1", "b:2"]


def test_secrets_never_show_in_repr_or_dumps(monkeypatch) -> None:
    monkeypatch.setenv("KUBESTACK_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KUBESTACK_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KUBESTACK_KAFKA__SASL_USERNAME", "svc")
    monkeypatch.setenv("KUBESTACK_KAFKA__SASL_PASSWORD", "hunter2")
    settings = load_settings()
    assert settings.kafka.sasl_password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings) and "hunter2" not in settings.model_dump_json()


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("kafka:\n  security_protocol: SASL_SSL\n", "needs sasl_mechanism, sasl_username and sasl_password"),
        ("local_kafka:\n  port: 70000\n", "local_kafka.port"),
        ("kafak:\n  bootstrap: x\n", "kafak: Extra inputs are not permitted"),
    ],
)
def test_bad_settings_say_where_and_what(tmp_path, yaml_text, message) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(config)
    assert str(config) in str(caught.value)


def test_missing_config_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml")
