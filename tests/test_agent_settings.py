"""The agent reads its settings without pydantic-settings (``kubestack.agents.settings``): the same answers as
``load_settings`` for what the agent uses, from the same file and environment, and none of pydantic-settings'
modules in the agent process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from kubestack.agents.settings import load_agent_settings
from kubestack.errors import ConfigError
from kubestack.settings import load_settings

FILE = {"home": "/srv/kubestack", "log_level": "WARNING", "tenant": "shop",
        "kafka": {"bootstrap": "broker-a:9092", "client_id": "from-file", "request_timeout_s": 12,
                  "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                  "components": {"agent": {"username": "agent", "password": "file-secret"}}},
        "worker": {"app_id": "not-the-agents"}}

CASES = {
    "defaults": (None, {}),
    "file": (FILE, {}),
    "environment over the file, merged": (FILE, {"KUBESTACK_KAFKA__BOOTSTRAP": "broker-b:9092",
                                                 "KUBESTACK_LOG_LEVEL": "DEBUG",
                                                 "kubestack_kafka__components__agent__password": "env-secret"}),
    "a section as JSON": (None, {"KUBESTACK_KAFKA": '{"bootstrap": "json:9092", "topic_prefix": "staging."}',
                                 "KUBESTACK_HOME": "/var/lib/ks"}),
    "the bootstrap shortcut is strongest": (FILE, {"KUBESTACK_KAFKA__BOOTSTRAP": "nested:9092",
                                                   "KUBESTACK_KAFKA_BOOTSTRAP": "shortcut:9092"}),
}


def _agent_view(settings) -> dict:
    return {"home": settings.home, "log_level": settings.log_level,
            "kafka": settings.kafka.model_dump() | {"sasl_password": None,
                                                    "components": {k: (v.username, v.password.get_secret_value())
                                                                   for k, v in settings.kafka.components.items()}}}


@pytest.mark.parametrize("case", list(CASES))
def test_the_agent_reads_what_load_settings_reads(case: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    content, environment = CASES[case]
    for name in [n for n in os.environ if n.upper().startswith("KUBESTACK_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    path = None
    if content is not None:
        path = tmp_path / "settings.yaml"
        path.write_text(yaml.safe_dump(content))
    assert _agent_view(load_agent_settings(path)) == _agent_view(load_settings(path))


def test_wrong_agent_settings_are_a_config_error_naming_the_file(tmp_path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"security_protocol": "SASL_SSL"}}))
    with pytest.raises(ConfigError, match=f"invalid settings in {path}: .*sasl_mechanism"):
        load_agent_settings(path, environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_agent_settings(tmp_path / "missing.yaml", environ={})


def test_the_agent_process_imports_no_pydantic_settings() -> None:
    code = ("import sys\n"
            "from kubestack.agents.__main__ import agent_config, run\n"
            "from kubestack.agents.runtime import Agent\n"
            "from kubestack.agents.settings import load_agent_settings\n"
            "for kind in ('redis', 'mysql', 'postgresql', 'kafka', 'host'):\n"
            "    __import__(f'kubestack.plugins.{kind}.plugin')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic_settings' or m == 'kubestack.settings'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout
