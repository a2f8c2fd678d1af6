"""A real OpenSSH server for the session, on a free port, with its own host key and one authorized client key.

Nothing outside the temporary directory is touched except ``/run/sshd`` (sshd's privilege separation
directory, which it requires to exist).
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services.process import ServerProcess, free_port

SSHD = "/usr/sbin/sshd"  # sshd refuses to start unless run by its absolute path


def keygen(path: Path, comment: str = "kubestack-test") -> Path:
    """An ed25519 key pair without passphrase; returns the private key path (the public one is ``.pub``)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


def known_hosts_line(host: str, port: int, public_key: Path) -> str:
    """The known_hosts entry OpenSSH writes for a host on a non-default port."""
    key_type, key_b64 = public_key.read_text().split()[:2]
    return f"[{host}]:{port} {key_type} {key_b64}\n"


@dataclass(frozen=True)
class SSHServer:
    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_public_key: Path
    directory: Path
    process: ServerProcess

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener): killing them drops connections."""
        children = Path(f"/proc/{self.process.proc.pid}/task/{self.process.proc.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


def _config(directory: Path, port: int, host_key: Path, authorized_keys: Path) -> Path:
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"PidFile {directory / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized_keys}\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "MaxSessions 20\n"
        "LogLevel VERBOSE\n"
    )
    return config


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    directory = tmp_path_factory.mktemp("sshd")
    host_key = keygen(directory / "ssh_host_ed25519_key", "test-host")
    client_key = keygen(directory / "client_ed25519", "test-client")
    authorized_keys = directory / "authorized_keys"
    authorized_keys.write_text((directory / "client_ed25519.pub").read_text())
    port = free_port()
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(known_hosts_line("127.0.0.1", port, host_key.with_suffix(".pub")))
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    config = _config(directory, port, host_key, authorized_keys)
    process = ServerProcess("sshd", [SSHD, "-D", "-e", "-f", str(config)], directory / "sshd.log")
    process.wait_port(port, timeout_s=20)
    try:
        yield SSHServer(host="127.0.0.1", port=port, user=pwd.getpwuid(os.getuid()).pw_name, client_key=client_key,
                        known_hosts=known_hosts, host_public_key=host_key.with_suffix(".pub"), directory=directory,
                        process=process)
    finally:
        process.stop()
