"""Samples from parsed /proc files and disk usage: CPU (counters, and shares between two collects), load, memory
and swap, file handles, filesystems (label ``mountpoint``), disk I/O (``device``), network (``device``) and the
followed middleware processes (``process``, summed over its processes)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.host.parse import DiskIO, DiskUsage, ProcessFigures, ProcStat

MEMINFO_FIELDS = (("MemTotal", "host_memory_total_bytes"), ("MemAvailable", "host_memory_available_bytes"),
                  ("MemFree", "host_memory_free_bytes"), ("Buffers", "host_memory_buffers_bytes"),
                  ("Cached", "host_memory_cached_bytes"), ("Dirty", "host_memory_dirty_bytes"),
                  ("SwapTotal", "host_swap_total_bytes"), ("SwapFree", "host_swap_free_bytes"))
VMSTAT_COUNTERS = (("pgmajfault", "host_major_page_faults_total"), ("pswpin", "host_swap_in_pages_total"),
                   ("pswpout", "host_swap_out_pages_total"), ("oom_kill", "host_oom_kills_total"))
STAT_COUNTERS = (("ctxt", "host_context_switches_total"), ("processes", "host_forks_total"),
                 ("procs_running", "host_procs_running"), ("procs_blocked", "host_procs_blocked"))
NET_COUNTERS = ("receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets", "receive_errs",
                "transmit_errs", "receive_drop", "transmit_drop")


def cpu_samples(stat: ProcStat, usage: dict[str, float], ts: datetime) -> list[Sample]:
    samples = [Sample(name="host_cpu_seconds_total", value=v, ts=ts, labels={"mode": mode})
               for mode, v in stat.cpu.seconds.items()]
    samples.append(Sample(name="host_cpu_cores", value=stat.cpu.cores, ts=ts))
    samples += [Sample(name=name, value=stat.counters[key], ts=ts) for key, name in STAT_COUNTERS
                if key in stat.counters]
    for mode, share in sorted(usage.items()):
        samples.append(Sample(name="host_cpu_usage_ratio", value=share, ts=ts, labels={"mode": mode}))
    return samples


def load_samples(load: tuple[float, float, float], cores: int, ts: datetime) -> list[Sample]:
    samples = [Sample(name=f"host_load{n}", value=v, ts=ts) for n, v in zip((1, 5, 15), load, strict=True)]
    if cores:
        samples.append(Sample(name="host_load5_per_core", value=load[1] / cores, ts=ts))
    return samples


def memory_samples(memory: dict[str, float], vmstat: dict[str, float], ts: datetime) -> list[Sample]:
    samples = [Sample(name=name, value=memory[key], ts=ts) for key, name in MEMINFO_FIELDS if key in memory]
    total, available = memory.get("MemTotal", 0.0), memory.get("MemAvailable")
    if total and available is not None:
        samples += [Sample(name="host_memory_used_bytes", value=total - available, ts=ts),
                    Sample(name="host_memory_available_ratio", value=available / total, ts=ts)]
    swap_total = memory.get("SwapTotal", 0.0)
    swap_used = swap_total - memory.get("SwapFree", swap_total)
    samples.append(Sample(name="host_swap_used_bytes", value=swap_used, ts=ts))
    if swap_total:
        samples.append(Sample(name="host_swap_used_ratio", value=swap_used / swap_total, ts=ts))
    samples += [Sample(name=name, value=vmstat[key], ts=ts) for key, name in VMSTAT_COUNTERS if key in vmstat]
    return samples


def file_handle_samples(handles: tuple[int, int, int], ts: datetime) -> list[Sample]:
    allocated, _, maximum = handles
    samples = [Sample(name="host_file_handles_allocated", value=allocated, ts=ts),
               Sample(name="host_file_handles_max", value=maximum, ts=ts)]
    if maximum > 0:
        samples.append(Sample(name="host_file_handles_used_ratio", value=allocated / maximum, ts=ts))
    return samples


def filesystem_samples(disks: list[DiskUsage], ts: datetime) -> list[Sample]:
    samples = []
    for d in disks:
        labels = {"mountpoint": d.mountpoint, "device": d.device, "fstype": d.fstype}
        samples += [Sample(name="host_filesystem_size_bytes", value=d.size_bytes, ts=ts, labels=labels),
                    Sample(name="host_filesystem_used_bytes", value=d.used_bytes, ts=ts, labels=labels),
                    Sample(name="host_filesystem_available_bytes", value=d.available_bytes, ts=ts, labels=labels),
                    Sample(name="host_filesystem_inodes", value=d.inodes, ts=ts, labels=labels),
                    Sample(name="host_filesystem_inodes_used", value=d.inodes_used, ts=ts, labels=labels)]
        if d.used_ratio is not None:
            samples.append(Sample(name="host_filesystem_used_ratio", value=d.used_ratio, ts=ts, labels=labels))
        if d.inodes_used_ratio is not None:
            samples.append(Sample(name="host_filesystem_inodes_used_ratio", value=d.inodes_used_ratio, ts=ts,
                                  labels=labels))
    return samples


def disk_io_samples(disks: list[DiskIO], ts: datetime) -> list[Sample]:
    samples = []
    for d in disks:
        labels = {"device": d.device}
        samples += [Sample(name="host_disk_reads_completed_total", value=d.reads, ts=ts, labels=labels),
                    Sample(name="host_disk_read_bytes_total", value=d.read_bytes, ts=ts, labels=labels),
                    Sample(name="host_disk_read_seconds_total", value=d.read_seconds, ts=ts, labels=labels),
                    Sample(name="host_disk_writes_completed_total", value=d.writes, ts=ts, labels=labels),
                    Sample(name="host_disk_written_bytes_total", value=d.written_bytes, ts=ts, labels=labels),
                    Sample(name="host_disk_write_seconds_total", value=d.write_seconds, ts=ts, labels=labels),
                    Sample(name="host_disk_io_seconds_total", value=d.io_seconds, ts=ts, labels=labels),
                    Sample(name="host_disk_io_weighted_seconds_total", value=d.weighted_io_seconds, ts=ts,
                           labels=labels),
                    Sample(name="host_disk_ios_in_progress", value=d.in_progress, ts=ts, labels=labels)]
    return samples


def network_samples(interfaces: dict[str, dict[str, int]], ts: datetime) -> list[Sample]:
    return [Sample(name=f"host_network_{field}_total", value=counters[field], ts=ts, labels={"device": name})
            for name, counters in sorted(interfaces.items()) for field in NET_COUNTERS if field in counters]


def process_samples(processes: list[ProcessFigures], ts: datetime) -> list[Sample]:
    groups: dict[str, list[ProcessFigures]] = defaultdict(list)
    for p in processes:
        groups[p.name].append(p)
    samples = []
    for name, members in sorted(groups.items()):
        labels = {"process": name}
        samples += [Sample(name="host_process_count", value=len(members), ts=ts, labels=labels),
                    Sample(name="host_process_cpu_seconds_total", value=sum(p.cpu_seconds for p in members), ts=ts,
                           labels=labels),
                    Sample(name="host_process_rss_bytes", value=sum(p.rss_bytes for p in members), ts=ts,
                           labels=labels),
                    Sample(name="host_process_threads", value=sum(p.threads for p in members), ts=ts, labels=labels)]
        fds = [p.open_fds for p in members if p.open_fds is not None]
        if fds:
            samples.append(Sample(name="host_process_open_fds", value=sum(fds), ts=ts, labels=labels))
    return samples
