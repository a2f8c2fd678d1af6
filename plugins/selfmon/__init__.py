"""The agent watching itself: its memory, CPU, open files and collection rounds, so the pipeline notices an
agent in trouble the same way it notices a database in trouble. Reads ``/proc/self``."""

from __future__ import annotations

import os
import platform
import resource
import sys
from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Sample, Severity
from kubestack.plugins.base import ActionSpec, CommandRunner, LogSource, PluginConfig

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


class SelfConfig(PluginConfig):
    open_files_warning_ratio: float = 0.8


class SelfPlugin:
    """The agent process itself (memory, CPU, open files, collection rounds)."""

    name: ClassVar[str] = "agent"
    config_model: ClassVar[type[PluginConfig]] = SelfConfig
    client_module: ClassVar[str] = "resource"
    rules: ClassVar[tuple[str, ...]] = ("agent.open_files",)
    symptoms: ClassVar[frozenset[str]] = frozenset()
    keywords: ClassVar[tuple[str, ...]] = ()
    always_local: ClassVar[bool] = True

    def __init__(self, config: SelfConfig) -> None:
        self.config = config
        self.rounds = 0

    @classmethod
    def create(cls, config: SelfConfig, runner: CommandRunner | None = None) -> SelfPlugin:
        return cls(config)

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {}

    async def collect(self) -> list[Sample]:
        self.rounds += 1
        now = utcnow()
        stat = read_proc_stat(open("/proc/self/stat").read())
        values = {
            "agent_collect_rounds_total": float(self.rounds),
            "agent_resident_memory_bytes": float(stat["rss_pages"] * _PAGE),
            "agent_cpu_seconds_total": (stat["utime"] + stat["stime"]) / _TICKS,
            "agent_threads": float(stat["num_threads"]),
            "agent_open_fds": float(len(os.listdir("/proc/self/fd"))),
        }
        return [Sample(name=name, value=value, ts=now) for name, value in values.items()]

    async def snapshot_config(self) -> dict[str, str]:
        return {"python": sys.version.split()[0], "platform": platform.platform(), "pid": str(os.getpid())}

    def log_sources(self) -> list[LogSource]:
        return []

    async def check_health(self) -> list[Finding]:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        used = len(os.listdir("/proc/self/fd"))
        if soft > 0 and used / soft >= self.config.open_files_warning_ratio:
            return [Finding(rule_id="agent.open_files", severity=Severity.WARNING,
                            message=f"the agent uses {used} of {soft} file descriptors",
                            evidence={"open_fds": used, "limit": soft}, query="ls /proc/self/fd; RLIMIT_NOFILE")]
        return []

    def actions(self) -> list[ActionSpec]:
        return []

    async def close(self) -> None:
        return None


def read_proc_stat(text: str) -> dict[str, int]:
    """The fields we use from a ``/proc/<pid>/stat`` line (the command name may contain spaces)."""
    fields = text[text.rindex(")") + 2:].split()
    return {"utime": int(fields[11]), "stime": int(fields[12]), "num_threads": int(fields[17]),
            "rss_pages": int(fields[21])}
