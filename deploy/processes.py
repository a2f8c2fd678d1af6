"""Background processes of the local launchers (the Kafka broker, the Kubernetes control plane): whether one still
runs, and stopping it."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours is gone for our purposes (the name in /proc/<pid>/stat may hold spaces)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def terminate(pid: int, what: str, timeout_s: float) -> None:
    """SIGTERM (a controlled shutdown), then SIGKILL after ``timeout_s``; returns once ``pid`` is gone."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        log.warning("%s (pid %d) ignored SIGTERM for %.0fs; killing it", what, pid, timeout_s)
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)
    try:  # our own child: collect its exit status so no zombie stays behind
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
