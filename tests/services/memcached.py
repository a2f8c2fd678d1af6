"""Session fixture: a real Memcached (Debian's memcached 1.6) on a free loopback port, small enough (8 MB,
100 connections) that a test fills it or its connection table for real; ``start_memcached`` starts others."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services.process import ServerProcess, free_port

MEMCACHED = "/usr/bin/memcached"


@dataclass(frozen=True)
class MemcachedServer:
    host: str
    port: int
    memory_mb: int
    max_connections: int

    def config(self, **extra: object) -> dict[str, object]:
        return {"host": self.host, "port": self.port} | extra

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=10)

    def call(self, sock: socket.socket, line: bytes, *, until: bytes = b"\r\n") -> bytes:
        """Sends ``line`` and reads the reply up to ``until`` (``END\\r\\n`` for stats and multi-gets)."""
        sock.sendall(line)
        reply = b""
        while not reply.endswith(until):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"memcached closed the connection after {reply[-200:]!r}")
            reply += chunk
        return reply

    def set(self, sock: socket.socket, key: str, value: bytes) -> bytes:
        return self.call(sock, f"set {key} 0 0 {len(value)}\r\n".encode() + value + b"\r\n").strip()

    def stats(self, section: str = "") -> dict[str, str]:
        with self.connect() as sock:
            reply = self.call(sock, f"stats {section}".strip().encode() + b"\r\n", until=b"END\r\n")
        return {p[1]: p[2] for p in (line.split(" ", 2) for line in reply.decode().splitlines()) if len(p) == 3}


def start_memcached(log: Path, *extra: str, memory_mb: int = 8,
                    max_connections: int = 100) -> tuple[ServerProcess, MemcachedServer]:
    port = free_port()
    argv = [MEMCACHED, "-u", "root", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", str(memory_mb),
            "-c", str(max_connections), "-t", "2", *extra]
    process = ServerProcess("memcached", argv, log)
    process.wait_port(port, timeout_s=20)
    return process, MemcachedServer(host="127.0.0.1", port=port, memory_mb=memory_mb, max_connections=max_connections)


@pytest.fixture(scope="session")
def memcached_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedServer]:
    process, server = start_memcached(tmp_path_factory.mktemp("memcached") / "memcached.log")
    try:
        yield server
    finally:
        process.stop()


@pytest.fixture
def memcached_live_config(memcached_server) -> dict:
    """The session server as a target's config, for the live contract check."""
    return memcached_server.config()
