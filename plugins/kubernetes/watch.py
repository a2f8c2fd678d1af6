"""One collection of one cluster (in one namespace, or in all) kept in sync by a daemon thread: list, then watch
from the list's resourceVersion, resume from the last version seen when a watch ends, list again on ``410 Gone``,
reconnect with a growing, jittered backoff while the API server is away. Changes are handed to ``deliver`` (called
in the thread; the plugin passes them to its event loop). Nothing here raises: the state and the last error are on
the watcher for the plugin to report."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from kubernetes.client import ApiClient

from kubestack.errors import TargetAuthError, TargetError
from kubestack.plugins.kubernetes.api import ApiStatusError, WatchStream, collection_path, list_all
from kubestack.plugins.kubernetes.cache import Change, WatchCache, error_code

log = logging.getLogger(__name__)

GONE = 410
FIRST_BACKOFF_S = 0.5


def next_backoff(previous: float, ceiling: float, jitter: float | None = None) -> float:
    """Doubling from ``FIRST_BACKOFF_S`` up to ``ceiling``, with +-20% jitter so that agents do not all return at
    once after an API server outage."""
    base = min(max(previous * 2, FIRST_BACKOFF_S), ceiling)
    return base * (jitter if jitter is not None else random.uniform(0.8, 1.2))


class Watcher:
    def __init__(self, client: ApiClient, kind: str, namespace: str | None, deliver: Callable[[list[Change]], None],
                 *, timeout_s: float, watch_timeout_s: int, backoff_max_s: float, max_objects: int) -> None:
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.path = collection_path(kind, namespace)
        self.deliver = deliver
        self.timeout_s = timeout_s
        self.watch_timeout_s = watch_timeout_s
        self.backoff_max_s = backoff_max_s
        self.cache = WatchCache(kind, max_objects)
        self.error: TargetError | None = None
        self.lists = 0
        self.reconnects = 0
        self.events = 0
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._thread = threading.Thread(target=self._run, name=f"kube-watch-{kind}-{namespace or 'all'}", daemon=True)

    @property
    def name(self) -> str:
        return f"{self.kind}" + (f" in {self.namespace}" if self.namespace else "")

    @property
    def forbidden(self) -> bool:
        return isinstance(self.error, TargetAuthError)

    @property
    def synced(self) -> bool:
        return self.cache.synced and self.error is None

    def start(self) -> None:
        self._thread.start()

    def stop(self, join_s: float = 2.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread.is_alive():
            self._thread.join(join_s)

    def _list(self) -> None:
        items, version = list_all(self.client, self.path, self.timeout_s, self.kind)
        self.lists += 1
        changes = self.cache.replace(items, version)
        log.debug("listed %d %s at %s (%d changes)", len(items), self.name, version, len(changes))
        self.deliver(changes)

    def _watch(self) -> None:
        """Follow one watch request until it ends; returns normally when the server closes it or on 410."""
        self._stream = WatchStream(self.client, self.path, self.cache.resource_version or "", self.watch_timeout_s,
                                   read_timeout_s=self.watch_timeout_s + 30.0, kind=self.kind)
        if self.error is not None:
            log.info("watching %s again", self.name)
        self.error = None
        try:
            for event in self._stream:
                if self._stop.is_set():
                    return
                code = error_code(event)
                if code == GONE:
                    self.cache.expire()
                    return
                if code is not None:
                    raise ApiStatusError(code, (event.get("object") or {}).get("message", ""), self.path)
                changes = self.cache.apply(event)
                self.events += 1
                if changes:
                    self.deliver(changes)
        finally:
            self._stream.close()
            self._stream = None

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            try:
                if not self.cache.synced:
                    self._list()
                self._watch()
                delay = 0.0
                continue
            except ApiStatusError as exc:
                if exc.status == GONE:
                    self.cache.expire()
                    continue
                failure: TargetError = exc
            except TargetError as exc:
                failure = exc
            except Exception as exc:  # a bug in a watch thread must not end the watch for good
                log.exception("watching %s failed unexpectedly", self.name)
                failure = TargetError(f"{type(exc).__name__}: {exc}")
            if self._stop.is_set():
                return
            self.reconnects += 1
            first = self.error is None
            self.error = failure
            delay = self.backoff_max_s if isinstance(failure, TargetAuthError) else next_backoff(delay,
                                                                                                 self.backoff_max_s)
            (log.warning if first else log.debug)("watching %s: %s (again in %.1fs)", self.name, failure, delay)
            self._stop.wait(delay)
