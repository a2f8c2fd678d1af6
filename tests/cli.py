"""Running the real ``kubestack`` command in a subprocess, with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
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
