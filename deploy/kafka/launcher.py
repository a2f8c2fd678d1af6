"""A single-node KRaft Kafka broker on this machine, from Maven Central jars, for local runs and tests.

Layout under ``<home>/kafka``: ``lib/`` (resolved jars, reused while pom.xml is unchanged),
``data/`` (KRaft storage), ``logs/server.out``, ``server.properties`` (rendered), ``kafka.pid``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import shutil
import socket
import subprocess
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
from kubestack.deploy.processes import terminate
from kubestack.settings import KafkaSettings, LocalKafkaSettings

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
POM = HERE / "pom.xml"
SERVER_TEMPLATE = HERE / "server.properties"
LOG4J2 = HERE / "log4j2.properties"
MIN_JAVA = 17
_JVM_FLAGS = ["-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    jars_resolved: bool
    home: Path
    cluster: ClusterInfo | None = None
    problem: str | None = None


class LocalKafka:
    def __init__(self, settings: LocalKafkaSettings, home: Path) -> None:
        self.settings = settings
        self.root = home / "kafka"
        self.lib = self.root / "lib"
        self.data = self.root / "data"
        self.logs = self.root / "logs"
        self.properties = self.root / "server.properties"
        self.pidfile = self.root / "kafka.pid"
        self.server_out = self.logs / "server.out"

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

    def render_properties(self) -> Path:
        text = Template(SERVER_TEMPLATE.read_text()).substitute(
            host=self.settings.host,
            port=self.settings.port,
            controller_port=self.settings.controller_port,
            log_dirs=self.data,
        )
        self.root.mkdir(parents=True, exist_ok=True)
        self.properties.write_text(text)
        return self.properties

    def format_storage(self, java: str) -> None:
        if (self.data / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")  # may start with "-"
        cmd = [java, "-Xmx256m", "-cp", f"{self.lib}/*", f"-Dlog4j2.configurationFile={LOG4J2}",
               "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(self.properties),
               "--ignore-formatted"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise BrokerStartError(f"formatting KRaft storage in {self.data} failed:\n{result.stderr.strip()}")

    # --- process -------------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The broker's pid, if this home's broker is running (a recycled pid is not mistaken for it)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ValueError):
            return None
        return pid if "kafka.Kafka" in cmdline and str(self.properties) in cmdline else None

    def _check_ports_free(self) -> None:
        for port in (self.settings.port, self.settings.controller_port):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((self.settings.host, port))
                except OSError:
                    raise PortBusyError(
                        f"port {port} busy on {self.settings.host}: stop whatever listens there or choose "
                        f"another port (KUBESTACK_LOCAL_KAFKA__PORT / KUBESTACK_LOCAL_KAFKA__CONTROLLER_PORT)"
                    ) from None

    def start(self, java: str) -> int:
        self._check_ports_free()
        self.logs.mkdir(parents=True, exist_ok=True)
        heap = self.settings.heap
        cmd = [java, f"-Xmx{heap}", f"-Xms{min_heap(heap)}", *_JVM_FLAGS,
               f"-Dlog4j2.configurationFile={LOG4J2}", f"-Dkafka.logs.dir={self.logs}",
               "-cp", f"{self.lib}/*", "kafka.Kafka", str(self.properties)]
        with self.server_out.open("ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.pidfile.write_text(str(proc.pid))
        self._wait_ready(proc)
        return proc.pid

    def _wait_ready(self, proc: subprocess.Popen) -> ClusterInfo:
        deadline = time.monotonic() + self.settings.start_timeout_s
        probe = KafkaSettings(bootstrap=self.settings.bootstrap, request_timeout_s=5)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerStartError(
                    f"the broker exited with code {proc.returncode}; last lines of {self.server_out}:\n"
                    + self._tail()
                )
            if not _accepts(self.settings.host, self.settings.port):
                time.sleep(0.3)
                continue
            try:
                return asyncio.run(describe_cluster(probe))
            except KafkaUnavailableError:
                time.sleep(0.5)
        self.stop()
        raise BrokerStartError(
            f"the broker did not answer on {self.settings.bootstrap} within {self.settings.start_timeout_s:.0f}s; "
            f"see {self.server_out}:\n{self._tail()}"
        )

    def _tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.server_out.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no output)"

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop the broker (controlled shutdown, then SIGKILL after ``timeout_s``); False if none ran."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        terminate(pid, "the Kafka broker", timeout_s)
        self.pidfile.unlink(missing_ok=True)
        return True

    # --- the whole sequence ------------------------------------------------------------------

    def up(self, kafka: KafkaSettings | None = None) -> BrokerStatus:
        """Resolve jars, format storage, start, wait for metadata and create the registry's topics."""
        java = self.check_java()
        if self.pid() is None:
            self._check_ports_free()  # before the slow steps: a busy port fails in a second
            self.resolve_jars()
            self.render_properties()
            self.format_storage(java)
            self.start(java)
        topics_on = kafka or KafkaSettings(bootstrap=self.settings.bootstrap)
        asyncio.run(ensure_topics(topics_on))
        return self.status()

    def status(self) -> BrokerStatus:
        pid = self.pid()
        cluster, problem = None, None
        if pid is not None:
            try:
                probe = KafkaSettings(bootstrap=self.settings.bootstrap, request_timeout_s=5)
                cluster = asyncio.run(wait_for_cluster(probe, timeout_s=5))
            except KafkaUnavailableError as exc:
                problem = str(exc)
        return BrokerStatus(pid is not None, pid, self.settings.bootstrap, self.jars_resolved(), self.root,
                            cluster, problem)


def min_heap(heap: str) -> str:
    """Initial heap: a quarter of the maximum, at least 128m."""
    amount, unit = int(heap[:-1]), heap[-1].lower()
    megabytes = amount * (1024 if unit == "g" else 1)
    return f"{max(128, megabytes // 4)}m"


def _accepts(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


