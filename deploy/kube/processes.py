"""One control-plane process started in the background, found again later by its pid file.

``kubestack kube up`` returns while etcd and kube-apiserver keep running, so a later ``kubestack kube down``
finds them by pid file; the command line is checked too, so a recycled pid is never mistaken for ours.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubestack.deploy.processes import alive, terminate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Daemon:
    name: str
    pidfile: Path
    log_path: Path
    marker: str  # a string only our instance has in its command line (its state directory)

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ValueError):
            return None
        return pid if self.name in cmdline and self.marker in cmdline and alive(pid) else None

    def start(self, argv: list[str]) -> subprocess.Popen:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.pidfile.write_text(str(proc.pid))
        log.info("started %s (pid %d), log %s", self.name, proc.pid, self.log_path)
        return proc

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout_s``; False if it was not running."""
        pid = self.pid()
        self.pidfile.unlink(missing_ok=True)
        if pid is None:
            return False
        terminate(pid, self.name, timeout_s)
        return True

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no output)"


def listens_on(pid: int, port: int) -> bool:
    """Whether ``pid`` itself holds the listening socket of ``port``: a health check that another process on
    that port answered (another session's scheduler, say) must not count as ours being ready."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, PermissionError):
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in inodes:
                return True
        except OSError:
            continue
    return False
