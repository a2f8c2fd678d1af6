"""What one watch remembers (pure): the resourceVersion to resume from and the version of each object it has
seen, so that a re-list (after ``410 Gone``, or a reconnect that cannot resume) turns into the changes since the
last one — objects added, modified, and deleted while the watch was away."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kubestack.plugins.kubernetes.objects import Obj, meta, object_key, slim

log = logging.getLogger(__name__)

ADDED, MODIFIED, DELETED, BOOKMARK, ERROR = "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"


@dataclass(frozen=True)
class Change:
    """One object of ``kind`` (a watched collection: ``pods``, ``nodes`` ...) as it is now; ``obj`` is the slimmed
    object, or for a deletion the last one seen."""

    kind: str
    type: str
    key: str
    obj: Obj


class WatchCache:
    def __init__(self, kind: str, max_objects: int = 50000) -> None:
        self.kind = kind
        self.max_objects = max_objects
        self.versions: dict[str, str] = {}
        self.resource_version: str | None = None
        self.dropped = 0

    @property
    def synced(self) -> bool:
        return self.resource_version is not None

    def expire(self) -> None:
        """The server no longer has our resourceVersion (410 Gone): the next step is a full list."""
        self.resource_version = None

    def _keep(self, key: str) -> bool:
        if key in self.versions or len(self.versions) < self.max_objects:
            return True
        self.dropped += 1
        if self.dropped == 1:
            log.warning("more than %d %s: the rest are not watched (raise max_objects)", self.max_objects, self.kind)
        return False

    def replace(self, items: list[Obj], resource_version: str) -> list[Change]:
        """A complete list at ``resource_version``: the changes against what was known before."""
        changes, seen = [], set()
        for item in items:
            key, version = object_key(item), meta(item).get("resourceVersion", "")
            seen.add(key)
            if not self._keep(key):
                continue
            if self.versions.get(key) != version:
                changes.append(Change(self.kind, MODIFIED if key in self.versions else ADDED, key, slim(self.kind, item)))
                self.versions[key] = version
        for key in [k for k in self.versions if k not in seen]:
            del self.versions[key]
            changes.append(Change(self.kind, DELETED, key, {"metadata": _meta_of_key(key)}))
        self.resource_version = resource_version
        return changes

    def apply(self, event: Obj) -> list[Change]:
        """One watch event (not ``ERROR``: see ``error_code``). A bookmark only moves the resourceVersion."""
        kind, obj = event.get("type"), event.get("object") or {}
        version = meta(obj).get("resourceVersion")
        if version:
            self.resource_version = version
        if kind == BOOKMARK or kind not in (ADDED, MODIFIED, DELETED):
            return []
        key = object_key(obj)
        if kind == DELETED:
            known = self.versions.pop(key, None) is not None
            return [Change(self.kind, DELETED, key, slim(self.kind, obj))] if known else []
        if not self._keep(key):
            return []
        kind = MODIFIED if key in self.versions else ADDED
        self.versions[key] = version or ""
        return [Change(self.kind, kind, key, slim(self.kind, obj))]


def _meta_of_key(key: str) -> Obj:
    namespace, _, name = key.rpartition("/")
    return {"name": name, "namespace": namespace} if namespace else {"name": name}


def error_code(event: Obj) -> int | None:
    """The HTTP code of a watch ``ERROR`` event (410 when our resourceVersion is too old); None for other events."""
    if event.get("type") != ERROR:
        return None
    return int((event.get("object") or {}).get("code") or 500)
