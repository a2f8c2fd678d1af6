"""Host health rules: pure functions over one parsed observation. Each finding carries the exact values the rule
looked at and the file or command that produced them."""

from __future__ import annotations

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.host.config import HostConfig
from kubestack.plugins.host.parse import Observation

GiB = 1024**3


def disk_space(obs: Observation, limits: HostConfig) -> list[Finding]:
    findings = []
    for d in obs.disks:
        for what, ratio, rule in (("space", d.used_ratio, "host.disk_space_low"),
                                  ("inodes", d.inodes_used_ratio, "host.inodes_low")):
            if ratio is None or ratio < limits.disk_high_ratio:
                continue
            critical = ratio >= limits.disk_critical_ratio
            detail = (f"{d.available_bytes / GiB:.1f} GiB left" if what == "space"
                      else f"{d.inodes - d.inodes_used} inodes left")
            findings.append(Finding(
                rule_id=rule, severity=Severity.CRITICAL if critical else Severity.WARNING,
                message=f"{d.mountpoint} ({d.device}) is {ratio:.0%} full of {what}: {detail}",
                evidence={"mountpoint": d.mountpoint, "device": d.device, "fstype": d.fstype,
                          "size_bytes": d.size_bytes, "used_bytes": d.used_bytes,
                          "available_bytes": d.available_bytes, "inodes": d.inodes, "inodes_used": d.inodes_used,
                          "used_ratio": round(ratio, 4), "high_ratio": limits.disk_high_ratio,
                          "critical_ratio": limits.disk_critical_ratio},
                query=f"df -P{'i' if what == 'inodes' else ''} {d.mountpoint}"))
    return findings


def memory_pressure(obs: Observation, limits: HostConfig) -> list[Finding]:
    total, available = obs.memory.get("MemTotal", 0.0), obs.memory.get("MemAvailable")
    if not total or available is None:
        return []
    ratio = available / total
    if ratio >= limits.memory_available_low_ratio:
        return []
    critical = ratio < limits.memory_available_critical_ratio
    return [Finding(
        rule_id="host.memory_pressure", severity=Severity.CRITICAL if critical else Severity.WARNING,
        message=f"only {available / GiB:.2f} GiB of {total / GiB:.1f} GiB memory is available ({ratio:.1%}): "
                "the kernel reclaims cache and may start the OOM killer",
        evidence={"mem_total_bytes": total, "mem_available_bytes": available, "available_ratio": round(ratio, 4),
                  "low_ratio": limits.memory_available_low_ratio},
        query="cat /proc/meminfo")]


def swap_use(obs: Observation, limits: HostConfig) -> list[Finding]:
    total = obs.memory.get("SwapTotal", 0.0)
    if not total:
        return []
    used = total - obs.memory.get("SwapFree", total)
    ratio = used / total
    if ratio < limits.swap_high_ratio:
        return []
    return [Finding(
        rule_id="host.swap_in_use", severity=Severity.WARNING,
        message=f"{ratio:.0%} of swap is in use ({used / GiB:.2f} GiB): memory-resident middleware slows down",
        evidence={"swap_total_bytes": total, "swap_used_bytes": used, "swap_used_ratio": round(ratio, 4),
                  "high_ratio": limits.swap_high_ratio},
        query="cat /proc/meminfo")]


def load_per_core(obs: Observation, limits: HostConfig) -> list[Finding]:
    if not obs.cores:
        return []
    per_core = obs.load[1] / obs.cores
    if per_core < limits.load_per_core_high:
        return []
    return [Finding(
        rule_id="host.load_high", severity=Severity.WARNING,
        message=f"5-minute load {obs.load[1]:.2f} on {obs.cores} core(s) ({per_core:.2f} per core): processes wait "
                "for CPU or disk",
        evidence={"load1": obs.load[0], "load5": obs.load[1], "load15": obs.load[2], "cores": obs.cores,
                  "load5_per_core": round(per_core, 4), "high_per_core": limits.load_per_core_high},
        query="cat /proc/loadavg /proc/stat")]


def file_handles(obs: Observation, limits: HostConfig) -> list[Finding]:
    allocated, _, maximum = obs.file_handles
    if maximum <= 0 or allocated / maximum < limits.file_handles_high_ratio:
        return []
    ratio = allocated / maximum
    return [Finding(
        rule_id="host.file_handles_near_max", severity=Severity.WARNING,
        message=f"{allocated} of {maximum} file handles are allocated ({ratio:.0%}): opening files and sockets will "
                "soon fail with 'Too many open files in system'",
        evidence={"allocated": allocated, "max": maximum, "used_ratio": round(ratio, 6),
                  "high_ratio": limits.file_handles_high_ratio},
        query="cat /proc/sys/fs/file-nr")]


def evaluate(obs: Observation, limits: HostConfig) -> list[Finding]:
    return (disk_space(obs, limits) + memory_pressure(obs, limits) + swap_use(obs, limits)
            + load_per_core(obs, limits) + file_handles(obs, limits))
