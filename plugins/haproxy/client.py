"""Asking HAProxy's runtime API (the ``stats socket``): one command per connection (the non-interactive mode, which
answers and closes), over the Unix socket or TCP, directly with asyncio or through ``socat`` run by a
``CommandRunner`` (locally or over SSH). Both return the raw text, parsed by ``parse``; both turn connection
failures into ``TargetError`` subclasses."""

from __future__ import annotations

import asyncio
from typing import Protocol

from kubestack.errors import CommandFailedError, TargetAuthError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.base import CommandRunner
from kubestack.plugins.haproxy.config import HAProxyConfig

MAX_ANSWER = 16 * 1024 * 1024
"""``show stat`` of a large configuration is a few MB; anything past this is not HAProxy."""


class RuntimeClient(Protocol):
    async def command(self, line: str) -> str:
        """The answer to one runtime API command (empty for a set command that succeeded)."""
        ...

    async def close(self) -> None: ...


def _checked(line: str) -> str:
    if not line or "\n" in line or ";" in line:
        raise ValueError(f"a runtime API command is one line without ';': {line!r}")
    return line + "\n"


def _denied(answer: str, where: str, line: str) -> str:
    if answer.strip().startswith("Permission denied"):
        raise TargetAuthError(f"HAProxy at {where}: the runtime API socket's level does not allow {line.split()[0]} "
                              f"{' '.join(line.split()[1:2])} (admin needed for actions, operator for reading)")
    return answer


class SocketRuntimeClient:
    """A connection per command with asyncio, to the Unix socket or to host:port."""

    def __init__(self, config: HAProxyConfig) -> None:
        self._config = config

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        c = self._config
        if c.socket:
            return await asyncio.open_unix_connection(c.socket, limit=MAX_ANSWER)
        return await asyncio.open_connection(c.host, c.port, limit=MAX_ANSWER)

    async def command(self, line: str) -> str:
        request, where, timeout = _checked(line), self._config.address, self._config.timeout_s
        try:
            reader, writer = await asyncio.wait_for(self._open(), timeout)
        except TimeoutError:
            raise TargetTimeoutError(f"HAProxy at {where} did not accept a connection in {timeout:g}s") from None
        except PermissionError as exc:
            raise TargetAuthError(f"HAProxy at {where}: no permission to open the runtime API socket: {exc}") from exc
        except OSError as exc:
            raise TargetUnreachableError(f"HAProxy's runtime API at {where} cannot be reached: "
                                         f"{exc.strerror or exc}") from exc
        try:
            writer.write(request.encode())
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(MAX_ANSWER), timeout)
        except TimeoutError:
            raise TargetTimeoutError(f"HAProxy at {where} gave no answer to {line.split()[0]} "
                                     f"in {timeout:g}s") from None
        except OSError as exc:
            raise TargetUnreachableError(f"HAProxy at {where} dropped the connection: {exc}") from exc
        finally:
            writer.close()
        return _denied(answer.decode(errors="replace"), where, line)

    async def close(self) -> None:
        """Nothing held open: every command is its own connection."""


class SocatRuntimeClient:
    """``socat - UNIX-CONNECT:<socket>`` (or ``TCP:host:port``) through a runner, the command on stdin."""

    def __init__(self, config: HAProxyConfig, runner: CommandRunner) -> None:
        self._config = config
        self._runner = runner

    async def command(self, line: str) -> str:
        c = self._config
        peer = f"UNIX-CONNECT:{c.socket}" if c.socket else f"TCP:{c.host}:{c.port}"
        try:
            answer = await self._runner.run([c.socat, "-", peer], timeout=c.timeout_s, stdin=_checked(line))
        except CommandFailedError as exc:
            if "Permission denied" in exc.stderr:
                raise TargetAuthError(f"HAProxy at {c.address}: no permission to open the runtime API socket") from exc
            if any(m in exc.stderr for m in ("Connection refused", "No such file", "No route")):
                raise TargetUnreachableError(f"HAProxy's runtime API at {c.address} cannot be reached: "
                                             f"{exc.stderr.strip()}") from exc
            raise
        return _denied(answer, c.address, line)

    async def close(self) -> None:
        """Nothing to close: every command is its own socat process."""
