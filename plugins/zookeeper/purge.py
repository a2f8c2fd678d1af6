"""Which snapshots and transaction logs a purge removes, as ZooKeeper's own ``PurgeTxnLog`` (``zkCleanup.sh -n N``)
decides: keep the newest ``keep`` snapshots, the transaction logs from the oldest kept snapshot on, and the last log
that starts before it (it holds the transactions that follow that snapshot). Pure: over file names and sizes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataFile:
    directory: str
    name: str
    size: int

    @property
    def kind(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def zxid(self) -> int:
        return int(self.name.split(".")[1], 16)

    @property
    def path(self) -> str:
        return f"{self.directory.rstrip('/')}/{self.name}"


def parse_listing(directory: str, text: str) -> list[DataFile]:
    """``find -printf '%f\\t%s\\n'`` output → the snapshot and log files (others are ignored)."""
    files = []
    for line in text.splitlines():
        name, _, size = line.partition("\t")
        parts = name.split(".")
        if parts[0] in ("snapshot", "log") and len(parts) >= 2 and _hex(parts[1]) and size.strip().isdigit():
            files.append(DataFile(directory, name, int(size)))
    return files


def _hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class PurgePlan:
    keep: list[DataFile]
    remove: list[DataFile]

    @property
    def freed(self) -> int:
        return sum(f.size for f in self.remove)


def plan(files: list[DataFile], keep_snapshots: int) -> PurgePlan:
    snapshots = sorted((f for f in files if f.kind == "snapshot"), key=lambda f: f.zxid, reverse=True)
    logs = sorted((f for f in files if f.kind == "log"), key=lambda f: f.zxid)
    if len(snapshots) <= keep_snapshots:
        return PurgePlan(keep=files, remove=[])
    kept = snapshots[:keep_snapshots]
    oldest = kept[-1].zxid
    before = [log for log in logs if log.zxid <= oldest]
    kept_logs = [log for log in logs if log.zxid > oldest] + before[-1:]
    remove = snapshots[keep_snapshots:] + [log for log in before[:-1]]
    return PurgePlan(keep=kept + sorted(kept_logs, key=lambda f: f.zxid), remove=sorted(remove, key=lambda f: f.name))
