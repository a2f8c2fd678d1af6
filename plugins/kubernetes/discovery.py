"""Middleware in a cluster (pure): pods recognised by their ``app.kubernetes.io/name`` (or ``app``) label or their
image, as each installed plugin declares (``KubeDiscovery``, e.g. Redis by ``redis``, ``valkey``), reached through the Services that select them, as
agent targets of the plugins that collect from them (plain dicts shaped like ``TargetConfig``).

- A headless Service named by a StatefulSet (``serviceName``) gives one target per pod, through the pod's own DNS
  name (``redis-0.redis-headless.shop.svc.cluster.local``): each replica is watched apart.
- Any other Service gives one target through the Service's DNS name for the pods it selects that have none yet
  (a headless one only when it selects one such pod: its name resolves to each pod in turn).
- Each target ``depends_on`` its workload and pods, and carries the cluster and namespace, so that correlation
  reads app → middleware → pod → node.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from kubestack.plugins.kubernetes.config import DiscoveryConfig
from kubestack.plugins.kubernetes.objects import Obj, meta, workload_of
from kubestack.plugins.kubernetes.resources import ADDRESS, DEPENDS_ON, MAX_DEPENDS, app_name, pod_ref
from kubestack.plugins.registry import plugins

@dataclass(frozen=True)
class Declared:
    """What the installed plugins declare for discovery (``KubeDiscovery``), by kind."""

    ports: dict[str, int]
    apps: dict[str, str]
    images: dict[str, str]
    address_keys: dict[str, str]


@cache
def declared() -> Declared:
    ports, apps, images, address_keys = {}, {}, {}, {}
    for kind, plugin in plugins().items():
        found = getattr(plugin, "discovery", None)
        port = found and (found.port or getattr(plugin, "default_port", None))
        if not port:
            continue
        ports[kind] = port
        apps.update({app.lower(): kind for app in found.apps})
        images.update({image.lower(): kind for image in found.images})
        if found.address_key:
            address_keys[kind] = found.address_key
    return Declared(ports, apps, images, address_keys)


def discoverable_kinds() -> list[str]:
    """Every kind an installed plugin declares discovery for: the default of ``discover.kinds``."""
    return sorted(declared().ports)


def image_name(image: str) -> str:
    """``docker.io/bitnami/redis:7.2@sha256:..`` → ``redis``."""
    path = image.split("@", 1)[0]
    last = path.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def middleware_of(pod: Obj, kinds: list[str]) -> tuple[str, Obj] | None:
    """``(kind, container)`` of the middleware a pod runs, by label first, then by image."""
    containers = (pod.get("spec") or {}).get("containers") or []
    if not containers:
        return None
    known = declared()
    by_label = known.apps.get((app_name(meta(pod).get("labels") or {}) or "").lower())
    for container in containers:
        kind = known.images.get(image_name(container.get("image", "")))
        if kind and kind in kinds and (by_label in (None, kind)):
            return kind, container
    if by_label in kinds:
        port = known.ports[by_label]
        serving = next((c for c in containers if any(p.get("containerPort") == port for p in c.get("ports") or [])),
                       containers[0])
        return by_label, serving
    return None


def selects(service: Obj, pod: Obj) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = meta(pod).get("labels") or {}
    return bool(selector) and meta(service).get("namespace") == meta(pod).get("namespace") and \
        all(labels.get(k) == v for k, v in selector.items())


def _container_port(container: Obj, kind: str) -> tuple[int, str | None]:
    """The port the middleware listens on in ``container``: its default if declared, else the first declared."""
    ports = container.get("ports") or []
    default = declared().ports[kind]
    chosen = next((p for p in ports if p.get("containerPort") == default), ports[0] if ports else None)
    return (int(chosen["containerPort"]), chosen.get("name")) if chosen else (default, None)


def service_port(service: Obj, container_port: int, port_name: str | None) -> int | None:
    """The Service port that forwards to the container's port (by number or name)."""
    for port in (service.get("spec") or {}).get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        if target == container_port or (port_name and target == port_name) or \
                (target is None and port.get("port") == container_port):
            return int(port["port"])
    return None


def _target(kind: str, name: str, host: str, port: int, namespace: str, cluster: str, depends: list[str],
            config: DiscoveryConfig) -> dict:
    address_key = declared().address_keys.get(kind)
    base = {address_key: f"{host}:{port}"} if address_key else {"host": host, "port": port}
    labels = {DEPENDS_ON: ",".join(sorted(set(depends))[:MAX_DEPENDS])}
    if address_key:  # one address for the target: peers name the listener by it
        labels[ADDRESS] = f"{host}:{port}"
    return {"type": kind, "name": name, "namespace": namespace, "cluster": cluster, "interval": config.interval,
            "labels": labels, "config": base | config.config.get(kind, {})}


def _depends(cluster: str, pods: list[Obj]) -> list[str]:
    keys = [pod_ref(cluster, p).key for p in pods]
    for pod in pods:
        workload = workload_of(pod)
        if workload:
            keys.append(f"{cluster}/{meta(pod).get('namespace')}/{workload[0]}/{workload[1]}")
    return keys


def _statefulset_service(pod: Obj, statefulsets: dict[str, Obj]) -> str | None:
    workload = workload_of(pod)
    if not workload or workload[0] != "statefulset":
        return None
    sts = statefulsets.get(f"{meta(pod).get('namespace')}/{workload[1]}")
    return ((sts or {}).get("spec") or {}).get("serviceName")


def _headless(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def discover_targets(cluster: str, pods: list[Obj], services: list[Obj], statefulsets: dict[str, Obj],
                     config: DiscoveryConfig) -> list[dict]:
    """Targets for the middleware of one cluster (``statefulsets`` by ``namespace/name``), sorted by name."""
    found = {id(p): m for p in pods if (m := middleware_of(p, config.kinds))}
    middleware = [p for p in pods if id(p) in found and not meta(p).get("deletionTimestamp")]
    domain = config.cluster_domain
    targets: dict[str, dict] = {}
    covered: set[int] = set()
    for service in services:
        svc, ns = meta(service).get("name"), meta(service).get("namespace")
        if not _headless(service):
            continue
        for pod in (p for p in middleware if selects(service, p) and _statefulset_service(p, statefulsets) == svc):
            kind, container = found[id(pod)]
            port, _ = _container_port(container, kind)
            name = meta(pod)["name"]
            targets[f"{name}.{ns}"] = _target(kind, f"{name}.{ns}", f"{name}.{svc}.{ns}.svc.{domain}", port, ns,
                                              cluster, _depends(cluster, [pod]), config)
            covered.add(id(pod))
    for service in sorted(services, key=_headless):  # a headless Service's name resolves to every pod: last
        svc, ns = meta(service).get("name"), meta(service).get("namespace")
        chosen = [p for p in middleware if selects(service, p) and id(p) not in covered]
        if not chosen or (_headless(service) and len(chosen) > 1) or f"{svc}.{ns}" in targets:
            continue
        kind, container = found[id(chosen[0])]
        port = service_port(service, *_container_port(container, kind))
        if port is None:
            continue
        targets[f"{svc}.{ns}"] = _target(kind, f"{svc}.{ns}", f"{svc}.{ns}.svc.{domain}", port, ns, cluster,
                                         _depends(cluster, chosen), config)
        covered.update(id(p) for p in chosen)
    return [targets[name] for name in sorted(targets)]


def unreachable(pods: list[Obj], services: list[Obj], config: DiscoveryConfig) -> list[str]:
    """``namespace/pod`` of middleware pods no Service selects (not monitored: nothing stable to reach them by)."""
    return sorted(f"{meta(p).get('namespace')}/{meta(p).get('name')}" for p in pods
                  if middleware_of(p, config.kinds) and not any(selects(s, p) for s in services))
