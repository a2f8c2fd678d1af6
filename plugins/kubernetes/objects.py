"""Reading raw API objects (the JSON the API server sends, camelCase keys): times, quantities, owners, and the
slimmed copy the watch cache keeps (what the rules read, without managedFields, annotations or foreign data)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

Obj = dict[str, Any]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal("1e3"),
            "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"),
            "E": Decimal("1e18")}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_HASH_SUFFIX = re.compile(r"^(.+)-[a-z0-9]{5,10}$")


def parse_quantity(text: str | int | float | None) -> float | None:
    """A Kubernetes quantity (``512Mi``, ``1.5Gi``, ``250m``, ``2``, ``1e3``) as a plain number; None if unreadable."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    match = _QUANTITY.match(text.strip())
    if not match:
        return None
    number, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    if suffix in _BINARY:
        return float(value * _BINARY[suffix])
    if suffix in _DECIMAL:
        return float(value * _DECIMAL[suffix])
    return None


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time of the API (``2024-05-01T10:00:00Z``, or with fractions for MicroTime)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def condition(obj: Obj, kind: str) -> Obj | None:
    """The status condition of type ``kind`` (Ready, PodScheduled, Progressing, ...), if the object has one."""
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def object_key(obj: Obj) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (nodes)."""
    m = meta(obj)
    return f"{m['namespace']}/{m.get('name', '')}" if m.get("namespace") else m.get("name", "")


def controller_of(obj: Obj) -> tuple[str, str] | None:
    """``(kind, name)`` of the object's controlling owner, lower-case kind."""
    refs = meta(obj).get("ownerReferences") or []
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    return (ref["kind"].lower(), ref["name"]) if ref else None


def replicaset_deployment(name: str, template_hash: str | None = None) -> str | None:
    """The Deployment a ReplicaSet belongs to, from its name (``<deployment>-<pod-template-hash>``)."""
    if template_hash and name.endswith(f"-{template_hash}"):
        return name[: -len(template_hash) - 1]
    match = _HASH_SUFFIX.match(name)
    return match.group(1) if match and not template_hash else None


def workload_of(pod: Obj) -> tuple[str, str] | None:
    """``(kind, name)`` of the workload that runs a pod: a ReplicaSet is read as its Deployment (by the
    ``pod-template-hash`` label), a Job stays a job; None for a bare pod."""
    owner = controller_of(pod)
    if owner is None:
        return None
    kind, name = owner
    if kind == "replicaset":
        deployment = replicaset_deployment(name, (meta(pod).get("labels") or {}).get("pod-template-hash"))
        return ("deployment", deployment) if deployment else owner
    return owner


# --- what the cache keeps ---------------------------------------------------------------------------

_META_KEEP = ("name", "namespace", "uid", "labels", "ownerReferences", "creationTimestamp", "deletionTimestamp",
              "resourceVersion", "generation")
_CONTAINER_KEEP = ("name", "image", "resources", "ports")


def _slim_meta(obj: Obj) -> Obj:
    m = meta(obj)
    return {k: m[k] for k in _META_KEEP if k in m}


def _slim_pod(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    containers = [{k: c[k] for k in _CONTAINER_KEEP if k in c} for c in spec.get("containers") or []]
    volumes = [v for v in spec.get("volumes") or [] if "configMap" in v]
    return {"metadata": _slim_meta(obj),
            "spec": {"nodeName": spec.get("nodeName"), "containers": containers, "volumes": volumes,
                     "hostNetwork": spec.get("hostNetwork", False)},
            "status": obj.get("status") or {}}


def _slim_event(obj: Obj) -> Obj:
    keep = ("involvedObject", "reason", "message", "type", "count", "firstTimestamp", "lastTimestamp", "eventTime",
            "series", "source", "reportingComponent")
    return {"metadata": _slim_meta(obj), **{k: obj[k] for k in keep if k in obj}}


CONFIG_FILE_SUFFIXES = (".conf", ".cnf", ".properties")
"""ConfigMap keys whose data the cache keeps: what may be a middleware's configuration file."""


def slim(kind: str, obj: Obj) -> Obj:
    """The part of ``obj`` the rules read. ConfigMaps keep only the data of what may be configuration files
    (``CONFIG_FILE_SUFFIXES``); everything else of theirs is dropped."""
    if kind == "pods":
        return _slim_pod(obj)
    if kind == "events":
        return _slim_event(obj)
    if kind == "configmaps":
        data = {k: v for k, v in (obj.get("data") or {}).items() if k.lower().endswith(CONFIG_FILE_SUFFIXES)}
        return {"metadata": _slim_meta(obj), "data": data}
    if kind == "nodes":
        status = obj.get("status") or {}
        return {"metadata": _slim_meta(obj), "spec": {"unschedulable": (obj.get("spec") or {}).get("unschedulable")},
                "status": {k: status[k] for k in ("conditions", "addresses", "capacity", "allocatable", "nodeInfo")
                           if k in status}}
    if kind == "services":
        spec = obj.get("spec") or {}
        return {"metadata": _slim_meta(obj),
                "spec": {k: spec[k] for k in ("selector", "ports", "clusterIP", "type") if k in spec}}
    spec = obj.get("spec") or {}
    template = (spec.get("template") or {}).get("spec") or {}
    kept = {k: spec[k] for k in ("replicas", "selector", "paused", "progressDeadlineSeconds", "serviceName")
            if k in spec}
    kept["template"] = {"spec": {"containers": [{k: c[k] for k in ("name", "image") if k in c}
                                                for c in template.get("containers") or []]}}
    return {"metadata": _slim_meta(obj), "spec": kept, "status": obj.get("status") or {}}
