"""Agentless collection: run a plugin's commands on a remote host over SSH.

``SSHRunner`` implements the ``CommandRunner`` protocol with asyncssh. It authenticates with one private key
only (no password, no ssh-agent, no ~/.ssh/config), verifies the server's host key against the configured
known_hosts file and never accepts an unknown key, and keeps one connection per target that it reopens when it
drops. Failures map to ``kubestack.errors``: refused or unreachable → ``TargetUnreachableError``, host key or
key refused → ``TargetAuthError``, a command past its timeout → ``TargetTimeoutError``, non-zero exit →
``CommandFailedError`` carrying stderr.

On a timeout the runner asks the server to kill the command and closes its session. OpenSSH honours that
signal request only for non-root logins (it needs privilege separation), so a command run as root that
ignores the closed session keeps running on the host until it ends by itself: log in as a monitoring user.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Sequence
from pathlib import Path

import asyncssh
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubestack.errors import CommandFailedError, TargetAuthError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.base import SecretRef

log = logging.getLogger(__name__)


class SSHTarget(BaseModel):
    """Where and how to reach a host over SSH (``ssh:`` of a target in agent.yaml)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(min_length=1)
    key_file: Path = Field(description="Private key used to log in (key authentication only)")
    known_hosts: Path = Field(description="known_hosts file the server's host key must be listed in")
    passphrase: SecretRef | None = Field(default=None, description="Passphrase of key_file, if encrypted")
    connect_timeout: float = Field(default=10.0, gt=0)

    @field_validator("key_file", "known_hosts")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


class SSHRunner:
    """Runs commands on one remote host, over one reused SSH connection."""

    def __init__(self, target: SSHTarget) -> None:
        self.target = target
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()

    async def run(self, argv: Sequence[str], *, timeout: float, stdin: str | None = None) -> str:
        command = shlex.join(argv)
        process = await self._open_session(command, stdin)
        try:
            result = await process.wait(timeout=timeout)
        except asyncssh.TimeoutError:
            process.kill()
            raise TargetTimeoutError(
                f"{command} on {self.target.address} gave no answer in {timeout:g}s") from None
        except asyncssh.DisconnectError as exc:
            await self._drop()
            raise TargetUnreachableError(
                f"connection to {self.target.address} dropped while running {command}: {exc.reason}") from exc
        finally:
            process.close()
        where = [f"{self.target.address}:", *argv]
        stderr = str(result.stderr or "")
        if result.exit_signal is not None:
            signal_name = result.exit_signal[0]
            raise CommandFailedError(where, result.returncode or -1, f"killed by signal {signal_name}. {stderr}")
        if result.exit_status is None:  # the session ended without an exit status: the connection went away
            await self._drop()
            raise TargetUnreachableError(f"connection to {self.target.address} dropped while running {command}")
        if result.exit_status != 0:
            raise CommandFailedError(where, result.exit_status, stderr)
        return str(result.stdout or "")

    async def _open_session(self, command: str, stdin: str | None) -> asyncssh.SSHClientProcess:
        """A session on the current connection; a dead connection is replaced once, before the command runs."""
        try:
            return await self._create_process(command, stdin)
        except (asyncssh.ChannelOpenError, asyncssh.DisconnectError, ConnectionError) as exc:
            log.info("SSH connection to %s was lost (%s); reconnecting", self.target.address, exc)
            await self._drop()
        try:
            return await self._create_process(command, stdin)
        except (asyncssh.ChannelOpenError, asyncssh.DisconnectError, ConnectionError) as exc:
            await self._drop()
            raise TargetUnreachableError(f"cannot open a session on {self.target.address}: {exc}") from exc

    async def _create_process(self, command: str, stdin: str | None) -> asyncssh.SSHClientProcess:
        conn = await self._connection()
        return await conn.create_process(command, input=stdin, encoding="utf-8", errors="replace")

    async def _connection(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self._conn = await self._connect()
            return self._conn

    async def _connect(self) -> asyncssh.SSHClientConnection:
        target = self.target
        key = _load_key(target)
        if not target.known_hosts.is_file():
            raise TargetAuthError(
                f"known_hosts file {target.known_hosts} for {target.host} does not exist: create it with the "
                f"host's verified key (ssh-keyscan -p {target.port} {target.host})")
        log.debug("connecting to %s", target.address)
        try:
            return await asyncssh.connect(
                target.host, target.port, username=target.user, client_keys=[key],
                known_hosts=str(target.known_hosts), connect_timeout=target.connect_timeout,
                config=None, agent_path=None, password=None, kbdint_auth=False, preferred_auth="publickey",
                keepalive_interval=30, keepalive_count_max=3)
        except asyncssh.HostKeyNotVerifiable as exc:
            raise TargetAuthError(
                f"host key of {target.host}:{target.port} is unknown or does not match {target.known_hosts} "
                f"({exc.reason}): verify the server's key and add it to {target.known_hosts}; unknown hosts "
                "are never accepted") from None
        except asyncssh.PermissionDenied as exc:
            raise TargetAuthError(
                f"{target.address} refused key {target.key_file} ({exc.reason}): add its public key to "
                f"the authorized_keys of {target.user} on {target.host}") from None
        except asyncssh.DisconnectError as exc:
            raise TargetUnreachableError(f"{target.address} closed the connection: {exc.reason}") from None
        except TimeoutError:
            raise TargetUnreachableError(
                f"{target.host}:{target.port} did not answer within {target.connect_timeout:g}s "
                "(host down or port filtered)") from None
        except OSError as exc:
            raise TargetUnreachableError(
                f"cannot connect to {target.host}:{target.port}: {exc.strerror or exc}") from None

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()


def _load_key(target: SSHTarget) -> asyncssh.SSHKey:
    passphrase = target.passphrase.resolve() if target.passphrase else None
    try:
        return asyncssh.read_private_key(target.key_file, passphrase)
    except OSError as exc:
        raise TargetAuthError(f"SSH key {target.key_file} for {target.address} cannot be read: "
                              f"{exc.strerror or exc}") from None
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        if "bcrypt" in str(exc):
            hint = "encrypted OpenSSH-format keys need the bcrypt package (asyncssh[bcrypt])"
        elif passphrase:
            hint = "wrong passphrase?"
        else:
            hint = "set ssh.passphrase if it is encrypted"
        raise TargetAuthError(f"SSH key {target.key_file} for {target.address} cannot be loaded ({exc}): "
                              f"{hint}") from None
