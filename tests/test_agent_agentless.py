"""Agentless collection: the plugins run the middleware's own CLIs over a real SSH connection (real sshd,
real Redis/PostgreSQL, the host's /proc), through the same parsers as a direct connection."""

import pytest

from kubestack.agents.config import TargetConfig
from kubestack.agents.targets import runner_for
from kubestack.agents.ssh import SSHRunner
from kubestack.plugins.registry import get_plugin


def _ssh(sshd) -> dict:
    return {"host": sshd.host, "port": sshd.port, "user": sshd.user, "key_file": str(sshd.client_key),
            "known_hosts": str(sshd.known_hosts)}


@pytest.fixture()
async def runner(sshd):
    runner = runner_for(TargetConfig(type="host", name="remote", ssh=_ssh(sshd)))
    assert isinstance(runner, SSHRunner)
    yield runner
    await runner.close()


async def _collect(name: str, config: dict, runner) -> dict[str, float]:
    plugin_cls = get_plugin(name)
    plugin = plugin_cls.create(plugin_cls.config_model.model_validate(config), runner)
    try:
        return {s.name: s.value for s in await plugin.collect() if not s.labels}
    finally:
        await plugin.close()


async def test_host_over_ssh(runner) -> None:
    values = await _collect("host", {}, runner)
    assert values["host_memory_total_bytes"] > 0 and "host_load1" in values


async def test_redis_over_ssh(runner, redis_server) -> None:
    values = await _collect("redis", {"host": redis_server.host, "port": redis_server.port,
                                      "password": {"value": redis_server.password}}, runner)
    assert values["redis_used_memory_bytes"] > 0 and "redis_connected_clients" in values


async def test_postgresql_over_ssh(runner, postgresql_server) -> None:
    server = postgresql_server
    values = await _collect("postgresql", {"host": server.host, "port": server.port, "user": server.user,
                                           "password": {"value": server.password}, "dbname": server.dbname}, runner)
    assert any(name.startswith("postgresql_") for name in values)
