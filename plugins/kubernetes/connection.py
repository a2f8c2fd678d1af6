"""How to reach one Kubernetes API server: a kubeconfig context, the pod's service account (in-cluster), or an
explicit server with a bearer token and CA file. Shared by the collector and the actions.

```yaml
config: {kubeconfig: ~/.kube/config, context: prod-eu, cluster: prod-eu}          # a kubeconfig context
config: {in_cluster: true, cluster: prod-eu}                                        # the agent's service account
config: {server: https://10.0.0.1:6443, token: {file: /etc/kubestack/kube.token}, ca_file: /etc/kubestack/ca.crt}
```

The cluster name (``cluster``, else the context's cluster, else the server's host) is part of every resource
identity the plugin reports. Building a client reads files but connects to nothing.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kubestack.errors import ConfigError
from kubestack.plugins.base import SecretRef

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER_NAME = "in-cluster"
TOKEN_REREAD_S = 60.0
"""Projected service-account tokens rotate (hourly by default): a token file is read again at most this often."""


class KubernetesConnection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kubeconfig: Path | None = Field(default=None, description="Kubeconfig file (default ~/.kube/config)")
    context: str | None = Field(default=None, description="Kubeconfig context (default: its current context)")
    in_cluster: bool = Field(default=False, description="Use the pod's service account")
    service_account_dir: Path = Field(default=SERVICE_ACCOUNT_DIR,
                                      description="Where the in-cluster token and ca.crt are mounted")
    server: str | None = Field(default=None, description="API server URL; with in_cluster, instead of "
                                                         "KUBERNETES_SERVICE_HOST/PORT")
    token: SecretRef | None = Field(default=None, description="Bearer token for 'server'")
    ca_file: Path | None = Field(default=None, description="CA bundle that signed the server's certificate")
    insecure_skip_tls_verify: bool = False
    cluster: str | None = Field(default=None, min_length=1, max_length=63,
                                description="Cluster name in resource identities (default: the context's cluster)")

    @model_validator(mode="after")
    def _one_way(self) -> KubernetesConnection:
        if self.in_cluster and (self.kubeconfig or self.context or self.token):
            raise ValueError("in_cluster uses the service account: drop kubeconfig, context and token")
        if self.server and not self.in_cluster and (self.kubeconfig or self.context):
            raise ValueError("give either server (with token and ca_file) or kubeconfig/context, not both")
        if self.token and not self.server:
            raise ValueError("token needs server")
        return self

    @property
    def mode(self) -> str:
        """``in-cluster``, ``server`` or ``kubeconfig``."""
        if self.in_cluster:
            return "in-cluster"
        return "server" if self.server else "kubeconfig"


def _kubeconfig_path(conn: KubernetesConnection) -> Path:
    return (conn.kubeconfig or Path("~/.kube/config")).expanduser()


def _kube_config_module():
    from kubernetes.config import kube_config

    return kube_config


def cluster_name(conn: KubernetesConnection) -> str:
    """The name resources of this cluster carry: configured, the kubeconfig context's cluster, or the server's host
    (``in-cluster`` for the service account without a configured name)."""
    if conn.cluster:
        return conn.cluster
    if conn.mode == "kubeconfig":
        return _context(conn)["context"]["cluster"]
    if conn.mode == "server":
        return urlsplit(conn.server).hostname or conn.server
    return IN_CLUSTER_NAME


def _context(conn: KubernetesConnection) -> dict:
    from kubernetes.config import ConfigException

    path = _kubeconfig_path(conn)
    if not path.is_file():
        raise ConfigError(f"kubeconfig {path} not found: set kubeconfig, or in_cluster: true inside a pod")
    try:
        contexts, current = _kube_config_module().list_kube_config_contexts(str(path))
    except ConfigException as exc:
        raise ConfigError(f"kubeconfig {path}: {exc}") from exc
    wanted = conn.context or (current or {}).get("name")
    for context in contexts or []:
        if context.get("name") == wanted:
            return context
    names = ", ".join(c.get("name", "?") for c in contexts or []) or "none"
    raise ConfigError(f"kubeconfig {path} has no context {wanted!r}; it has: {names}")


class _TokenFile:
    """A bearer token read from a file, re-read now and then so rotated tokens are picked up."""

    def __init__(self, ref: SecretRef) -> None:
        self.ref = ref
        self.read_at = 0.0

    def refresh(self, configuration) -> None:
        if time.monotonic() - self.read_at < TOKEN_REREAD_S:
            return
        token = self.ref.resolve()
        if not token:
            raise ConfigError("the Kubernetes bearer token is empty")
        configuration.api_key["BearerToken"] = token
        configuration.api_key_prefix["BearerToken"] = "Bearer"
        self.read_at = time.monotonic()


def _server_config(configuration, server: str, token: SecretRef | None, ca_file: Path | None,
                   insecure: bool) -> None:
    configuration.host = server.rstrip("/")
    if ca_file is not None:
        if not ca_file.is_file():
            raise ConfigError(f"Kubernetes CA file {ca_file} not found")
        configuration.ssl_ca_cert = str(ca_file)
    configuration.verify_ssl = not insecure
    if token is not None:
        reader = _TokenFile(token)
        reader.refresh(configuration)
        if token.file is not None or token.env is not None:
            configuration.refresh_api_key_hook = reader.refresh


def _in_cluster(conn: KubernetesConnection, configuration) -> None:
    server = conn.server
    if server is None:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise ConfigError("in_cluster: KUBERNETES_SERVICE_HOST/PORT are not set (is the agent in a pod?)")
        server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    token = conn.service_account_dir / "token"
    if not token.is_file():
        raise ConfigError(f"in_cluster: no service-account token at {token} (automountServiceAccountToken off?)")
    _server_config(configuration, server, SecretRef(file=token), conn.ca_file or conn.service_account_dir / "ca.crt",
                   conn.insecure_skip_tls_verify)


def api_client(conn: KubernetesConnection, *, pool_size: int = 16) -> ApiClient:
    """A configured ``kubernetes.client.ApiClient`` for this connection (``ConfigError`` when files are missing or
    wrong). Each call builds its own client: clusters never share one. Connects to nothing yet."""
    from kubernetes.client import ApiClient, Configuration
    from kubernetes.config import ConfigException

    configuration = type.__call__(Configuration)  # not a copy of the process-wide default
    if conn.mode == "in-cluster":
        _in_cluster(conn, configuration)
    elif conn.mode == "server":
        _server_config(configuration, conn.server, conn.token, conn.ca_file, conn.insecure_skip_tls_verify)
    else:
        context = _context(conn)
        try:
            _kube_config_module().load_kube_config(config_file=str(_kubeconfig_path(conn)), context=context["name"],
                                                   client_configuration=configuration, persist_config=False)
        except ConfigException as exc:
            raise ConfigError(f"kubeconfig context {context['name']!r}: {exc}") from exc
        if conn.ca_file is not None:
            configuration.ssl_ca_cert = str(conn.ca_file)
        if conn.insecure_skip_tls_verify:
            configuration.verify_ssl = False
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = 0  # a down server is reported at once; the watch loops retry with backoff
    log.debug("Kubernetes client for %s (%s)", configuration.host, conn.mode)
    return ApiClient(configuration)
