"""The Redis plugin's own RESP2 connection (``plugins/redis/resp.py``, instead of redis-py, for the agent's
footprint) against a real Redis: the raw replies the parsers read, the actions, and each failure as the
``TargetError`` the collector counts."""

from __future__ import annotations

import asyncio
import socket

import pytest

from kubestack.errors import CommandFailedError, TargetAuthError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.base import SecretRef
from kubestack.plugins.redis.client import DirectRedisClient
from kubestack.plugins.redis.config import RedisConfig
from kubestack.plugins.redis.resp import RespConnection
from tests.services.process import free_port
from tests.services.redis import RedisServer


def _client(server: RedisServer, password: str | None = None, **config) -> DirectRedisClient:
    secret = SecretRef(value=password or server.password)
    return DirectRedisClient(RedisConfig(host=server.host, port=server.port, password=secret, **config))


def test_the_replies_the_parsers_read_and_the_actions(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        client, other = _client(redis_server), RespConnection(redis_server.host, redis_server.port, None, None,
                                                              redis_server.password, 5.0)
        try:
            info = await client.info()
            assert "redis_version:" in info and "# Memory" in info
            assert (await client.config_get("maxmemory-policy")).keys() == {"maxmemory-policy"}
            await client.config_set("slowlog-log-slower-than", "0")
            try:
                assert await client.slowlog_len() >= 1  # CONFIG SET itself was logged
                entries = await client.slowlog_get(5)
                assert entries and all(e.duration_us >= 0 for e in entries)
            finally:
                await client.config_set("slowlog-log-slower-than", "10000")
            assert await other.execute("CLIENT", "SETNAME", "resp-test-victim") == "OK"
            victim = int(await other.execute("CLIENT", "ID"))
            assert "name=resp-test-victim" in await client.client_list()
            assert await client.client_kill(victim) == 1
            assert await client.client_kill(victim) == 0  # gone already
        finally:
            await client.close()
            await other.close()

    asyncio.run(scenario())


def test_nil_arrays_and_an_error_reply_leave_the_connection_usable(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        connection = RespConnection(redis_server.host, redis_server.port, None, None, redis_server.password, 5.0)
        try:
            assert await connection.execute("GET", "resp-test-missing") is None
            assert await connection.execute("CONFIG", "GET", "no-such-parameter-*") == []
            client = _client(redis_server)
            with pytest.raises(CommandFailedError, match="unknown command"):
                await client._call("NO-SUCH-COMMAND")
            assert "redis_version" in await client.info()  # the same connection, after the error
            await client.close()
        finally:
            await connection.close()

    asyncio.run(scenario())


def test_failures_are_target_errors(redis_server: RedisServer) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts, never answers

    async def scenario() -> None:
        wrong = _client(redis_server, password="not-the-password")
        with pytest.raises(TargetAuthError, match="refused the credentials"):
            await wrong.info()
        closed = DirectRedisClient(RedisConfig(host="127.0.0.1", port=free_port(), timeout_s=2))
        with pytest.raises(TargetUnreachableError, match="cannot be reached"):
            await closed.info()
        mute = DirectRedisClient(RedisConfig(host="127.0.0.1", port=silent.getsockname()[1], timeout_s=1))
        with pytest.raises(TargetTimeoutError, match="no answer in 1s"):
            await mute.info()
        for client in (wrong, closed, mute):
            await client.close()

    try:
        asyncio.run(scenario())
    finally:
        silent.close()
