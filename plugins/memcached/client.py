"""One connection to Memcached's text protocol (asyncio streams), opened on first use and again after a failure;
``stats`` replies come back raw (``STAT name value`` lines up to ``END``) for the parsers, connection failures as
``TargetError`` subclasses."""

from __future__ import annotations

import asyncio
from typing import Protocol

from kubestack.errors import CommandFailedError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.memcached.config import MemcachedConfig

_ERRORS = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")
_REPLY_LIMIT = 16 * 1024 * 1024
"""Largest reply read (``stats conns`` of a server with thousands of connections runs to megabytes)."""


class MemcachedClient(Protocol):
    async def stats(self, section: str = "") -> str:
        """Raw ``stats [section]`` reply, ``END`` left out."""
        ...

    async def command(self, line: str) -> str:
        """A command answered by one line (``cache_memlimit 64`` → ``OK``); an error reply raises
        ``CommandFailedError``."""
        ...

    def local_address(self) -> str | None:
        """``ip:port`` of this client's own connection (to tell it apart in ``stats conns``)."""
        ...

    async def close(self) -> None: ...


class DirectMemcachedClient:
    def __init__(self, config: MemcachedConfig) -> None:
        self._config = config
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._streams is None:
            c = self._config
            try:
                opening = (asyncio.open_unix_connection(c.unix_socket, limit=_REPLY_LIMIT) if c.unix_socket
                           else asyncio.open_connection(c.host, c.port, limit=_REPLY_LIMIT))
                self._streams = await asyncio.wait_for(opening, c.timeout_s)
            except TimeoutError as exc:
                raise TargetTimeoutError(f"Memcached at {c.address} did not accept in {c.timeout_s:g}s") from exc
            except OSError as exc:
                raise TargetUnreachableError(f"Memcached at {c.address} cannot be reached: {exc}") from exc
        return self._streams

    async def _exchange(self, line: str, *, until_end: bool) -> bytes:
        if "\r" in line or "\n" in line:
            raise ValueError("a command is one line")
        async with self._lock:
            reader, writer = await self._connect()
            try:
                writer.write(line.encode() + b"\r\n")
                await writer.drain()
                reading = reader.readuntil(b"END\r\n") if until_end else reader.readline()
                reply = await asyncio.wait_for(reading, self._config.timeout_s)
            except TimeoutError as exc:
                await self._drop()
                raise TargetTimeoutError(f"Memcached at {self._config.address} gave no answer to {line.split()[0]} "
                                         f"in {self._config.timeout_s:g}s") from exc
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                await self._drop()
                raise TargetUnreachableError(f"Memcached at {self._config.address} closed the connection: "
                                             f"{exc}") from exc
        if reply.startswith(_ERRORS):
            raise CommandFailedError(["memcached", line], 1, reply.decode(errors="replace").strip())
        return reply

    async def stats(self, section: str = "") -> str:
        reply = await self._exchange(f"stats {section}".strip(), until_end=True)
        return reply.decode(errors="replace").removesuffix("END\r\n")

    async def command(self, line: str) -> str:
        return (await self._exchange(line, until_end=False)).decode(errors="replace").strip()

    def local_address(self) -> str | None:
        if self._streams is None:
            return None
        name = self._streams[1].get_extra_info("sockname")
        if not isinstance(name, tuple):
            return None
        return f"[{name[0]}]:{name[1]}" if ":" in name[0] else f"{name[0]}:{name[1]}"

    async def _drop(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def close(self) -> None:
        await self._drop()
