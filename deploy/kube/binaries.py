"""Where ``deploy/kube/build.sh`` puts the control-plane binaries, and the versions go.mod pins.

The build script and this module agree on one directory, ``${KUBESTACK_CACHE:-~/.cache/kubestack}/kube/
v<kubernetes version>/bin``, outside the repository so that every clone on a machine shares one build.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kubestack.errors import KubeBinaryNotFoundError

HERE = Path(__file__).parent
GO_MOD = HERE / "go.mod"
BUILD_SCRIPT = HERE / "build.sh"
CACHE_ENV = "KUBESTACK_CACHE"

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
HELM = "helm"


@dataclass(frozen=True)
class PinnedVersions:
    kubernetes: str
    etcd: str
    helm: str


def pinned_versions(go_mod: Path = GO_MOD) -> PinnedVersions:
    """The versions go.mod requires (without the leading ``v``)."""
    text = go_mod.read_text()

    def required(module: str) -> str:
        match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} v(\S+)", text, re.MULTILINE)
        if match is None:
            raise KubeBinaryNotFoundError(f"{module} is not required in {go_mod}")
        return match.group(1)

    return PinnedVersions(required("k8s.io/kubernetes"), required("go.etcd.io/etcd/server/v3"),
                          required("helm.sh/helm/v4"))


def default_bin_dir() -> Path:
    cache = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "kubestack")
    return cache / "kube" / f"v{pinned_versions().kubernetes}" / "bin"


def binary(name: str, bin_dir: Path | None = None) -> Path:
    """The path of one built binary; a one-line error saying how to build it when it is missing."""
    path = (bin_dir or default_bin_dir()) / name
    if not os.access(path, os.X_OK):
        raise KubeBinaryNotFoundError(
            f"{name} not found in {path.parent}: run `make setup` (or {BUILD_SCRIPT}) to build the local "
            f"Kubernetes v{pinned_versions().kubernetes} control plane"
        )
    return path
