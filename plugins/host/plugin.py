"""The host plugin: CPU, load, memory and swap, filesystems, disk I/O, network, file handles and the middleware
processes of one machine, read from /proc (locally, or through a runner such as SSH); sysctl values as the
configuration snapshot; health rules. It offers no actions: host changes are left to people."""

from __future__ import annotations

from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Sample
from kubestack.plugins.base import ActionSpec, Capacity, CommandRunner, LogSource
from kubestack.plugins.host.capacity import CAPACITIES
from kubestack.plugins.host.checks import evaluate
from kubestack.plugins.host.client import CommandHostClient, HostClient, LocalHostClient
from kubestack.plugins.host.config import HostConfig
from kubestack.plugins.host.metrics import (
    cpu_samples,
    disk_io_samples,
    file_handle_samples,
    filesystem_samples,
    load_samples,
    memory_samples,
    network_samples,
    process_samples,
)
from kubestack.plugins.host.parse import (
    CpuTimes,
    DiskUsage,
    Observation,
    cpu_usage,
    parse_diskstats,
    parse_file_nr,
    parse_loadavg,
    parse_meminfo,
    parse_mounts,
    parse_net_dev,
    parse_stat,
    parse_vmstat,
)

SYSCTLS = ("/proc/sys/fs/file-max", "/proc/sys/vm/swappiness", "/proc/sys/vm/overcommit_memory",
           "/proc/sys/vm/dirty_ratio", "/proc/sys/vm/dirty_background_ratio", "/proc/sys/net/core/somaxconn",
           "/proc/sys/net/ipv4/tcp_max_syn_backlog", "/proc/sys/kernel/pid_max", "/proc/sys/vm/max_map_count")


class HostPlugin:
    """Host: CPU, load, memory, swap, disks, network, file handles and middleware processes from /proc."""

    name: ClassVar[str] = "host"
    config_model: ClassVar[type[HostConfig]] = HostConfig
    client_module: ClassVar[str] = "os"
    rules: ClassVar[tuple[str, ...]] = ("host.disk_space_low", "host.inodes_low", "host.memory_pressure",
                                        "host.swap_in_use", "host.load_high", "host.file_handles_near_max")
    symptoms: ClassVar[frozenset[str]] = frozenset({"host.load_high"})
    keywords: ClassVar[tuple[str, ...]] = ("disk", "inode", "cpu", "load average", "swap", "oom", "filesystem", "磁盘",
                                           "硬盘", "负载", "服务器", "主机", "内核")
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    always_local: ClassVar[bool] = True

    def __init__(self, config: HostConfig, client: HostClient) -> None:
        self.config = config
        self.client = client
        self._previous_cpu: CpuTimes | None = None

    @classmethod
    def create(cls, config: HostConfig, runner: CommandRunner | None = None) -> HostPlugin:
        return cls(config, LocalHostClient() if runner is None else CommandHostClient(config, runner))

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"processes": ["redis-server", "mariadbd", "postgres", "java"], "disk_high_ratio": 0.85}

    async def _disks(self) -> list[DiskUsage]:
        mounts = parse_mounts(await self.client.read("/proc/mounts"), set(self.config.skip_filesystems))
        return await self.client.disk_usage(mounts)

    async def observe(self) -> Observation:
        stat = parse_stat(await self.client.read("/proc/stat"), await self.client.clock_ticks())
        return Observation(memory=parse_meminfo(await self.client.read("/proc/meminfo")),
                           load=parse_loadavg(await self.client.read("/proc/loadavg")), cores=stat.cpu.cores,
                           file_handles=parse_file_nr(await self.client.read("/proc/sys/fs/file-nr")),
                           disks=await self._disks())

    async def collect(self) -> list[Sample]:
        stat = parse_stat(await self.client.read("/proc/stat"), await self.client.clock_ticks())
        usage = cpu_usage(self._previous_cpu, stat.cpu) if self._previous_cpu is not None else {}
        self._previous_cpu = stat.cpu
        memory = parse_meminfo(await self.client.read("/proc/meminfo"))
        vmstat = parse_vmstat(await self.client.read("/proc/vmstat"))
        load = parse_loadavg(await self.client.read("/proc/loadavg"))
        handles = parse_file_nr(await self.client.read("/proc/sys/fs/file-nr"))
        uptime = float((await self.client.read("/proc/uptime")).split()[0])
        disks = await self._disks()
        io = parse_diskstats(await self.client.read("/proc/diskstats"))
        network = parse_net_dev(await self.client.read("/proc/net/dev"))
        processes = await self.client.processes(self.config.processes)
        ts = utcnow()
        return (cpu_samples(stat, usage, ts) + load_samples(load, stat.cpu.cores, ts)
                + memory_samples(memory, vmstat, ts) + file_handle_samples(handles, ts)
                + [Sample(name="host_uptime_seconds", value=uptime, ts=ts)]
                + filesystem_samples(disks, ts) + disk_io_samples(io, ts) + network_samples(network, ts)
                + process_samples(processes, ts))

    async def snapshot_config(self) -> dict[str, str]:
        """A few kernel settings that middleware depends on (``fs.file-max``, ``vm.swappiness``, ...)."""
        snapshot = {}
        for path in SYSCTLS:
            key = path.removeprefix("/proc/sys/").replace("/", ".")
            snapshot[key] = " ".join((await self.client.read(path)).split())
        return snapshot

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=path) for path in self.config.log_paths]

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe(), self.config)

    def actions(self) -> list[ActionSpec]:
        return []

    async def close(self) -> None:
        await self.client.close()
