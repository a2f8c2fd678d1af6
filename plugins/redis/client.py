"""What the Redis plugin asks of a server, and two ways to ask it: a direct connection (redis.asyncio) or
``redis-cli`` run through a ``CommandRunner`` (locally or over SSH). Both return the same raw shapes, parsed by
the same functions in ``parse``; both turn connection failures into ``TargetError`` subclasses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, Protocol

from kubestack.errors import (
    CommandFailedError,
    TargetAuthError,
    TargetError,
    TargetTimeoutError,
    TargetUnreachableError,
)
from kubestack.plugins.base import CommandRunner
from kubestack.plugins.redis.config import RedisConfig
from kubestack.plugins.redis.parse import SlowlogEntry, parse_config_pairs, parse_slowlog
from kubestack.plugins.redis.resp import RespAuthError, RespConnection, RespError, RespProtocolError

_AUTH_MARKERS = ("NOAUTH", "WRONGPASS", "AUTH failed", "invalid password")


class RedisClient(Protocol):
    async def info(self) -> str:
        """Raw ``INFO`` text (default sections: server, clients, memory, persistence, stats, replication, cpu,
        keyspace, ...)."""
        ...

    async def config_get(self, pattern: str = "*") -> dict[str, str]: ...

    async def slowlog_len(self) -> int: ...

    async def slowlog_get(self, count: int) -> list[SlowlogEntry]: ...

    async def client_list(self) -> str:
        """Raw ``CLIENT LIST`` text."""
        ...

    async def config_set(self, name: str, value: str) -> None: ...

    async def client_kill(self, client_id: int) -> int:
        """``CLIENT KILL ID``: how many clients were disconnected (0 when it was gone already)."""
        ...

    async def close(self) -> None: ...


class DirectRedisClient:
    """One connection of our own (``resp``: redis-py's import cost the agent 7 MB), opened on first use; no retries
    (the agent has its own rhythm)."""

    def __init__(self, config: RedisConfig) -> None:
        self._config = config
        self._redis: RespConnection | None = None

    def _connection(self) -> RespConnection:
        if self._redis is None:
            c = self._config
            self._redis = RespConnection(c.host, c.port, c.unix_socket, c.user,
                                         c.password.resolve() if c.password else None, c.timeout_s)
        return self._redis

    async def _call(self, *args: Any) -> Any:
        where = self._config.address
        try:
            return await self._connection().execute(*args)
        except RespError as exc:
            if str(exc).startswith("NOPERM"):
                raise TargetAuthError(f"Redis at {where}: {self._config.user or 'default'} may not run "
                                      f"{' '.join(map(str, args[:2]))}: {exc}") from exc
            if isinstance(exc, RespAuthError) or str(exc).startswith(_AUTH_MARKERS):
                raise TargetAuthError(f"Redis at {where} refused the credentials: {exc}") from exc
            raise CommandFailedError(["redis", *map(str, args)], 1, str(exc)) from exc
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise TargetTimeoutError(f"Redis at {where} gave no answer in {self._config.timeout_s:g}s") from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise TargetUnreachableError(f"Redis at {where} cannot be reached: {exc}") from exc
        except RespProtocolError as exc:
            raise TargetUnreachableError(f"{where} does not speak the Redis protocol: {exc}") from exc

    async def info(self) -> str:
        return await self._call("INFO")

    async def config_get(self, pattern: str = "*") -> dict[str, str]:
        return parse_config_pairs(await self._call("CONFIG", "GET", pattern))

    async def slowlog_len(self) -> int:
        return int(await self._call("SLOWLOG", "LEN"))

    async def slowlog_get(self, count: int) -> list[SlowlogEntry]:
        return parse_slowlog(await self._call("SLOWLOG", "GET", count))

    async def client_list(self) -> str:
        return await self._call("CLIENT", "LIST")

    async def config_set(self, name: str, value: str) -> None:
        await self._call("CONFIG", "SET", name, value)

    async def client_kill(self, client_id: int) -> int:
        return int(await self._call("CLIENT", "KILL", "ID", str(client_id)))

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.close()
            self._redis = None


def classify_cli_error(stderr: str, where: str) -> TargetError | None:
    """The ``TargetError`` a failed ``redis-cli -e`` run means, or None for an ordinary command error."""
    if "Could not connect to Redis" in stderr or "Connection refused" in stderr:
        return TargetUnreachableError(f"Redis at {where} cannot be reached: {stderr.strip()}")
    if "NOPERM" in stderr:
        return TargetAuthError(f"Redis at {where}: the user lacks a permission: {stderr.strip()}")
    if any(marker in stderr for marker in _AUTH_MARKERS):
        return TargetAuthError(f"Redis at {where} refused the credentials: {stderr.strip()}")
    if "timed out" in stderr.lower():
        return TargetTimeoutError(f"Redis at {where} gave no answer: {stderr.strip()}")
    return None


class CliRedisClient:
    """``redis-cli`` through a runner. The password goes in on stdin (``--askpass``), never on the command line;
    ``-e`` makes error replies exit non-zero; structured replies are read as JSON (redis-cli 7+)."""

    def __init__(self, config: RedisConfig, runner: CommandRunner) -> None:
        self._config = config
        self._runner = runner

    def _argv(self, args: Sequence[str], *, as_json: bool, with_password: bool) -> list[str]:
        c = self._config
        argv = [c.cli, "-s", c.unix_socket] if c.unix_socket else [c.cli, "-h", c.host, "-p", str(c.port)]
        if c.user:
            argv += ["--user", c.user]
        if with_password:
            argv.append("--askpass")
        argv += ["-e", "--no-auth-warning"]
        if as_json:
            argv += ["--json", "-2"]
        return argv + list(args)

    async def _run(self, *args: str, as_json: bool = False) -> Any:
        password = self._config.password.resolve() if self._config.password else None
        argv = self._argv(args, as_json=as_json, with_password=password is not None)
        try:
            out = await self._runner.run(argv, timeout=self._config.timeout_s,
                                         stdin=f"{password}\n" if password is not None else None)
        except CommandFailedError as exc:
            error = classify_cli_error(exc.stderr, self._config.address)
            if error is not None:
                raise error from exc
            raise
        if not as_json:
            return out
        try:
            return json.loads(out)
        except ValueError as exc:
            raise CommandFailedError(argv, 0, f"output is not JSON (redis-cli 7+ needed): {out[:200]!r}") from exc

    async def info(self) -> str:
        return await self._run("INFO")

    async def config_get(self, pattern: str = "*") -> dict[str, str]:
        return parse_config_pairs(await self._run("CONFIG", "GET", pattern, as_json=True))

    async def slowlog_len(self) -> int:
        return int(await self._run("SLOWLOG", "LEN", as_json=True))

    async def slowlog_get(self, count: int) -> list[SlowlogEntry]:
        return parse_slowlog(await self._run("SLOWLOG", "GET", str(count), as_json=True))

    async def client_list(self) -> str:
        return await self._run("CLIENT", "LIST")

    async def config_set(self, name: str, value: str) -> None:
        await self._run("CONFIG", "SET", name, value)

    async def client_kill(self, client_id: int) -> int:
        return int(await self._run("CLIENT", "KILL", "ID", str(client_id), as_json=True))

    async def close(self) -> None:
        """Nothing to close: every call is its own ``redis-cli`` process."""
