"""Following log files: positions kept across restarts, rotation (rename or copytruncate) handled,
partial lines held until complete. Polling, not inotify: it works the same on every filesystem."""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024


@dataclass(frozen=True)
class TailedLine:
    path: str
    offset: int
    text: str


class FileTail:
    """One file. ``position`` is ``{"inode": int, "offset": int}`` to resume from (None: start at the end)."""

    def __init__(self, path: str, position: dict | None, from_start: bool = False) -> None:
        self.path = path
        self._file = None
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""
        self._open(position, from_start)

    def _open(self, position: dict | None, from_start: bool) -> None:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - kept open across polls on purpose
        except OSError:
            return
        inode = os.fstat(f.fileno()).st_ino
        size = os.fstat(f.fileno()).st_size
        if position and position.get("inode") == inode and position.get("offset", 0) <= size:
            offset = position["offset"]
        elif position and position.get("inode") != inode:
            offset = 0  # rotated while we were away: the new file is all new
        else:
            offset = 0 if from_start else size
        f.seek(offset)
        self._file, self._inode, self._offset, self._partial = f, inode, offset, b""

    @property
    def position(self) -> dict | None:
        if self._inode is None:
            return None
        return {"inode": self._inode, "offset": self._offset - len(self._partial)}

    def poll(self, max_lines: int = 10_000) -> list[TailedLine]:
        if self._file is None:
            self._open(None, from_start=True)
            if self._file is None:
                return []
        lines = self._drain(max_lines)
        if len(lines) >= max_lines:
            return lines
        rotation = self._rotation()
        if rotation == "renamed":
            lines += self._drain(max_lines - len(lines))  # the rest of the old file first
            self._file.close()
            self._file, self._inode = None, None
            self._open(None, from_start=True)
        elif rotation == "truncated":
            log.info("%s was truncated; reading from the start", self.path)
            self._file.seek(0)
            self._offset, self._partial = 0, b""
        if rotation and self._file is not None:
            lines += self._drain(max_lines - len(lines))
        return lines

    def _rotation(self) -> str | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None  # moved away and not yet recreated: keep reading the old one
        if st.st_ino != self._inode:
            return "renamed"
        if st.st_size < self._offset:
            return "truncated"  # copytruncate
        return None

    def _drain(self, max_lines: int) -> list[TailedLine]:
        out: list[TailedLine] = []
        while len(out) < max_lines:
            chunk = self._file.readline(MAX_LINE)
            if not chunk:
                break
            start = self._offset - len(self._partial)
            self._offset += len(chunk)
            if not chunk.endswith(b"\n") and len(chunk) < MAX_LINE:
                self._partial += chunk
                continue
            text = (self._partial + chunk).rstrip(b"\r\n").decode("utf-8", errors="replace")
            self._partial = b""
            out.append(TailedLine(self.path, start, text))
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class GlobTail:
    """Every file matching a pattern; files that appear later are read from their start."""

    def __init__(self, pattern: str, positions: dict[str, dict]) -> None:
        self.pattern = pattern
        self._tails = {path: FileTail(path, positions.get(path)) for path in sorted(glob.glob(pattern))}

    def poll(self, max_lines: int = 10_000) -> list[TailedLine]:
        for path in sorted(glob.glob(self.pattern)):
            if path not in self._tails:
                self._tails[path] = FileTail(path, None, from_start=True)
        lines: list[TailedLine] = []
        for tail in self._tails.values():
            lines += tail.poll(max_lines - len(lines))
        return lines

    @property
    def positions(self) -> dict[str, dict]:
        return {path: pos for path, tail in self._tails.items() if (pos := tail.position) is not None}

    def close(self) -> None:
        for tail in self._tails.values():
            tail.close()
