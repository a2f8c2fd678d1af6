"""``kubestack diagnose TARGET`` against real servers: findings printed, exit codes a script can act on."""

from __future__ import annotations

import json

import pytest
import yaml

from kubestack.agents.config import TargetConfig
from kubestack.cli.diagnose import pick
from kubestack.errors import ConfigError
from tests.cli import cli_env, run
from tests.services.process import free_port
from tests.services.redis import start_redis


def test_pick_by_name_then_by_the_only_target_of_a_plugin() -> None:
    targets = [TargetConfig(type="redis", name="cache-a"), TargetConfig(type="redis", name="cache-b"),
               TargetConfig(type="host", name="box")]
    assert pick(targets, "cache-b").name == "cache-b"
    assert pick(targets, "host").name == "box"
    with pytest.raises(ConfigError, match="2 redis targets: name one of cache-a, cache-b"):
        pick(targets, "redis")
    with pytest.raises(ConfigError, match="no target 'mysql'; known: cache-a"):
        pick(targets, "mysql")


def _config(tmp_path, targets: list[dict]):
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"agent": {"name": "diag"}, "targets": targets}))
    return path


@pytest.fixture()
def own_redis(tmp_path):
    """A Redis of this test's own (the session's is reconfigured by other tests), without maxmemory."""
    process, server = start_redis("diag", tmp_path, "diag-secret")
    yield server
    process.stop()


def test_a_warning_exits_1_with_its_rule_and_an_unreachable_target_3(own_redis, tmp_path) -> None:
    config = _config(tmp_path, [
        {"type": "redis", "name": "cache",
         "config": {"host": "127.0.0.1", "port": own_redis.port, "password": {"value": own_redis.password}}},
        {"type": "redis", "name": "gone", "config": {"host": "127.0.0.1", "port": free_port(), "timeout_s": 1}},
    ])
    warned = run("diagnose", "cache", "--agent-config", str(config), env=cli_env())
    assert warned.returncode == 1, warned.stdout + warned.stderr
    assert "redis.no_maxmemory" in warned.stdout and "diag-secret" not in warned.stdout

    body = json.loads(run("diagnose", "cache", "--agent-config", str(config), "--json", env=cli_env()).stdout)
    assert body["exit_code"] == 1 and body["error"] is None
    assert "redis.no_maxmemory" in {f["rule_id"] for f in body["findings"]}

    own_redis.connect().config_set("maxmemory", "64mb")
    assert run("diagnose", "cache", "--agent-config", str(config), env=cli_env()).returncode == 0

    gone = run("diagnose", "gone", "--agent-config", str(config), env=cli_env())
    assert gone.returncode == 3, gone.stdout + gone.stderr
    assert "could not be checked" in gone.stdout
