"""Kubernetes: pods, workloads, nodes and events of a cluster watched through the API server, middleware found in it."""

from kubestack.plugins.kubernetes.config import KubernetesConfig
from kubestack.plugins.kubernetes.plugin import KubernetesPlugin

__all__ = ["KubernetesConfig", "KubernetesPlugin"]
