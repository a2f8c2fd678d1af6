"""Reading the new part of a log each round: a cursor per log and purpose starts at the end (no stale history
on the first round), reads what was appended since, at most ``max_bytes`` (the newest part when more came), and
starts over when the file was rotated (it got smaller)."""

from __future__ import annotations

from kubestack.plugins.nginx.client import NginxClient


class LogCursor:
    def __init__(self, client: NginxClient, path: str, max_bytes: int) -> None:
        self._client = client
        self.path = path
        self._max = max_bytes
        self._offset: int | None = None

    async def new_lines(self) -> list[str]:
        size = await self._client.size(self.path)
        if size is None:
            self._offset = 0
            return []
        if self._offset is None or size < self._offset:
            start = size if self._offset is None else 0
        else:
            start = self._offset
        start = max(start, size - self._max)
        if start >= size:
            self._offset = size
            return []
        data = await self._client.read_from(self.path, start, size - start)
        complete = data.rpartition(b"\n")[0]  # a line being written stays for the next round
        self._offset = start + len(complete) + (1 if complete or data.startswith(b"\n") else 0)
        return complete.decode(errors="replace").splitlines()
