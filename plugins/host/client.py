"""What the host plugin reads, and two ways to read it: on this machine (files and ``os.statvfs``), or through a
``CommandRunner`` (``cat``, ``df -P``/``df -Pi`` and a small ``sh`` loop over /proc), which works over SSH.
Both hand the same text to the same parsers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from kubestack.errors import TargetUnreachableError
from kubestack.plugins.base import CommandRunner
from kubestack.plugins.host.config import HostConfig
from kubestack.plugins.host.parse import (
    DiskUsage,
    Mount,
    ProcessFigures,
    merge_df,
    parse_df,
    parse_process,
    parse_process_dump,
)

# Prints, for each process whose comm is one of "$@": "==> <pid>", its stat, its status, "fds: <n or ?>".
# Only shell builtins run per process except for the matches, so a busy host costs little.
PROCESS_SCRIPT = r"""
for p in /proc/[0-9]*; do
  read -r c < "$p/comm" 2>/dev/null || continue
  for n in "$@"; do
    [ "$c" = "$n" ] || continue
    echo "==> ${p#/proc/}"
    cat "$p/stat" "$p/status" 2>/dev/null
    if ls "$p/fd" >/dev/null 2>&1; then echo "fds: $(ls "$p/fd" | wc -l)"; else echo "fds: ?"; fi
  done
done
"""


class HostClient(Protocol):
    async def read(self, path: str) -> str:
        """A /proc (or /sys) file's text."""
        ...

    async def disk_usage(self, mounts: list[Mount]) -> list[DiskUsage]: ...

    async def processes(self, names: list[str]) -> list[ProcessFigures]: ...

    async def clock_ticks(self) -> int: ...

    async def close(self) -> None: ...


class LocalHostClient:
    """Reads this machine's /proc directly."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._proc = proc

    async def read(self, path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise TargetUnreachableError(f"{path} cannot be read: {exc.strerror}") from exc

    async def disk_usage(self, mounts: list[Mount]) -> list[DiskUsage]:
        usage = []
        for m in mounts:
            try:
                st = os.statvfs(m.mountpoint)
            except OSError:  # gone, or not ours to look at
                continue
            usage.append(DiskUsage(m.mountpoint, m.device, m.fstype, size_bytes=st.f_blocks * st.f_frsize,
                                   used_bytes=(st.f_blocks - st.f_bfree) * st.f_frsize,
                                   available_bytes=st.f_bavail * st.f_frsize, inodes=st.f_files,
                                   inodes_used=st.f_files - st.f_ffree))
        return usage

    async def processes(self, names: list[str]) -> list[ProcessFigures]:
        wanted, ticks, figures = set(names), await self.clock_ticks(), []
        for entry in self._proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (entry / "comm").read_text().strip() not in wanted:
                    continue
                stat, status = (entry / "stat").read_text(), (entry / "status").read_text()
            except OSError:  # the process ended meanwhile
                continue
            try:
                fds: int | None = len(os.listdir(entry / "fd"))
            except OSError:
                fds = None
            figures.append(parse_process(int(entry.name), stat, status, fds, ticks))
        return figures

    async def clock_ticks(self) -> int:
        return os.sysconf("SC_CLK_TCK")

    async def close(self) -> None:
        """Nothing to close."""


class CommandHostClient:
    """The same reads as commands through a runner (locally or over SSH)."""

    def __init__(self, config: HostConfig, runner: CommandRunner) -> None:
        self._config = config
        self._runner = runner
        self._ticks: int | None = None

    async def _run(self, *argv: str) -> str:
        return await self._runner.run(list(argv), timeout=self._config.timeout_s)

    async def read(self, path: str) -> str:
        return await self._run("cat", path)

    async def disk_usage(self, mounts: list[Mount]) -> list[DiskUsage]:
        if not mounts:
            return []
        points = [m.mountpoint for m in mounts]
        blocks = parse_df(await self._run("df", "-P", "--", *points))
        inodes = parse_df(await self._run("df", "-Pi", "--", *points))
        return merge_df(mounts, blocks, inodes)

    async def processes(self, names: list[str]) -> list[ProcessFigures]:
        if not names:
            return []
        dump = await self._run("sh", "-c", PROCESS_SCRIPT, "sh", *names)
        return parse_process_dump(dump, await self.clock_ticks())

    async def clock_ticks(self) -> int:
        if self._ticks is None:
            self._ticks = int((await self._run("getconf", "CLK_TCK")).strip())
        return self._ticks

    async def close(self) -> None:
        """Nothing to close: the runner owns its connection."""
