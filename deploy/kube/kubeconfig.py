"""Kubeconfig files for the local API server: one named context per (token, namespace), bearer-token users."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class KubeContext:
    """One context of a kubeconfig: a name, whose token it uses, and its default namespace."""

    name: str
    token: str
    namespace: str | None = None


def write_kubeconfig(path: Path, server: str, ca_file: Path, contexts: Sequence[KubeContext],
                     current: str | None = None) -> Path:
    """Write a kubeconfig (mode 0600: it holds tokens) whose contexts all reach ``server``.

    Each context gets a cluster and a user of its own name, as separate clusters would, so a reader that
    resolves a context by name sees the same shape as with a real multi-cluster kubeconfig.
    """
    if not contexts:
        raise ValueError("a kubeconfig needs at least one context")
    names = [context.name for context in contexts]
    if len(set(names)) != len(names):
        raise ValueError(f"context names repeat: {names}")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": c.name, "cluster": {"server": server, "certificate-authority": str(ca_file)}}
                     for c in contexts],
        "users": [{"name": c.name, "user": {"token": c.token}} for c in contexts],
        "contexts": [{"name": c.name,
                      "context": {"cluster": c.name, "user": c.name,
                                  **({"namespace": c.namespace} if c.namespace else {})}}
                     for c in contexts],
        "current-context": current or contexts[0].name,
    }
    if config["current-context"] not in names:
        raise ValueError(f"current context {current!r} is not one of {names}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path
