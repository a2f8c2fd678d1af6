"""Agentless collection over SSH, against a real sshd (tests/services/sshd.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kubestack.agents.ssh import SSHRunner, SSHTarget
from kubestack.errors import CommandFailedError, TargetAuthError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.base import CommandRunner, SecretRef
from tests.services.process import ServerProcess, free_port
from tests.services.sshd import SSHServer, keygen, known_hosts_line


def _target(server: SSHServer, **overrides: object) -> SSHTarget:
    fields = {"host": server.host, "port": server.port, "user": server.user, "key_file": server.client_key,
              "known_hosts": server.known_hosts, "connect_timeout": 5}
    return SSHTarget.model_validate(fields | overrides)


@pytest.fixture()
async def runner(sshd: SSHServer) -> AsyncIterator[SSHRunner]:
    runner = SSHRunner(_target(sshd))
    yield runner
    await runner.close()


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("redis-over-ssh")
    port = free_port()
    server = ServerProcess("redis-server", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                            "--save", "", "--appendonly", "no", "--dir", str(directory)],
                           directory / "redis.log")
    server.wait_port(port, timeout_s=20)
    yield port
    server.stop()


def test_runner_satisfies_the_command_runner_protocol(sshd: SSHServer) -> None:
    assert isinstance(SSHRunner(_target(sshd)), CommandRunner)


def test_target_config_expands_home_and_rejects_unknown_keys() -> None:
    target = SSHTarget.model_validate({"host": "db-1", "user": "monitor", "key_file": "~/.ssh/id_ed25519",
                                       "known_hosts": "~/.ssh/known_hosts"})
    assert target.port == 22
    assert target.key_file == Path.home() / ".ssh" / "id_ed25519"
    with pytest.raises(ValueError, match="password"):
        SSHTarget.model_validate({"host": "db-1", "user": "monitor", "key_file": "k", "known_hosts": "kh",
                                  "password": "secret"})


async def test_runs_commands_and_returns_stdout(runner: SSHRunner) -> None:
    assert (await runner.run(["uname", "-s"], timeout=10)).strip() == "Linux"
    meminfo = await runner.run(["cat", "/proc/meminfo"], timeout=10)
    assert meminfo.startswith("MemTotal:")
    assert "MemAvailable:" in meminfo


async def test_feeds_stdin(runner: SSHRunner) -> None:
    text = "first line\nsecond line with 'quotes' and $HOME\n"
    assert await runner.run(["cat"], timeout=10, stdin=text) == text
    assert (await runner.run(["wc", "-l"], timeout=10, stdin=text)).strip() == "2"


async def test_arguments_are_quoted_not_interpreted_by_the_remote_shell(runner: SSHRunner) -> None:
    tricky = "a b; echo injected $(id -u) 'q' \"dq\""
    assert await runner.run(["printf", "%s", tricky], timeout=10) == tricky


async def test_reuses_one_connection_and_reconnects_after_a_drop(runner: SSHRunner, sshd: SSHServer) -> None:
    first = await runner.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=10)
    again = await runner.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=10)
    assert first == again  # same client port: the same connection

    for pid in sshd.session_pids():  # the server side of our connection goes away
        os.kill(pid, signal.SIGTERM)
    _wait_until(lambda: not sshd.session_pids())

    after = await runner.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=10)
    assert after != first
    assert after.split()[2:] == first.split()[2:]  # same server address and port


async def test_non_zero_exit_raises_command_failed_with_stderr(runner: SSHRunner) -> None:
    with pytest.raises(CommandFailedError) as failure:
        await runner.run(["sh", "-c", "echo boom >&2; exit 3"], timeout=10)
    assert failure.value.returncode == 3
    assert failure.value.stderr.strip() == "boom"
    with pytest.raises(CommandFailedError, match="No such file"):
        await runner.run(["cat", "/nonexistent/file"], timeout=10)


async def test_command_killed_by_a_signal_fails(runner: SSHRunner) -> None:
    with pytest.raises(CommandFailedError, match="killed by signal KILL") as failure:
        await runner.run(["sh", "-c", "kill -9 $$"], timeout=10)
    assert failure.value.returncode == -9


async def test_connection_lost_mid_command_is_unreachable_then_recovers(runner: SSHRunner, sshd: SSHServer) -> None:
    await runner.run(["true"], timeout=10)
    connection_pids = sshd.session_pids()
    assert connection_pids
    running = asyncio.create_task(runner.run(["sleep", "5"], timeout=10))
    await asyncio.sleep(0.3)  # the session is open and sleep runs
    for pid in connection_pids:
        os.kill(pid, signal.SIGTERM)
    with pytest.raises(TargetUnreachableError, match="dropped while running sleep 5"):
        await running
    assert (await runner.run(["echo", "back"], timeout=10)).strip() == "back"


async def test_slow_command_past_its_timeout_raises_timeout(runner: SSHRunner) -> None:
    with pytest.raises(TargetTimeoutError, match=r"sleep 3 .* no answer in 0\.5s"):
        await runner.run(["sleep", "3"], timeout=0.5)
    assert (await runner.run(["echo", "still usable"], timeout=10)).strip() == "still usable"


async def test_unknown_host_is_refused(sshd: SSHServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    runner = SSHRunner(_target(sshd, known_hosts=empty))
    with pytest.raises(TargetAuthError, match=rf"127\.0\.0\.1:{sshd.port} is unknown .* add it to {empty}"):
        await runner.run(["true"], timeout=10)


async def test_wrong_host_key_is_refused(sshd: SSHServer, tmp_path: Path) -> None:
    impostor = keygen(tmp_path / "impostor")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_hosts_line(sshd.host, sshd.port, impostor.with_suffix(".pub")))
    runner = SSHRunner(_target(sshd, known_hosts=known_hosts))
    with pytest.raises(TargetAuthError, match="does not match"):
        await runner.run(["true"], timeout=10)


async def test_missing_known_hosts_file_is_refused(sshd: SSHServer, tmp_path: Path) -> None:
    runner = SSHRunner(_target(sshd, known_hosts=tmp_path / "absent"))
    with pytest.raises(TargetAuthError, match="does not exist"):
        await runner.run(["true"], timeout=10)


async def test_key_not_authorized_is_refused(sshd: SSHServer, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger")
    runner = SSHRunner(_target(sshd, key_file=stranger))
    with pytest.raises(TargetAuthError, match=f"refused key {stranger}"):
        await runner.run(["true"], timeout=10)


async def test_encrypted_key_needs_its_passphrase(sshd: SSHServer, tmp_path: Path) -> None:
    locked = tmp_path / "locked"  # PKCS#8 (PBES2): OpenSSH-format encrypted keys would need bcrypt
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-m", "PKCS8", "-N", "s3cret", "-f", str(locked)], check=True)
    with pytest.raises(TargetAuthError, match="passphrase"):
        await SSHRunner(_target(sshd, key_file=locked)).run(["true"], timeout=10)
    wrong = SSHRunner(_target(sshd, key_file=locked, passphrase=SecretRef(value="nope")))
    with pytest.raises(TargetAuthError, match="wrong passphrase"):
        await wrong.run(["true"], timeout=10)
    # the right passphrase loads the key, which this server does not authorize
    right = SSHRunner(_target(sshd, key_file=locked, passphrase=SecretRef(value="s3cret")))
    with pytest.raises(TargetAuthError, match="refused key"):
        await right.run(["true"], timeout=10)


async def test_closed_port_is_unreachable(sshd: SSHServer) -> None:
    port = free_port()
    runner = SSHRunner(_target(sshd, port=port))
    with pytest.raises(TargetUnreachableError, match=f"127.0.0.1:{port}"):
        await runner.run(["true"], timeout=10)


async def test_redis_cli_over_ssh(runner: SSHRunner, redis_port: int) -> None:
    info = await runner.run(["redis-cli", "-p", str(redis_port), "INFO", "server"], timeout=10)
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    assert info.startswith("# Server")
    assert fields["tcp_port"] == str(redis_port)
    assert fields["redis_version"].count(".") == 2


def _wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
