"""A KRaft Kafka broker, or a cluster of them, on this machine, from Maven Central jars, for local runs and tests.

Every node is broker and controller at once. Layout under ``<home>/kafka``: ``lib/`` (resolved jars, reused while
pom.xml is unchanged); the single plain broker of ``make run`` keeps ``data/`` (KRaft storage), ``logs/server.out``,
``server.properties`` (rendered) and ``kafka.pid`` there; a cluster of N nodes has them per node under
``cluster-N[-secure]/node-<id>/``, beside its ``cluster.id`` and, secure, its CA, users and client settings
(``secure.py``). Topics get min(N, 3) replicas and min.insync.replicas 2 from three nodes on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import re
import shutil
import socket
import subprocess
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

from kubestack.bus import ClusterInfo, describe_cluster, ensure_topics, wait_for_cluster
from kubestack.errors import (
    BrokerStartError,
    JarResolutionError,
    JavaNotFoundError,
    KafkaUnavailableError,
    MavenNotFoundError,
    PortBusyError,
)
from kubestack.deploy.processes import alive, terminate
from kubestack.deploy.kafka.acls import cluster_acls, component_users, create_acls, topic_acls
from kubestack.deploy.kafka.secure import BROKER_USER, LISTENER, SecureMaterial
from kubestack.settings import KafkaSettings, LocalKafkaSettings

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
POM = HERE / "pom.xml"
SERVER_TEMPLATE = HERE / "server.properties"
LOG4J2 = HERE / "log4j2.properties"
MIN_JAVA = 17
_JVM_FLAGS = ["-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
# a tool that runs for seconds: the quick JIT tier only and the serial collector (StorageTool format: 1.1 s of CPU
# instead of 1.8 s, 2.9 s wall instead of 5.7 s on the loaded 2-CPU machine)
_TOOL_JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Djava.awt.headless=true"]


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    jars_resolved: bool
    home: Path
    cluster: ClusterInfo | None = None
    problem: str | None = None
    nodes: dict[int, int | None] | None = None  # node id -> pid (None: not running)
    secure: bool = False
    client_settings: Path | None = None  # secure: the kafka settings that reach it (client.yaml)


@dataclass(frozen=True)
class Node:
    """One KRaft node (broker and controller) and its files."""

    node_id: int
    host: str
    port: int
    controller_port: int
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def pidfile(self) -> Path:
        return self.root / "kafka.pid"

    @property
    def server_out(self) -> Path:
        return self.logs / "server.out"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def pid(self) -> int | None:
        """This node's pid, if it runs (a recycled pid is not mistaken for it)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ValueError):
            return None
        return pid if "kafka.Kafka" in cmdline and str(self.properties) in cmdline and alive(pid) else None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.server_out.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no output)"


class LocalKafka:
    def __init__(self, settings: LocalKafkaSettings, home: Path) -> None:
        self.settings = settings
        self.root = home / "kafka"
        self.lib = self.root / "lib"
        if settings.brokers == 1 and not settings.secure:
            self.folder = self.root  # the layout of make run, as it always was
            roots = [self.root]
        else:
            self.folder = self.root / f"cluster-{settings.brokers}{'-secure' if settings.secure else ''}"
            roots = [self.folder / f"node-{i}" for i in range(1, settings.brokers + 1)]
        self.nodes = [Node(i, settings.host, port, controller, root) for i, (port, controller, root) in
                      enumerate(zip(settings.node_ports, settings.node_controller_ports, roots), start=1)]
        self.secure = SecureMaterial(self.folder) if settings.secure else None
        first = self.nodes[0]
        self.data, self.logs, self.properties = first.data, first.logs, first.properties
        self.pidfile, self.server_out = first.pidfile, first.server_out

    # --- prerequisites ---------------------------------------------------------------------

    def check_java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise JavaNotFoundError(
                "Java 17+ not found: install a JDK (Debian: apt-get install openjdk-17-jre-headless) "
                "or put java on PATH"
            )
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
        match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
        major = int(match.group(1)) if match else 0
        if major == 1 and match and match.group(2):  # "1.8.0_392" style
            major = int(match.group(2))
        if major < MIN_JAVA:
            raise JavaNotFoundError(f"Java {major or '?'} at {java} is too old: Kafka 4 needs Java 17+, install a JDK")
        return java

    @property
    def _pom_digest(self) -> str:
        return hashlib.sha256(POM.read_bytes()).hexdigest()

    def jars_resolved(self) -> bool:
        marker = self.lib / ".pom.sha256"
        return marker.exists() and marker.read_text().strip() == self._pom_digest

    def resolve_jars(self) -> Path:
        """Resolve the broker jars with Maven once; later calls reuse them until pom.xml changes."""
        if self.jars_resolved():
            return self.lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise MavenNotFoundError(
                "Maven not found: install it (Debian: apt-get install maven); it fetches the Kafka jars "
                "from Maven Central once"
            )
        staging = self.root / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        log.info("resolving Kafka broker jars from Maven Central into %s", self.lib)
        cmd = [mvn, "-B", "-q", "-f", str(POM), "package", f"-Dkafka.lib.dir={staging}"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise JarResolutionError(f"Maven could not resolve the Kafka jars (is Maven Central reachable?):\n{tail}")
        (staging / ".pom.sha256").write_text(self._pom_digest)
        shutil.rmtree(self.lib, ignore_errors=True)
        staging.rename(self.lib)
        return self.lib

    # --- storage and configuration ----------------------------------------------------------

    def render_properties(self) -> None:
        template = Template(SERVER_TEMPLATE.read_text())
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes)
        for node in self.nodes:
            text = template.substitute(
                node_id=node.node_id, voters=voters, host=node.host, port=node.port,
                controller_port=node.controller_port, log_dirs=node.data,
                listener=LISTENER if self.secure else "PLAINTEXT",
                replication_factor=self.settings.replication_factor,
                min_insync_replicas=self.settings.min_insync_replicas,
                security=self.secure.properties() if self.secure else "",
            )
            node.root.mkdir(parents=True, exist_ok=True)
            node.properties.write_text(text)
            node.properties.chmod(0o600)  # secure: the brokers' own password

    def _cluster_id(self) -> str:
        """One id for every node of the cluster, kept beside them (a single node makes a fresh one)."""
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")  # may start with "-"
        if self.folder == self.root:
            return made
        path = self.folder / "cluster.id"
        if not path.exists():
            path.write_text(made)
        return path.read_text().strip()

    def format_storage(self, java: str) -> None:
        cluster_id = self._cluster_id()
        users = self.secure.scram_arguments() if self.secure else []
        formats = {}
        for node in self.nodes:  # side by side: each is a JVM start of several seconds
            if (node.data / "meta.properties").exists():
                continue
            cmd = [java, "-Xmx256m", *_TOOL_JVM_FLAGS, "-cp", f"{self.lib}/*", f"-Dlog4j2.configurationFile={LOG4J2}",
                   "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(node.properties),
                   "--ignore-formatted", *users]
            formats[node] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                             stdin=subprocess.DEVNULL)
        for node, proc in formats.items():
            try:
                _, stderr = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, stderr = proc.communicate()
            if proc.returncode != 0:
                raise BrokerStartError(f"formatting KRaft storage in {node.data} failed:\n{stderr.strip()}")

    # --- processes -----------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of the first running node of this cluster (None when none runs)."""
        return next((pid for pid in (node.pid() for node in self.nodes) if pid is not None), None)

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id - 1]

    def _check_ports_free(self, nodes: list[Node] | None = None) -> None:
        for node in nodes or self.nodes:
            for port in (node.port, node.controller_port):
                with socket.socket() as sock:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        sock.bind((node.host, port))
                    except OSError:
                        raise PortBusyError(
                            f"port {port} busy on {node.host}: stop whatever listens there or choose another port "
                            f"(KUBESTACK_LOCAL_KAFKA__PORT / KUBESTACK_LOCAL_KAFKA__CONTROLLER_PORT, or "
                            f"__PORTS / __CONTROLLER_PORTS for a cluster)"
                        ) from None

    def _launch(self, java: str, node: Node) -> subprocess.Popen:
        node.logs.mkdir(parents=True, exist_ok=True)
        heap = self.settings.heap
        cmd = [java, f"-Xmx{heap}", f"-Xms{min_heap(heap)}", *_JVM_FLAGS,
               f"-Dlog4j2.configurationFile={LOG4J2}", f"-Dkafka.logs.dir={node.logs}",
               "-cp", f"{self.lib}/*", "kafka.Kafka", str(node.properties)]
        with node.server_out.open("ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        node.pidfile.write_text(str(proc.pid))
        return proc

    def start(self, java: str, node_ids: list[int] | None = None) -> dict[int, int]:
        """Start the given nodes (default: every one that is not running) and wait until each answers and the
        cluster has all its brokers; node id → pid."""
        nodes = [self.node(i) for i in node_ids] if node_ids else [n for n in self.nodes if n.pid() is None]
        self._check_ports_free(nodes)
        procs = {node.node_id: self._launch(java, node) for node in nodes}  # a quorum needs them all up at once
        deadline = time.monotonic() + self.settings.start_timeout_s
        for node in nodes:
            self._wait_ready(node, procs[node.node_id], deadline)
        self._wait_all_brokers(deadline)
        return {node_id: proc.pid for node_id, proc in procs.items()}

    def admin_settings(self, bootstrap: str | None = None, **update: object) -> KafkaSettings:
        """How the launcher itself reaches the cluster (secure: as the brokers' super user)."""
        kafka = self.client_settings().model_copy(update={"request_timeout_s": 5, **update})
        if bootstrap:
            kafka = kafka.model_copy(update={"bootstrap": bootstrap})
        return self.secure.client_settings(kafka, user=BROKER_USER) if self.secure else kafka

    def _wait_ready(self, node: Node, proc: subprocess.Popen, deadline: float) -> ClusterInfo:
        probe = self.admin_settings(node.address)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerStartError(
                    f"Kafka node {node.node_id} exited with code {proc.returncode}; last lines of "
                    f"{node.server_out}:\n{node.tail()}"
                )
            if not _accepts(node.host, node.port):
                time.sleep(0.3)
                continue
            try:
                return asyncio.run(describe_cluster(probe))
            except KafkaUnavailableError:
                time.sleep(0.5)
        self.stop()
        raise BrokerStartError(
            f"Kafka node {node.node_id} did not answer on {node.address} within {self.settings.start_timeout_s:.0f}s; "
            f"see {node.server_out}:\n{node.tail()}"
        )

    def _wait_all_brokers(self, deadline: float) -> None:
        probe = self.admin_settings()
        while True:
            try:
                info = asyncio.run(describe_cluster(probe))
                if len(info.brokers) >= sum(node.pid() is not None for node in self.nodes):
                    return
            except KafkaUnavailableError:
                pass
            if time.monotonic() >= deadline:
                raise BrokerStartError(f"the cluster on {self.settings.bootstrap} did not list all its brokers within "
                                       f"{self.settings.start_timeout_s:.0f}s")
            time.sleep(0.5)

    def stop(self, timeout_s: float = 60.0, node_ids: list[int] | None = None) -> bool:
        """Stop nodes (default: all; controlled shutdown, then SIGKILL after ``timeout_s``); False if none ran."""
        nodes = [self.node(i) for i in node_ids] if node_ids else self.nodes
        running = {node: pid for node in nodes if (pid := node.pid()) is not None}
        for pid in running.values():  # all at once: the last controllers alone have no quorum to shut down with
            os.kill(pid, signal.SIGTERM)
        for node, pid in running.items():
            try:
                terminate(pid, f"Kafka node {node.node_id}", timeout_s)
            except ProcessLookupError:  # it finished its shutdown between the two signals
                pass
        for node in nodes:
            node.pidfile.unlink(missing_ok=True)
        return bool(running)

    def kill(self, node_id: int) -> None:
        """``kill -9`` one node: no controlled shutdown, as a crash or a lost machine."""
        node = self.node(node_id)
        pid = node.pid()
        if pid is None:
            raise BrokerStartError(f"Kafka node {node_id} is not running")
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)
        try:  # our own child: reap it
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass

    # --- the whole sequence ------------------------------------------------------------------

    def up(self, kafka: KafkaSettings | None = None) -> BrokerStatus:
        """Resolve jars, format storage, start every node, wait for metadata and create the registry's topics
        (replicated as the cluster allows; ``kafka`` gives the topic prefix)."""
        java = self.check_java()
        if any(node.pid() is None for node in self.nodes):
            self._check_ports_free([n for n in self.nodes if n.pid() is None])  # before the slow steps
            self.resolve_jars()
            if self.secure:
                self.secure.ensure(self.settings.host)
            self.render_properties()
            self.format_storage(java)
            self.start(java)
        prefix = kafka.topic_prefix if kafka else ""
        asyncio.run(ensure_topics(self.admin_settings(topic_prefix=prefix)))
        if self.secure:
            asyncio.run(self.grant(prefix))
            self.secure.write_client_file(self.client_settings())
        return self.status()

    async def grant(self, prefix: str = "") -> None:
        """Secure: each component may write only its own topics of the contract under ``prefix`` (``acls.py``)."""
        users = component_users(self.client_settings())
        await create_acls(self.admin_settings(), cluster_acls() + topic_acls(prefix, users))

    def client_settings(self, kafka: KafkaSettings | None = None) -> KafkaSettings:
        """``kafka`` (default: the defaults) pointed at this cluster: its bootstrap, its replication and, secure, its
        CA and users (the shared one, and each component's own)."""
        base = (kafka or KafkaSettings()).model_copy(update={
            "bootstrap": self.settings.bootstrap, "replication_factor": self.settings.replication_factor,
            "min_insync_replicas": self.settings.min_insync_replicas if self.settings.brokers > 1 else None})
        return self.secure.client_settings(base) if self.secure else base

    def status(self) -> BrokerStatus:
        pids = {node.node_id: node.pid() for node in self.nodes}
        running = [pid for pid in pids.values() if pid is not None]
        cluster, problem = None, None
        if running:
            try:
                cluster = asyncio.run(wait_for_cluster(self.admin_settings(), timeout_s=5))
            except KafkaUnavailableError as exc:
                problem = str(exc)
        return BrokerStatus(bool(running), running[0] if running else None, self.settings.bootstrap,
                            self.jars_resolved(), self.root, cluster, problem, pids, self.secure is not None,
                            self.secure.client_file if self.secure and self.secure.client_file.exists() else None)


def min_heap(heap: str) -> str:
    """Initial heap: a quarter of the maximum, at least 128m."""
    amount, unit = int(heap[:-1]), heap[-1].lower()
    megabytes = amount * (1024 if unit == "g" else 1)
    return f"{max(128, megabytes // 4)}m"


def _accepts(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


