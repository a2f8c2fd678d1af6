"""Session fixtures: a real Redis server with a password, and a replica of it, on free ports in a temp dir."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.services.process import ServerProcess, ServerStartError, free_port

REDIS_SERVER = "/usr/bin/redis-server"


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    password: str
    dir: Path

    @property
    def log_path(self) -> Path:
        """The server's log (stdout, loglevel notice)."""
        return self.dir / "redis.log"

    def connect(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, password=self.password, decode_responses=True,
                           protocol=2)


def start_redis(name: str, base: Path, password: str, *extra: str) -> tuple[ServerProcess, RedisServer]:
    port = free_port()
    data = base / name
    data.mkdir()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(data), "--requirepass", password, "--enable-protected-configs", "local", *extra]
    process = ServerProcess(f"redis-{name}", argv, data / "redis.log")
    process.wait_port(port, timeout_s=20)
    return process, RedisServer(host="127.0.0.1", port=port, password=password, dir=data)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    process, server = start_redis("primary", tmp_path_factory.mktemp("redis"), secrets.token_hex(8),
                             "--repl-diskless-sync-delay", "0")
    try:
        yield server
    finally:
        process.stop()


def start_replica(name: str, base: Path, primary: RedisServer) -> tuple[ServerProcess, RedisServer]:
    """A replica of ``primary``, returned once its link to the primary is up."""
    process, server = start_redis(name, base, primary.password, "--replicaof", primary.host, str(primary.port),
                                  "--masterauth", primary.password)
    client = server.connect()
    try:
        deadline = time.monotonic() + 20
        while client.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                process.stop()
                raise ServerStartError(f"replica never linked to the primary:\n{process.tail()}")
            time.sleep(0.1)
    finally:
        client.close()
    return process, server


@pytest.fixture(scope="session")
def redis_replica(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A replica of ``redis_server``, returned once its link to the primary is up."""
    process, server = start_replica("replica", tmp_path_factory.mktemp("redis"), redis_server)
    try:
        yield server
    finally:
        process.stop()
