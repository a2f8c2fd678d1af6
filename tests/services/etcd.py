"""Fixtures: real etcd members (Debian's /usr/bin/etcd 3.4) on free loopback ports in temp dirs: a session member
for the contract tests, and helpers to start a cluster of any size with a chosen backend quota, whose members can
be stopped and started again on their data."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.services.process import ServerProcess, ServerStartError, free_port

ETCD = "/usr/bin/etcd"


def call(url: str, path: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """POST ``body`` to the member's v3 JSON gateway; an error reply comes back as its JSON (``error``, ``code``)."""
    request = urllib.request.Request(url + path, data=json.dumps(body or {}).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}") | {"http_status": exc.code}


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    dir: Path
    argv: list[str] = field(default_factory=list)
    process: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.client_port

    def start(self) -> None:
        self.process = ServerProcess(f"etcd-{self.name}", self.argv, self.dir / "etcd.log", cwd=self.dir)
        self.process.wait_port(self.client_port, timeout_s=30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def status(self) -> dict[str, Any]:
        return call(self.url, "/v3/maintenance/status")

    def put(self, key: str, value: bytes | str) -> dict[str, Any]:
        return call(self.url, "/v3/kv/put", {"key": b64(key), "value": b64(value)})


@dataclass
class EtcdCluster:
    members: list[EtcdMember]

    def leader(self, timeout_s: float = 20.0, among: list[EtcdMember] | None = None) -> EtcdMember:
        """The member that leads, once the running ones agree on one."""
        among = among or [m for m in self.members if m.process and m.process.proc.poll() is None]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                leaders = {m.status().get("leader") for m in among}
            except OSError:
                leaders = set()
            if len(leaders) == 1 and (leader := leaders.pop()) not in (None, "0"):
                ids = {m.status()["header"]["member_id"]: m for m in among}
                if leader in ids:
                    return ids[leader]
            time.sleep(0.1)
        raise ServerStartError(f"no leader among {[m.name for m in among]} within {timeout_s:.0f}s")

    def stop(self) -> None:
        for member in self.members:
            member.stop()


def start_cluster(base: Path, size: int, quota_bytes: int = 0, prefix: str = "m") -> EtcdCluster:
    members = [EtcdMember(f"{prefix}{i}", free_port(), free_port(), base / f"{prefix}{i}") for i in range(size)]
    initial = ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in members)
    token = f"{base.name}-{prefix}"
    for member in members:
        member.dir.mkdir(parents=True)
        member.argv = [ETCD, "--name", member.name, "--data-dir", str(member.dir / "data"),
                       "--listen-client-urls", member.url, "--advertise-client-urls", member.url,
                       "--listen-peer-urls", f"http://127.0.0.1:{member.peer_port}",
                       "--initial-advertise-peer-urls", f"http://127.0.0.1:{member.peer_port}",
                       "--initial-cluster", initial, "--initial-cluster-token", token,
                       "--heartbeat-interval", "50", "--election-timeout", "500", "--logger", "zap",
                       "--log-outputs", "stderr"]
        if quota_bytes:
            member.argv += ["--quota-backend-bytes", str(quota_bytes)]
    cluster = EtcdCluster(members)
    try:
        for member in members:  # every member must be up for the first election: start them, then wait
            member.process = ServerProcess(f"etcd-{member.name}", member.argv, member.dir / "etcd.log",
                                           cwd=member.dir)
        for member in members:
            member.process.wait_port(member.client_port, timeout_s=30)
        cluster.leader()
    except Exception:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdMember]:
    """One etcd member with the default quota, left healthy (tests that break etcd start their own)."""
    cluster = start_cluster(tmp_path_factory.mktemp("etcd"), 1, prefix="solo")
    try:
        yield cluster.members[0]
    finally:
        cluster.stop()


@pytest.fixture
def etcd_live_config(etcd_server: EtcdMember) -> dict[str, object]:
    """The config the live contract check runs the etcd plugin with."""
    return {"host": etcd_server.host, "port": etcd_server.port}
