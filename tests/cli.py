"""Running the real ``kubestack`` command in a subprocess, with a clean environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

KUBESTACK = str(Path(sys.executable).with_name("kubestack"))


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESTACK_")}
    env.update(extra)
    return env


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([KUBESTACK, *args], capture_output=True, text=True, env=env or cli_env(),
                          timeout=timeout, stdin=subprocess.DEVNULL)


def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([KUBESTACK, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, stdin=subprocess.DEVNULL)


def wait_for_line(proc: subprocess.Popen, needle: str, lines: list[str]) -> bool:
    """Read ``proc``'s output into ``lines`` until a line contains ``needle`` (True) or it ends (False)."""
    for line in proc.stdout:
        lines.append(line)
        if needle in line:
            return True
    return False


class Followed:
    """A started command whose output is read all the time by a thread (a full pipe would stall it)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="command-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout_s: float = 120.0) -> bool:
        """True once a line contains ``needle``; False if the command ends or ``timeout_s`` passes first."""
        deadline = time.monotonic() + timeout_s
        with self._seen:
            while not any(needle in line for line in self.lines):
                if self.proc.poll() is not None and not self._reader.is_alive():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._seen.wait(min(remaining, 1.0))
        return True

    def stop(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C, then the exit code (killed after ``timeout_s``: the code is then negative)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(10)
        return code


def follow(*args: str, env: dict[str, str]) -> Followed:
    return Followed(start(*args, env=env))
