"""Resource identities of a cluster's objects, related the way the correlator reads them.

- a node is ``kind=node`` with ``host`` = its name (so the ``host`` plugin of an agent on it shares the host) and
  ``address`` = its InternalIP;
- a pod is ``kind=pod`` in its namespace, ``owner`` = ``deployment/x`` (a ReplicaSet read as its Deployment),
  ``node`` = where it runs, ``address`` = its IP (so a Redis or PostgreSQL server that sees it as a client links to
  it), ``depends_on`` = its node;
- a workload (``deployment``, ``statefulset``) ``depends_on`` its current pods;
- a middleware target found in the cluster ``depends_on`` its workload and pods (``discovery.py``).

Pods are not given their node as ``host``: two pods sharing a node are not related by that alone (a node's own
findings relate them, through ``depends_on``). Every identity carries the cluster name.
"""

from __future__ import annotations

from kubestack.contract.base import ResourceRef
from kubestack.plugins.kubernetes.objects import Obj, meta, workload_of

ADDRESS = "address"
OWNER = "owner"
NODE = "node"
DEPENDS_ON = "depends_on"
APP = "app"
MIDDLEWARE = "middleware"
MAX_DEPENDS = 32
"""Pods named in one workload's ``depends_on`` (a label, not an inventory)."""

_APP_LABELS = ("app.kubernetes.io/name", "app", "k8s-app")


def node_ref(cluster: str, node: Obj | str) -> ResourceRef:
    name = node if isinstance(node, str) else meta(node).get("name", "")
    labels = {}
    if not isinstance(node, str):
        addresses = {a.get("type"): a.get("address") for a in (node.get("status") or {}).get("addresses") or []}
        if addresses.get("InternalIP"):
            labels[ADDRESS] = addresses["InternalIP"]
        zone = (meta(node).get("labels") or {}).get("topology.kubernetes.io/zone")
        if zone:
            labels["zone"] = zone
    return ResourceRef(kind="node", name=name, host=name, cluster=cluster, labels=labels)


def node_key(cluster: str, name: str) -> str:
    return ResourceRef(kind="node", name=name, host=name, cluster=cluster).key


def app_name(labels: dict[str, str]) -> str | None:
    return next((labels[k] for k in _APP_LABELS if labels.get(k)), None)


def pod_ref(cluster: str, pod: Obj) -> ResourceRef:
    m = meta(pod)
    node = (pod.get("spec") or {}).get("nodeName")
    ip = (pod.get("status") or {}).get("podIP")
    labels: dict[str, str] = {}
    workload = workload_of(pod)
    if workload:
        labels[OWNER] = f"{workload[0]}/{workload[1]}"
    if node:
        labels[NODE] = node
        labels[DEPENDS_ON] = node_key(cluster, node)
    if ip:
        labels[ADDRESS] = ip
    app = app_name(m.get("labels") or {})
    if app:
        labels[APP] = app
    return ResourceRef(kind="pod", name=m.get("name", ""), namespace=m.get("namespace"), cluster=cluster,
                       labels=labels)


def workload_ref(cluster: str, kind: str, obj: Obj, pod_keys: list[str] = ()) -> ResourceRef:
    """``kind`` is ``deployment`` or ``statefulset``; ``pod_keys`` the resource keys of its pods now."""
    m = meta(obj)
    labels = {DEPENDS_ON: ",".join(sorted(pod_keys)[:MAX_DEPENDS])} if pod_keys else {}
    app = app_name(m.get("labels") or {})
    if app:
        labels[APP] = app
    return ResourceRef(kind=kind, name=m.get("name", ""), namespace=m.get("namespace"), cluster=cluster,
                       labels=labels)


def object_ref(cluster: str, kind: str, name: str, namespace: str | None = None) -> ResourceRef:
    """Any other object (a PersistentVolumeClaim an event is about): its lower-case kind, name and namespace."""
    return ResourceRef(kind=kind.lower(), name=name, namespace=namespace or None, cluster=cluster)


def configmap_ref(cluster: str, configmap: Obj, middleware: str) -> ResourceRef:
    m = meta(configmap)
    return ResourceRef(kind="configmap", name=m.get("name", ""), namespace=m.get("namespace"), cluster=cluster,
                       labels={MIDDLEWARE: middleware})
