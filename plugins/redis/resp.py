"""One Redis connection speaking RESP2 itself, for the few commands the plugin sends (``INFO``, ``CONFIG``,
``SLOWLOG``, ``CLIENT``): redis-py's import alone (its sync and async clients, cluster, sentinel and every command
module) cost the agent about 7 MB resident for them. Replies come back raw, as redis-py gives them with
``decode_responses``: simple and bulk strings as ``str``, integers as ``int``, arrays as lists, nil as None.
"""

from __future__ import annotations

import asyncio
from typing import Any

_MAX_BULK = 512 * 1024 * 1024


class RespError(Exception):
    """The server answered with an error reply (``-ERR ...``, ``-NOAUTH ...``): its text."""


class RespAuthError(RespError):
    """The server refused ``AUTH``."""


class RespProtocolError(Exception):
    """What came back is not RESP2."""


def encode_command(args: tuple[Any, ...]) -> bytes:
    parts = [str(a).encode() if not isinstance(a, bytes) else a for a in args]
    return b"".join([b"*%d\r\n" % len(parts), *(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)])


async def read_reply(reader: asyncio.StreamReader) -> Any:
    """One reply; ``RespError`` for an error reply, ``RespProtocolError`` for anything else that is not RESP2,
    ``asyncio.IncompleteReadError`` when the connection ends."""
    line = await reader.readuntil(b"\r\n")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode(errors="replace")
    if kind == b"-":
        raise RespError(body.decode(errors="replace"))
    if kind in (b":", b"$", b"*"):
        try:
            number = int(body)
        except ValueError as exc:
            raise RespProtocolError(f"bad length or integer {body[:40]!r}") from exc
        if kind == b":":
            return number
        if number < 0:
            return None
        if kind == b"$":
            if number > _MAX_BULK:
                raise RespProtocolError(f"bulk string of {number} bytes")
            return (await reader.readexactly(number + 2))[:-2].decode(errors="replace")
        return [await read_reply(reader) for _ in range(number)]
    raise RespProtocolError(f"unexpected reply {line[:40]!r}")


class RespConnection:
    """Opened on first use, logged in (``AUTH``), one command at a time; closed on any failure so that the next
    call starts afresh (no retries: the agent has its own rhythm)."""

    def __init__(self, host: str, port: int, unix_socket: str | None, username: str | None, password: str | None,
                 timeout_s: float) -> None:
        self._where = (host, port, unix_socket)
        self._auth = (username, password)
        self._timeout_s = timeout_s
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port, unix_socket = self._where
        opening = asyncio.open_unix_connection(unix_socket) if unix_socket else asyncio.open_connection(host, port)
        reader, writer = await asyncio.wait_for(opening, self._timeout_s)
        self._streams = reader, writer
        username, password = self._auth
        if password is not None:
            try:
                await self._send(("AUTH", username, password) if username else ("AUTH", password))
            except RespError as exc:
                raise RespAuthError(str(exc)) from exc
        return reader, writer

    async def _send(self, args: tuple[Any, ...]) -> Any:
        assert self._streams is not None
        reader, writer = self._streams
        writer.write(encode_command(args))
        await asyncio.wait_for(writer.drain(), self._timeout_s)
        return await asyncio.wait_for(read_reply(reader), self._timeout_s)

    async def execute(self, *args: Any) -> Any:
        """The raw reply of one command. On an error reply the connection stays; on anything else it closes."""
        async with self._lock:
            if self._streams is None:
                try:
                    await self._open()
                except BaseException:  # refused, timed out, or the login was: nothing half-open stays
                    await self._close_now()
                    raise
            try:
                return await self._send(args)
            except RespError:
                raise
            except BaseException:
                await self._close_now()
                raise

    async def _close_now(self) -> None:
        streams, self._streams = self._streams, None
        if streams is not None:
            streams[1].close()
            try:
                await streams[1].wait_closed()
            except OSError:
                pass

    async def close(self) -> None:
        await self._close_now()
