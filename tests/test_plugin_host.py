"""The host plugin: parsers and rules on recorded /proc files and df output, then live on this machine, reading
/proc directly and through a LocalRunner (the path SSH collection takes)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kubestack.contract.events import Sample, Severity
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.host import HostConfig, HostPlugin
from kubestack.plugins.host.checks import evaluate
from kubestack.plugins.host.parse import (
    DiskUsage,
    Observation,
    cpu_usage,
    merge_df,
    parse_df,
    parse_diskstats,
    parse_file_nr,
    parse_loadavg,
    parse_meminfo,
    parse_mounts,
    parse_net_dev,
    parse_process_dump,
    parse_stat,
    parse_vmstat,
)

DATA = Path(__file__).parent / "data" / "host"
SKIP = set(HostConfig().skip_filesystems)


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def recorded_observation() -> Observation:
    mounts = parse_mounts(recorded("mounts.txt"), SKIP)
    return Observation(memory=parse_meminfo(recorded("meminfo.txt")), load=parse_loadavg(recorded("loadavg.txt")),
                       cores=parse_stat(recorded("stat.txt")).cpu.cores,
                       file_handles=parse_file_nr(recorded("file-nr.txt")),
                       disks=merge_df(mounts, parse_df(recorded("df-P.txt")), parse_df(recorded("df-Pi.txt"))))


def values(samples: list[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


# --- recorded output ------------------------------------------------------------------------------


def test_proc_stat_gives_cpu_seconds_cores_and_counters() -> None:
    stat = parse_stat(recorded("stat.txt"), clock_ticks=100)
    assert stat.cpu.cores == 2
    assert stat.cpu.seconds["user"] == pytest.approx(1670.78) and stat.cpu.seconds["idle"] == pytest.approx(3738.19)
    assert stat.counters["ctxt"] == 3207234 and stat.counters["processes"] == 42211


def test_cpu_usage_is_the_share_of_time_between_two_readings() -> None:
    before = parse_stat(recorded("stat.txt")).cpu
    after = parse_stat("cpu  167178 0 20500 373894 2115 0 1316 543 0 0\ncpu0 1\ncpu1 1\n").cpu
    usage = cpu_usage(before, after)  # 100 user + 25 system + 75 idle ticks
    assert usage["user"] == pytest.approx(0.5) and usage["system"] == pytest.approx(0.125)
    assert usage["busy"] == pytest.approx(0.625) and usage["idle"] == pytest.approx(0.375)
    assert cpu_usage(after, after) == {}


def test_memory_load_handles_and_vmstat() -> None:
    memory = parse_meminfo(recorded("meminfo.txt"))
    assert memory["MemTotal"] == 24683656 * 1024 and memory["MemAvailable"] == 23743540 * 1024
    assert memory["SwapTotal"] == 0
    assert parse_loadavg(recorded("loadavg.txt")) == (1.77, 1.68, 1.27)
    assert parse_file_nr(recorded("file-nr.txt")) == (738, 0, 2466174)
    vmstat = parse_vmstat(recorded("vmstat.txt"))
    assert vmstat["pgmajfault"] == 4547 and vmstat["oom_kill"] == 0


def test_diskstats_and_network_counters() -> None:
    [vda] = parse_diskstats(recorded("diskstats.txt"))
    assert (vda.device, vda.reads, vda.writes) == ("vda", 169371, 194072)
    assert vda.read_bytes == 7703050 * 512 and vda.written_bytes == 10483568 * 512
    assert vda.io_seconds == pytest.approx(40.412)
    interfaces = parse_net_dev(recorded("net-dev.txt"))
    assert "lo" not in interfaces
    assert interfaces["ifb0"]["receive_bytes"] == 0 and set(interfaces["ifb0"]) >= {"transmit_drop", "receive_errs"}


def test_mounts_and_df_merge_into_disk_usage() -> None:
    mounts = parse_mounts(recorded("mounts.txt"), SKIP)
    assert "/" in {m.mountpoint for m in mounts}
    assert not {m.fstype for m in mounts} & SKIP
    [root] = merge_df(mounts, parse_df(recorded("df-P.txt")), parse_df(recorded("df-Pi.txt")))
    assert root == DiskUsage("/", "/dev/vda", "ext4", size_bytes=264212084 * 1024, used_bytes=14907736 * 1024,
                             available_bytes=80593528 * 1024, inodes=16777216, inodes_used=477408)
    assert root.used_ratio == pytest.approx(14907736 / (14907736 + 80593528))


def test_mount_paths_with_spaces_are_unescaped() -> None:
    [mount] = parse_mounts("/dev/sdb1 /mnt/my\\040data ext4 rw 0 0\n")
    assert mount.mountpoint == "/mnt/my data"
    assert parse_df("Filesystem 1024-blocks Used Available Capacity Mounted on\n"
                    "/dev/sdb1 100 40 60 40% /mnt/my data\n") == {"/mnt/my data": (100, 40, 60)}


def test_process_dump_gives_cpu_memory_threads_and_fds() -> None:
    figures = parse_process_dump(recorded("processes.txt"), clock_ticks=100)
    assert len(figures) == 10 and {p.name for p in figures} == {"bash", "java"}
    [java] = [p for p in figures if p.name == "java"]
    assert java.threads > 1 and java.rss_bytes > 0 and java.open_fds == 156
    bash = next(p for p in figures if p.pid == 1405)
    assert bash.cpu_seconds == pytest.approx((23 + 39) / 100) and bash.open_fds == 9


def test_rules_on_recorded_files_follow_the_thresholds() -> None:
    obs = recorded_observation()
    assert evaluate(obs, HostConfig()) == []
    strict = HostConfig(disk_high_ratio=0.15, disk_critical_ratio=0.9, memory_available_low_ratio=0.99,
                        load_per_core_high=0.5, file_handles_high_ratio=0.0001, swap_high_ratio=0.01)
    findings = {f.rule_id: f for f in evaluate(obs, strict)}
    assert set(findings) == {"host.disk_space_low", "host.memory_pressure", "host.load_high",
                             "host.file_handles_near_max"}  # no swap configured: no swap finding
    assert findings["host.disk_space_low"].evidence["mountpoint"] == "/"
    assert findings["host.disk_space_low"].severity == Severity.WARNING
    assert findings["host.load_high"].evidence["load5_per_core"] == pytest.approx(0.84)
    assert findings["host.file_handles_near_max"].evidence["allocated"] == 738
    assert findings["host.memory_pressure"].query == "cat /proc/meminfo"


# --- live -----------------------------------------------------------------------------------------


def own_comm() -> str:
    return Path("/proc/self/comm").read_text().strip()


@pytest.mark.parametrize("runner", [None, LocalRunner()], ids=["direct", "commands"])
async def test_live_collect_on_this_machine(runner: LocalRunner | None) -> None:
    plugin = HostPlugin.create(HostConfig(processes=[own_comm()]), runner)
    first = await plugin.collect()
    assert values(first, "host_cpu_usage_ratio") == {}  # needs two readings
    await asyncio.sleep(0.1)  # /proc/stat counts in 10 ms ticks: let some pass
    second = await plugin.collect()
    busy = values(second, "host_cpu_usage_ratio")[(("mode", "busy"),)]
    assert 0 <= busy <= 1
    assert values(second, "host_cpu_cores")[()] == os.cpu_count()
    total = values(second, "host_memory_total_bytes")[()]
    assert total == pytest.approx(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), rel=0.01)
    root = os.statvfs("/")
    sizes = {dict(k)["mountpoint"]: v for k, v in values(second, "host_filesystem_size_bytes").items()}
    assert sizes["/"] == pytest.approx(root.f_blocks * root.f_frsize, rel=0.001)
    process = (("process", own_comm()),)
    assert values(second, "host_process_count")[process] >= 1
    assert values(second, "host_process_threads")[process] >= 1
    assert values(second, "host_process_open_fds")[process] > 0
    assert values(second, "host_process_rss_bytes")[process] > 1024 * 1024
    assert values(second, "host_process_cpu_seconds_total")[process] > 0
    assert values(second, "host_uptime_seconds")[()] > 0
    await plugin.close()


async def test_live_rules_fire_on_this_machine_with_tight_thresholds() -> None:
    root = os.statvfs("/")
    used = (root.f_blocks - root.f_bfree) / ((root.f_blocks - root.f_bfree) + root.f_bavail)
    config = HostConfig(disk_high_ratio=max(used - 0.01, 0.001), disk_critical_ratio=1.0,
                        memory_available_low_ratio=1.0, file_handles_high_ratio=1e-9)
    for runner in (None, LocalRunner()):
        findings = await HostPlugin.create(config, runner).check_health()
        [disk] = [f for f in findings if f.rule_id == "host.disk_space_low" and f.evidence["mountpoint"] == "/"]
        assert disk.evidence["used_ratio"] == pytest.approx(used, abs=0.01)
        assert {"host.memory_pressure", "host.file_handles_near_max"} <= {f.rule_id for f in findings}


async def test_live_snapshot_reads_kernel_settings() -> None:
    snapshot = await HostPlugin.create(HostConfig(), LocalRunner()).snapshot_config()
    assert snapshot["fs.file-max"] == Path("/proc/sys/fs/file-max").read_text().strip()
    assert snapshot["vm.swappiness"].isdigit()
