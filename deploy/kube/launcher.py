"""A local Kubernetes control plane for tests and local runs: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler, on loopback.

Real binaries built from source by ``deploy/kube/build.sh`` (see ``binaries``); nothing is downloaded here.
There is no kubelet: Deployments and DaemonSets get their Pods from the controller manager, the scheduler binds
them to Nodes that a client created (they stay Pending when there are none), and a Pod's status is whatever a
client writes through the ``status`` subresource.

Layout under ``<home>/kube``: ``etcd/`` (data), ``certs/`` (kube-apiserver's self-signed serving certificate;
``apiserver.crt`` holds the CA too and is the CA file clients trust), ``sa.key`` (signs ServiceAccount tokens:
the TokenRequest API works), ``tokens.csv`` (bearer tokens: the admin, the controller manager, the scheduler),
``kubeconfig`` (the admin, context ``kubestack-local``), ``*.kubeconfig`` of the components, ``logs/``,
``*.pid``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubestack.deploy.kube.binaries import APISERVER, CONTROLLER_MANAGER, ETCD, SCHEDULER, binary, default_bin_dir
from kubestack.deploy.kube.kubeconfig import KubeContext, write_kubeconfig
from kubestack.deploy.kube.processes import Daemon, listens_on
from kubestack.errors import KubePortBusyError, KubeStartError
from kubestack.settings import LocalKubeSettings

log = logging.getLogger(__name__)

ADMIN_USER = "kubestack-admin"
# the identities the bootstrap RBAC policy grants their components' permissions to
USERS = {APISERVER: ADMIN_USER, CONTROLLER_MANAGER: "system:kube-controller-manager",
         SCHEDULER: "system:kube-scheduler"}
CONTEXT = "kubestack-local"
SERVICE_CIDR = "10.0.0.0/24"
# Without kubelets no node ever reports: the node-lifecycle controller would mark every Node NotReady and evict
# its Pods minutes later, so a Node a test creates keeps the status the test gave it.
_CONTROLLERS = "*,-node-lifecycle-controller"


@dataclasses.dataclass(frozen=True)
class KubeStatus:
    running: bool
    server: str
    home: Path
    pids: dict[str, int | None]
    version: str | None = None
    kubeconfig: Path | None = None
    problem: str | None = None
    timings_s: dict[str, float] = dataclasses.field(default_factory=dict)


class LocalKube:
    def __init__(self, settings: LocalKubeSettings, home: Path) -> None:
        self.settings = settings
        self.root = home / "kube"
        self.bin_dir = settings.bin_dir or default_bin_dir()
        self.etcd_data = self.root / "etcd"
        self.certs = self.root / "certs"
        self.logs = self.root / "logs"
        self.sa_key = self.root / "sa.key"
        self.tokens = self.root / "tokens.csv"
        self.kubeconfig = self.root / "kubeconfig"
        self.daemons = {name: Daemon(name, self.root / f"{name}.pid", self.logs / f"{name}.log", str(self.root))
                        for name in (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER)}

    @property
    def wanted(self) -> list[str]:
        """The components to run, in start order."""
        return [ETCD, APISERVER] + [name for name, on in ((CONTROLLER_MANAGER, self.settings.controller_manager),
                                                          (SCHEDULER, self.settings.scheduler)) if on]

    # --- what clients need -----------------------------------------------------------------------

    @property
    def server(self) -> str:
        return self.settings.server

    @property
    def ca_file(self) -> Path:
        """kube-apiserver's self-signed certificate, with the CA that signed it: trust it to reach the server."""
        return self.certs / "apiserver.crt"

    @property
    def admin_token(self) -> str:
        return self._tokens()[ADMIN_USER]

    def _tokens(self) -> dict[str, str]:
        """user -> token from tokens.csv (``token,user,uid[,"group,..."]``), created with fresh tokens once."""
        if not self.tokens.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self.tokens.touch(mode=0o600)
            self.tokens.write_text("".join(
                f'{secrets.token_urlsafe(32)},{user},{user}{",system:masters" if user == ADMIN_USER else ""}\n'
                for user in USERS.values()))
        return {line.split(",")[1]: line.split(",")[0] for line in self.tokens.read_text().splitlines() if line}

    def _component_kubeconfig(self, name: str) -> Path:
        """The kubeconfig a component reaches the API server with, as its own RBAC identity."""
        user = USERS[name]
        return write_kubeconfig(self.root / f"{name}.kubeconfig", self.server, self.ca_file,
                                [KubeContext(user.replace(":", "-"), self._tokens()[user])])

    # --- preparing the home ----------------------------------------------------------------------

    def _prepare(self) -> None:
        for folder in (self.root, self.etcd_data, self.certs, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.etcd_data.chmod(0o700)  # etcd refuses a data dir others can read
        if not self.sa_key.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.sa_key.touch(mode=0o600)
            self.sa_key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.TraditionalOpenSSL,
                                                      serialization.NoEncryption()))
        self._tokens()

    def _check_ports_free(self, names: list[str]) -> None:
        s = self.settings
        ports = [(ETCD, "etcd client", s.etcd_port, "ETCD_PORT"),
                 (ETCD, "etcd peer", s.etcd_peer_port, "ETCD_PEER_PORT"),
                 (APISERVER, APISERVER, s.port, "PORT"),
                 (CONTROLLER_MANAGER, CONTROLLER_MANAGER, s.controller_manager_port, "CONTROLLER_MANAGER_PORT"),
                 (SCHEDULER, SCHEDULER, s.scheduler_port, "SCHEDULER_PORT")]
        for component, what, port, setting in ports:
            if component not in names:
                continue
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((s.host, port))
                except OSError:
                    raise KubePortBusyError(
                        f"port {port} ({what}) busy on {s.host}: stop whatever listens there or choose "
                        f"another port (KUBESTACK_LOCAL_KUBE__{setting})"
                    ) from None

    # --- the command lines -----------------------------------------------------------------------

    def _etcd_argv(self) -> list[str]:
        host, client, peer = self.settings.host, self.settings.etcd_port, self.settings.etcd_peer_port
        return [str(binary(ETCD, self.bin_dir)), "--name=kubestack", f"--data-dir={self.etcd_data}",
                f"--listen-client-urls=http://{host}:{client}", f"--advertise-client-urls=http://{host}:{client}",
                f"--listen-peer-urls=http://{host}:{peer}", f"--initial-advertise-peer-urls=http://{host}:{peer}",
                f"--initial-cluster=kubestack=http://{host}:{peer}", "--unsafe-no-fsync", "--log-level=warn"]

    def _apiserver_argv(self) -> list[str]:
        s = self.settings
        return [str(binary(APISERVER, self.bin_dir)), f"--etcd-servers=http://{s.host}:{s.etcd_port}",
                f"--bind-address={s.host}", f"--advertise-address={s.host}", f"--secure-port={s.port}",
                f"--cert-dir={self.certs}", f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--service-account-issuer={s.server}", f"--service-account-key-file={self.sa_key}",
                f"--service-account-signing-key-file={self.sa_key}", "--authorization-mode=Node,RBAC",
                f"--token-auth-file={self.tokens}", "--allow-privileged=true", "--profiling=false",
                # the reconciler refuses a loopback advertise address; the "kubernetes" Service gets no endpoints
                "--endpoint-reconciler-type=none",
                # it refuses Pods until the controller manager made the namespace's "default" ServiceAccount,
                # which a test's first Pod in a fresh namespace would race (envtest turns it off too)
                "--disable-admission-plugins=ServiceAccount"]

    def _controller_manager_argv(self) -> list[str]:
        s = self.settings
        return [str(binary(CONTROLLER_MANAGER, self.bin_dir)),
                f"--kubeconfig={self._component_kubeconfig(CONTROLLER_MANAGER)}",
                f"--bind-address={s.host}", f"--secure-port={s.controller_manager_port}",
                f"--cert-dir={self.certs / CONTROLLER_MANAGER}", "--leader-elect=false",
                # each controller acts as its own ServiceAccount (tokens from the TokenRequest API), as in clusters
                f"--controllers={_CONTROLLERS}", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self.sa_key}", f"--root-ca-file={self.ca_file}",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false"]

    def _scheduler_argv(self) -> list[str]:
        config = self.root / "scheduler.yaml"
        config.write_text(json.dumps({
            "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(self._component_kubeconfig(SCHEDULER))},
            "leaderElection": {"leaderElect": False}, "enableProfiling": False,
        }))
        return [str(binary(SCHEDULER, self.bin_dir)), f"--config={config}", f"--bind-address={self.settings.host}",
                f"--secure-port={self.settings.scheduler_port}", f"--cert-dir={self.certs / SCHEDULER}"]

    # --- starting and waiting --------------------------------------------------------------------

    def up(self) -> KubeStatus:
        """Start the components that are not running yet, in order, each waited for until it is ready."""
        missing = [name for name in self.wanted if self.daemons[name].pid() is None]
        for name in missing:
            binary(name, self.bin_dir)  # a missing binary fails before anything starts
        self._check_ports_free(missing)  # a busy port fails in a second, before the slow steps
        self._prepare()
        starts = {ETCD: self._start_etcd, APISERVER: self._start_apiserver,
                  CONTROLLER_MANAGER: lambda: self._start_component(CONTROLLER_MANAGER, self._controller_manager_argv(),
                                                                    self.settings.controller_manager_port),
                  SCHEDULER: lambda: self._start_component(SCHEDULER, self._scheduler_argv(),
                                                           self.settings.scheduler_port)}
        timings: dict[str, float] = {}
        try:
            for name in missing:
                started = time.monotonic()
                starts[name]()
                timings[name] = round(time.monotonic() - started, 2)
                log.info("%s ready in %.1fs", name, timings[name])
        except KubeStartError:
            self.stop()  # half a control plane is of no use to anyone: nothing is left running
            raise
        return dataclasses.replace(self.status(), timings_s=timings)

    def _start_etcd(self) -> None:
        url = f"http://{self.settings.host}:{self.settings.etcd_port}/health"
        proc = self.daemons[ETCD].start(self._etcd_argv())
        self._wait(ETCD, proc, self.settings.etcd_port, lambda: json.loads(_get(url)).get("health") == "true")

    def _start_apiserver(self) -> None:
        proc = self.daemons[APISERVER].start(self._apiserver_argv())
        self._wait(APISERVER, proc, self.settings.port,
                   lambda: _get(f"{self.server}/readyz", self.admin_token, self.ca_file) == "ok")
        write_kubeconfig(self.kubeconfig, self.server, self.ca_file, [KubeContext(CONTEXT, self.admin_token)])

    def _start_component(self, name: str, argv: list[str], port: int) -> None:
        url = f"https://{self.settings.host}:{port}/healthz"
        proc = self.daemons[name].start(argv)
        self._wait(name, proc, port, lambda: _get(url, insecure=True) == "ok")

    def _wait(self, name: str, proc: subprocess.Popen, port: int, ready: Callable[[], bool]) -> None:
        daemon = self.daemons[name]
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise KubeStartError(f"{name} exited with code {proc.returncode}; last lines of {daemon.log_path}:\n"
                                     + daemon.tail())
            try:
                if ready() and listens_on(proc.pid, port):
                    return
            except (OSError, ValueError):  # not listening yet, TLS files not written yet, not JSON yet
                pass
            time.sleep(0.2)
        raise KubeStartError(f"{name} was not ready within {self.settings.start_timeout_s:.0f}s; see "
                             f"{daemon.log_path}:\n{daemon.tail()}")

    # --- stopping and status ---------------------------------------------------------------------

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the scheduler, the controller manager, the API server, then etcd; False if none of them ran."""
        stopped = [self.daemons[name].stop(timeout_s) for name in (SCHEDULER, CONTROLLER_MANAGER, APISERVER, ETCD)]
        return any(stopped)

    def status(self) -> KubeStatus:
        pids = {name: daemon.pid() for name, daemon in self.daemons.items()}
        version, problem = None, None
        if pids[APISERVER] is not None:
            try:
                version = json.loads(_get(f"{self.server}/version", self.admin_token, self.ca_file))["gitVersion"]
            except (OSError, ValueError, KeyError) as exc:
                problem = f"kube-apiserver does not answer on {self.server}: {exc}"
        running = pids[ETCD] is not None and pids[APISERVER] is not None
        absent = [name for name in self.wanted if pids[name] is None]
        if running and absent and problem is None:
            problem = f"{', '.join(absent)} not running: `kubestack kube up` starts what is missing"
        return KubeStatus(running, self.server, self.root, pids, version,
                          self.kubeconfig if self.kubeconfig.exists() else None, problem)


def _get(url: str, token: str | None = None, ca_file: Path | None = None, *, insecure: bool = False) -> str:
    """GET one small document; raises OSError (URLError, HTTPError, refused) unless it answers 200."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if insecure:  # a health port behind a certificate nobody signed: only "ok" is read from it
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5, context=context) as resp:
        return resp.read().decode()
