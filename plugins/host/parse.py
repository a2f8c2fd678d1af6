"""Pure parsers of /proc files and ``df -P`` output, shared by the local client and the command one (so the same
code works over SSH). Units: bytes and seconds."""

from __future__ import annotations

from dataclasses import dataclass

SECTOR_BYTES = 512
"""/proc/diskstats counts 512-byte sectors whatever the device's sector size."""

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class CpuTimes:
    """Seconds spent in each mode since boot, summed over all CPUs, and the number of CPUs."""

    seconds: dict[str, float]
    cores: int

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    @property
    def busy(self) -> float:
        return self.total - self.seconds.get("idle", 0.0) - self.seconds.get("iowait", 0.0)


@dataclass(frozen=True)
class ProcStat:
    cpu: CpuTimes
    counters: dict[str, float]
    """ctxt, processes (forks), procs_running, procs_blocked."""


def parse_stat(text: str, clock_ticks: int = 100) -> ProcStat:
    seconds: dict[str, float] = {}
    cores, counters = 0, {}
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "cpu":
            seconds = {mode: int(v) / clock_ticks for mode, v in zip(CPU_MODES, fields[1:], strict=False)}
        elif fields[0].startswith("cpu"):
            cores += 1
        elif fields[0] in ("ctxt", "processes", "procs_running", "procs_blocked"):
            counters[fields[0]] = float(fields[1])
    return ProcStat(CpuTimes(seconds, cores), counters)


def cpu_usage(previous: CpuTimes, current: CpuTimes) -> dict[str, float]:
    """Share of CPU time per mode between two readings (0..1), plus ``busy``; empty if no time passed."""
    elapsed = current.total - previous.total
    if elapsed <= 0:
        return {}
    shares = {mode: max(current.seconds.get(mode, 0.0) - previous.seconds.get(mode, 0.0), 0.0) / elapsed
              for mode in current.seconds}
    shares["busy"] = max(current.busy - previous.busy, 0.0) / elapsed
    return shares


def parse_loadavg(text: str) -> tuple[float, float, float]:
    one, five, fifteen = text.split()[:3]
    return float(one), float(five), float(fifteen)


def parse_meminfo(text: str) -> dict[str, float]:
    """Field → bytes (``kB`` values are scaled; counts such as HugePages_Total stay counts)."""
    values = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts:
            continue
        try:
            number = float(parts[0])
        except ValueError:  # /proc/<pid>/status also has names and lists
            continue
        values[key.strip()] = number * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return values


def parse_vmstat(text: str) -> dict[str, float]:
    return {key: float(value) for key, value in (line.split()[:2] for line in text.splitlines() if line.strip())}


def parse_file_nr(text: str) -> tuple[int, int, int]:
    """/proc/sys/fs/file-nr: allocated handles, allocated but unused, maximum."""
    allocated, unused, maximum = (int(v) for v in text.split()[:3])
    return allocated, unused, maximum


@dataclass(frozen=True)
class DiskIO:
    device: str
    reads: int
    read_bytes: int
    read_seconds: float
    writes: int
    written_bytes: int
    write_seconds: float
    in_progress: int
    io_seconds: float
    weighted_io_seconds: float


def parse_diskstats(text: str, skip_prefixes: tuple[str, ...] = ("loop", "ram", "zram")) -> list[DiskIO]:
    """Devices with any I/O since boot; loop and RAM devices are left out."""
    disks = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 14 or f[2].startswith(skip_prefixes):
            continue
        n = [int(v) for v in f[3:14]]
        if n[0] == 0 and n[4] == 0:
            continue
        disks.append(DiskIO(f[2], reads=n[0], read_bytes=n[2] * SECTOR_BYTES, read_seconds=n[3] / 1000,
                            writes=n[4], written_bytes=n[6] * SECTOR_BYTES, write_seconds=n[7] / 1000,
                            in_progress=n[8], io_seconds=n[9] / 1000, weighted_io_seconds=n[10] / 1000))
    return disks


NET_FIELDS = ("receive_bytes", "receive_packets", "receive_errs", "receive_drop", "receive_fifo", "receive_frame",
              "receive_compressed", "receive_multicast", "transmit_bytes", "transmit_packets", "transmit_errs",
              "transmit_drop", "transmit_fifo", "transmit_colls", "transmit_carrier", "transmit_compressed")


def parse_net_dev(text: str, skip: tuple[str, ...] = ("lo",)) -> dict[str, dict[str, int]]:
    """Interface → counter → value, from /proc/net/dev (two header lines)."""
    interfaces = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or name in skip:
            continue
        interfaces[name] = dict(zip(NET_FIELDS, (int(v) for v in rest.split()), strict=False))
    return interfaces


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str


def _unescape(path: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash in octal (``\\040``)."""
    return path.encode().decode("unicode_escape") if "\\" in path else path


def parse_mounts(text: str, skip_types: frozenset[str] | set[str] = frozenset()) -> list[Mount]:
    """Real filesystems, once per mountpoint (the last mount over a path wins, as the kernel shows it)."""
    mounts: dict[str, Mount] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 3 or f[2] in skip_types:
            continue
        mounts[_unescape(f[1])] = Mount(f[0], _unescape(f[1]), f[2])
    return list(mounts.values())


@dataclass(frozen=True)
class DiskUsage:
    mountpoint: str
    device: str
    fstype: str
    size_bytes: int
    used_bytes: int
    available_bytes: int
    inodes: int
    inodes_used: int

    @property
    def used_ratio(self) -> float | None:
        """What ``df`` shows: used / (used + available to ordinary users)."""
        usable = self.used_bytes + self.available_bytes
        return self.used_bytes / usable if usable else None

    @property
    def inodes_used_ratio(self) -> float | None:
        return self.inodes_used / self.inodes if self.inodes else None


def parse_df(text: str) -> dict[str, tuple[int, int, int]]:
    """``df -P`` (1024-blocks, reported in bytes) or ``df -Pi`` (inodes) → mountpoint → (total, used, available).
    Mountpoints may contain spaces: the five numeric-ish columns are taken from the left after the device."""
    rows = {}
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 6:
            continue
        total, used, available = (int(v) if v.isdigit() else 0 for v in f[1:4])
        rows[" ".join(f[5:])] = (total, used, available)
    return rows


def merge_df(mounts: list[Mount], blocks: dict[str, tuple[int, int, int]],
             inodes: dict[str, tuple[int, int, int]]) -> list[DiskUsage]:
    usage = []
    for m in mounts:
        if m.mountpoint not in blocks:
            continue
        total, used, available = blocks[m.mountpoint]
        itotal, iused, _ = inodes.get(m.mountpoint, (0, 0, 0))
        usage.append(DiskUsage(m.mountpoint, m.device, m.fstype, total * 1024, used * 1024, available * 1024,
                               itotal, iused))
    return usage


@dataclass(frozen=True)
class ProcessFigures:
    """One process: CPU seconds, resident memory, threads and open descriptors (None if not readable)."""

    pid: int
    name: str
    cpu_seconds: float
    rss_bytes: int
    threads: int
    open_fds: int | None


def parse_process(pid: int, stat: str, status: str, open_fds: int | None, clock_ticks: int = 100) -> ProcessFigures:
    """From /proc/<pid>/stat (utime, stime after the ``(comm)`` field) and /proc/<pid>/status (VmRSS, Threads)."""
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    after = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(after[11]), int(after[12])
    fields = parse_meminfo(status)
    return ProcessFigures(pid, name, (utime + stime) / clock_ticks, int(fields.get("VmRSS", 0)),
                          int(fields.get("Threads", 0)), open_fds)


PROCESS_MARK = "==> "


def parse_process_dump(text: str, clock_ticks: int = 100) -> list[ProcessFigures]:
    """The command client's dump: per process ``==> <pid>``, its stat line, its status lines, ``fds: <n>``."""
    figures = []
    for block in text.split(PROCESS_MARK)[1:]:
        lines = block.splitlines()
        if len(lines) < 3 or not lines[0].strip().isdigit():
            continue
        fd_line = lines[-1] if lines[-1].startswith("fds:") else ""
        body = lines[1:-1] if fd_line else lines[1:]
        fds = fd_line.removeprefix("fds:").strip()
        try:
            figures.append(parse_process(int(lines[0]), body[0], "\n".join(body[1:]),
                                         int(fds) if fds.isdigit() else None, clock_ticks))
        except (ValueError, IndexError):  # the process ended while it was being read
            continue
    return figures


@dataclass(frozen=True)
class Observation:
    """What the health rules look at, read in one round."""

    memory: dict[str, float]
    load: tuple[float, float, float]
    cores: int
    file_handles: tuple[int, int, int]
    disks: list[DiskUsage]
