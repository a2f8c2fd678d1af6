"""Fixtures: real ZooKeeper servers (Debian's zookeeper 3.8 jars, ``QuorumPeerMain``) on free loopback ports in temp
dirs: a standalone server for the contract tests, helpers to start a standalone server or an ensemble of any size
(each server can be stopped, paused with SIGSTOP and started again on its data), and a minimal client of the
ZooKeeper wire protocol (connect, create, ping) to open real sessions and ephemeral nodes without a client library."""

from __future__ import annotations

import os
import signal
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services.process import ServerProcess, ServerStartError, free_port

JARS = ("zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-simple", "netty-handler", "netty-common", "netty-buffer",
        "netty-transport", "netty-codec", "netty-resolver", "netty-transport-native-epoll",
        "netty-transport-native-unix-common", "metrics-core", "commons-cli", "snappy-java")
CLASSPATH = ":".join(f"/usr/share/java/{jar}.jar" for jar in JARS)


def four_letter(port: int, word: str, timeout: float = 5.0) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout) as sock:
        sock.sendall(word.encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@dataclass
class ZkServer:
    sid: int
    client_port: int
    quorum_port: int
    election_port: int
    dir: Path
    argv: list[str] = field(default_factory=list)
    process: ServerProcess | None = None

    host = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.client_port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def log_path(self) -> Path:
        return self.dir / "zookeeper.log"

    def start(self) -> None:
        self.process = ServerProcess(f"zookeeper-{self.sid}", self.argv, self.log_path, cwd=self.dir)
        self.process.wait_port(self.client_port, timeout_s=60)

    def stop(self) -> None:
        if self.process is not None:
            self.resume()
            self.process.stop()

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets open but answers nothing (a hung JVM, a stalled disk)."""
        assert self.process is not None
        os.kill(self.process.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.proc.poll() is None:
            os.kill(self.process.proc.pid, signal.SIGCONT)

    def word(self, word: str) -> str:
        return four_letter(self.client_port, word)

    def mode(self) -> str | None:
        try:
            text = self.word("srvr")
        except OSError:
            return None
        return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Mode:")), None)


@dataclass
class ZkEnsemble:
    servers: list[ZkServer]

    def wait_serving(self, timeout_s: float = 60.0, among: list[ZkServer] | None = None) -> ZkServer:
        """The leader (or the standalone server), once every server of ``among`` serves."""
        among = among or self.servers
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            modes = {s.sid: s.mode() for s in among}
            if all(m in ("leader", "follower", "standalone") for m in modes.values()):
                return next(s for s in among if modes[s.sid] in ("leader", "standalone"))
            time.sleep(0.2)
        raise ServerStartError(f"ZooKeeper never served: {modes}\n" + "\n".join(s.process.tail(10) for s in among
                                                                                  if s.process))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_ensemble(base: Path, size: int, *, tick_ms: int = 200, sync_limit: int = 5, max_cnxns: int = 60,
                   extra: dict[str, str] | None = None) -> ZkEnsemble:
    """``size`` servers (1: standalone) with ``4lw.commands.whitelist=*`` and the admin server off."""
    servers = [ZkServer(i + 1, free_port(), free_port(), free_port(), base / f"zk{i + 1}") for i in range(size)]
    for server in servers:
        data = server.dir / "data"
        data.mkdir(parents=True)
        lines = [f"tickTime={tick_ms}", "initLimit=20", f"syncLimit={sync_limit}", f"dataDir={data}",
                 f"clientPort={server.client_port}", "clientPortAddress=127.0.0.1", "4lw.commands.whitelist=*",
                 "admin.enableServer=false", f"maxClientCnxns={max_cnxns}", "preAllocSize=64",
                 *(f"{k}={v}" for k, v in (extra or {}).items())]
        if size > 1:
            (data / "myid").write_text(f"{server.sid}\n")
            lines += [f"server.{s.sid}=127.0.0.1:{s.quorum_port}:{s.election_port}" for s in servers]
        (server.dir / "zoo.cfg").write_text("\n".join(lines) + "\n")
        server.argv = ["java", "-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", CLASSPATH,
                       "-Dzookeeper.jmx.log4j.disable=true", "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                       str(server.dir / "zoo.cfg")]
    ensemble = ZkEnsemble(servers)
    try:
        for server in servers:
            server.process = ServerProcess(f"zookeeper-{server.sid}", server.argv, server.log_path, cwd=server.dir)
        for server in servers:
            server.process.wait_port(server.client_port, timeout_s=60)
        ensemble.wait_serving()
    except Exception:
        ensemble.stop()
        raise
    return ensemble


class ZkSession:
    """One real ZooKeeper session over the wire protocol (jute): connect, create nodes, ping; ``drop()`` cuts the
    TCP connection without closing the session, which then expires after its timeout."""

    def __init__(self, port: int, timeout_ms: int = 4000) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.xid = 0
        self._send(struct.pack(">iqiq", 0, 0, timeout_ms, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0")
        reply = self._receive()
        _, self.timeout_ms, self.session_id = struct.unpack(">iiq", reply[:16])
        if self.session_id == 0:
            raise ConnectionError("ZooKeeper refused the session")

    def _send(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("ZooKeeper closed the connection")
            data += chunk
        return data

    def _receive(self) -> bytes:
        (length,) = struct.unpack(">i", self._exact(4))
        return self._exact(length)

    @staticmethod
    def _string(text: str | bytes) -> bytes:
        data = text.encode() if isinstance(text, str) else text
        return struct.pack(">i", len(data)) + data

    def create_request(self, path: str, data: bytes = b"", *, ephemeral: bool = False) -> bytes:
        self.xid += 1
        acl = struct.pack(">ii", 1, 31) + self._string("world") + self._string("anyone")
        return (struct.pack(">ii", self.xid, 1) + self._string(path) + self._string(data) + acl
                + struct.pack(">i", 1 if ephemeral else 0))

    def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False) -> int:
        """The error code of the reply (0: created)."""
        self._send(self.create_request(path, data, ephemeral=ephemeral))
        while True:
            xid, _, err = struct.unpack(">iqi", self._receive()[:16])
            if xid == self.xid:
                return err

    def pipeline(self, requests: list[bytes]) -> None:
        """Sends the requests without reading a reply."""
        self.sock.sendall(b"".join(struct.pack(">i", len(r)) + r for r in requests))

    def ping(self) -> None:
        self._send(struct.pack(">ii", -2, 11))
        self._receive()

    def drop(self) -> None:
        self.sock.close()

    def close(self) -> None:
        try:
            self._send(struct.pack(">ii", self.xid + 1, -11))
            self._receive()
        except OSError:
            pass
        self.sock.close()


@pytest.fixture(scope="session")
def zookeeper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZkServer]:
    """A standalone ZooKeeper server left healthy (tests that break ZooKeeper start their own)."""
    ensemble = start_ensemble(tmp_path_factory.mktemp("zookeeper"), 1)
    try:
        yield ensemble.servers[0]
    finally:
        ensemble.stop()


@pytest.fixture
def zookeeper_live_config(zookeeper_server: ZkServer) -> dict[str, object]:
    """The config the live contract check runs the ZooKeeper plugin with."""
    return {"host": zookeeper_server.host, "port": zookeeper_server.port}
