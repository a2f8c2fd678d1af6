"""Redis Sentinel (Debian's redis-sentinel 7.0): a primary/replica pair of its own (a failover turns the primary into
a replica, so never the session's ``redis_server``) and three sentinels on free ports in a temp dir, monitoring it
as ``mymaster`` with quorum 2 and a short ``down-after-milliseconds``. Each sentinel rewrites its own config file."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.services.process import ServerProcess, ServerStartError, free_port
from tests.services.redis import RedisServer, start_redis, start_replica

REDIS_SENTINEL = "/usr/bin/redis-sentinel"
MASTER = "mymaster"
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 6000


@dataclass
class SentinelGroup:
    """The pair and its sentinels; ``processes`` by name (``primary``, ``replica``, ``sentinel-0`` ...)."""

    primary: RedisServer
    replica: RedisServer
    sentinels: list[int]
    base: Path
    processes: dict[str, ServerProcess] = field(default_factory=dict)

    host = "127.0.0.1"

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.sentinels[index], decode_responses=True, protocol=2,
                           socket_timeout=5)

    def current_primary(self) -> int:
        """The port of the primary as the first sentinel knows it."""
        return int(self.sentinel().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)[1])

    def redis_on(self, port: int) -> redis.Redis:
        return redis.Redis(host=self.host, port=port, password=self.primary.password, decode_responses=True,
                           protocol=2, socket_timeout=5)

    def stop_sentinel(self, index: int) -> None:
        self.processes[f"sentinel-{index}"].stop()

    def start_sentinel(self, index: int) -> None:
        """(Re)start sentinel ``index`` on its port, from its (rewritten) config file."""
        name, port = f"sentinel-{index}", self.sentinels[index]
        process = ServerProcess(name, [REDIS_SENTINEL, str(self.base / name / "sentinel.conf")],
                                self.base / name / "sentinel.log")
        process.wait_port(port, timeout_s=20)
        self.processes[name] = process

    def wait_for(self, check: Callable[[], bool], timeout_s: float = 30, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                raise ServerStartError(f"sentinels never saw {what}")
            time.sleep(0.2)

    def primary_process(self) -> str:
        """``primary`` or ``replica``: the process that is the primary now (they swap on a failover)."""
        port = str(self.current_primary())
        return next(name for name in ("primary", "replica") if self.processes[name].proc.args[2] == port)

    def replica_process(self) -> str:
        return "replica" if self.primary_process() == "primary" else "primary"

    @contextlib.contextmanager
    def stalled(self, name: str) -> Iterator[None]:
        """Process ``name`` stopped (SIGSTOP) until the block ends: it holds its port but answers nothing."""
        pid = self.processes[name].proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    @contextlib.contextmanager
    def only_first_sees_failures(self) -> Iterator[None]:
        """The other sentinels wait a minute before they call the primary down: the first alone sees it down
        (s_down without o_down), so the sentinels do not fail over by themselves."""
        for i in range(1, len(self.sentinels)):
            self.sentinel(i).execute_command("SENTINEL", "SET", MASTER, "down-after-milliseconds", "60000")
        try:
            yield
        finally:
            for i in range(1, len(self.sentinels)):
                self.sentinel(i).execute_command("SENTINEL", "SET", MASTER, "down-after-milliseconds",
                                                 str(DOWN_AFTER_MS))

    def known(self) -> bool:
        """Every sentinel knows the replica and the two other sentinels."""
        for i in range(len(self.sentinels)):
            with contextlib.suppress(redis.RedisError):
                master = _pairs(self.sentinel(i).execute_command("SENTINEL", "MASTER", MASTER))
                if int(master["num-slaves"]) >= 1 and int(master["num-other-sentinels"]) >= len(self.sentinels) - 1:
                    continue
            return False
        return True


def _pairs(flat: list) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _config(port: int, directory: Path, primary: RedisServer) -> str:
    return (f"port {port}\nbind 127.0.0.1\ndir {directory}\nlogfile \"\"\n"
            f"sentinel monitor {MASTER} {primary.host} {primary.port} {QUORUM}\n"
            f"sentinel auth-pass {MASTER} {primary.password}\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER} 1\n")


@contextlib.contextmanager
def running_sentinels(base: Path, count: int = 3) -> Iterator[SentinelGroup]:
    password = secrets.token_hex(8)
    processes: dict[str, ServerProcess] = {}
    try:
        processes["primary"], primary = start_redis("primary", base, password, "--repl-diskless-sync-delay", "0",
                                                    "--masterauth", password)
        processes["replica"], replica = start_replica("replica", base, primary)
        group = SentinelGroup(primary=primary, replica=replica, sentinels=[free_port() for _ in range(count)],
                              base=base, processes=processes)
        for i, port in enumerate(group.sentinels):
            directory = base / f"sentinel-{i}"
            directory.mkdir()
            (directory / "sentinel.conf").write_text(_config(port, directory, primary))
            group.start_sentinel(i)
        group.wait_for(group.known, 30, "the replica and every other sentinel")
        yield group
    finally:
        for process in processes.values():
            process.stop()


@pytest.fixture(scope="session")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    with running_sentinels(tmp_path_factory.mktemp("sentinel")) as group:
        yield group


@pytest.fixture
def sentinel_live_config(sentinel_group: SentinelGroup) -> dict[str, object]:
    """The config the live contract check runs the Sentinel plugin with."""
    return {"host": sentinel_group.host, "port": sentinel_group.sentinels[0]}
