"""The host plugin's configuration: which middleware processes to follow, which mounts to skip, and the
thresholds of its rules."""

from __future__ import annotations

from pydantic import Field

from kubestack.plugins.base import PluginConfig

PSEUDO_FILESYSTEMS = ["autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
                      "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "pstore", "ramfs",
                      "rpc_pipefs", "securityfs", "squashfs", "sysfs", "tmpfs", "tracefs", "iso9660"]


class HostConfig(PluginConfig):
    processes: list[str] = Field(default=["redis-server", "mariadbd", "mysqld", "postgres", "java"],
                                 description="Process names (/proc/<pid>/comm) whose figures are reported")
    skip_filesystems: list[str] = Field(default=PSEUDO_FILESYSTEMS,
                                        description="Filesystem types left out of disk space checks")
    disk_high_ratio: float = Field(default=0.85, gt=0, le=1, description="Used space or inodes that is high")
    disk_critical_ratio: float = Field(default=0.95, gt=0, le=1)
    memory_available_low_ratio: float = Field(default=0.1, gt=0, le=1,
                                              description="MemAvailable / MemTotal that is low")
    memory_available_critical_ratio: float = Field(default=0.05, gt=0, le=1)
    swap_high_ratio: float = Field(default=0.5, gt=0, le=1, description="Used swap / swap size that is high")
    load_per_core_high: float = Field(default=2.0, gt=0, description="5-minute load average per core that is high")
    file_handles_high_ratio: float = Field(default=0.8, gt=0, le=1, description="Allocated / fs.file-max that is high")
    log_paths: list[str] = Field(default=["/var/log/syslog", "/var/log/kern.log"],
                                 description="System logs to tail (missing ones are skipped by the agent)")
