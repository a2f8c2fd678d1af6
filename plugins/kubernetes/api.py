"""The few API requests the collector makes, as raw JSON (no model deserialisation: the rules read the API's own
field names, and the cache keeps only what they read): paged lists, watch streams, ``/version``. Blocking: run
them in a thread. Failures become ``TargetError``s; the HTTP status stays on ``ApiStatusError.status``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from kubestack.errors import TargetAuthError, TargetError, TargetTimeoutError, TargetUnreachableError

log = logging.getLogger(__name__)

PATHS = {
    "pods": ("/api/v1", "pods", True),
    "events": ("/api/v1", "events", True),
    "configmaps": ("/api/v1", "configmaps", True),
    "services": ("/api/v1", "services", True),
    "nodes": ("/api/v1", "nodes", False),
    "deployments": ("/apis/apps/v1", "deployments", True),
    "statefulsets": ("/apis/apps/v1", "statefulsets", True),
}
"""Collection → (group path, resource, namespaced)."""
FIELD_SELECTORS = {"events": "type=Warning"}
"""What the server filters for us: only Warning events are read (Normal ones are most of the traffic)."""
PAGE = 500


class ApiStatusError(TargetError):
    """The API server answered with an error status (403 forbidden, 410 gone, ...)."""

    def __init__(self, status: int, reason: str, path: str) -> None:
        super().__init__(f"{path}: HTTP {status} {reason}".strip())
        self.status = status
        self.retriable = status >= 500 or status == 429


def collection_path(kind: str, namespace: str | None = None) -> str:
    group, resource, namespaced = PATHS[kind]
    if namespace and namespaced:
        return f"{group}/namespaces/{namespace}/{resource}"
    return f"{group}/{resource}"


def _failure(exc: Exception, server: str) -> TargetError:
    if isinstance(exc, ApiException):
        if exc.status in (401, 403):
            return TargetAuthError(f"Kubernetes API {server}: HTTP {exc.status} {exc.reason}: check the token "
                                   "and its RBAC permissions")
        if exc.status == 0:  # TLS failures come back as status 0
            return TargetUnreachableError(f"Kubernetes API {server}: {exc.reason}".splitlines()[0][:300])
        return ApiStatusError(exc.status, exc.reason or "", server)
    if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError, TimeoutError)):
        return TargetTimeoutError(f"Kubernetes API {server} gave no answer in time")
    reason = getattr(exc, "reason", None) or exc
    return TargetUnreachableError(f"Kubernetes API {server} cannot be reached: {type(reason).__name__}: {reason}"[:300])


def _request(client: ApiClient, path: str, query: list[tuple[str, Any]], timeout: tuple[float, float]):
    method, url, headers, body, post = client.param_serialize(
        method="GET", resource_path=path, query_params=query, header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"])
    try:
        response = client.call_api(method, url, headers, body, post, _request_timeout=timeout)
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise _failure(exc, client.configuration.host) from exc
    if not 200 <= response.status <= 299:
        data = response.read()
        status = json.loads(data or b"{}") if data and data.lstrip().startswith(b"{") else {}
        error = ApiException(status=response.status, reason=status.get("message") or response.reason)
        raise _failure(error, client.configuration.host)
    return response


def _decode(response, client: ApiClient) -> dict:
    try:
        return json.loads(response.read())
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _failure(exc, client.configuration.host) from exc
    except ValueError as exc:
        raise TargetUnreachableError(f"Kubernetes API {client.configuration.host} sent no JSON: {exc}") from exc


def get_json(client: ApiClient, path: str, timeout_s: float) -> dict:
    return _decode(_request(client, path, [], (timeout_s, timeout_s)), client)


def _selected(kind: str | None) -> list[tuple[str, str]]:
    return [("fieldSelector", FIELD_SELECTORS[kind])] if kind in FIELD_SELECTORS else []


def list_all(client: ApiClient, path: str, timeout_s: float, kind: str | None = None) -> tuple[list[dict], str]:
    """Every object of a collection (paged; ``kind``'s field selector applied) and the resourceVersion to watch
    from."""
    items, token = [], None
    while True:
        query = [("limit", PAGE)] + ([("continue", token)] if token else []) + _selected(kind)
        page = _decode(_request(client, path, query, (timeout_s, max(timeout_s, 30.0))), client)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items, (page.get("metadata") or {}).get("resourceVersion", "")


class WatchStream:
    """One watch request: events as dicts until the server ends it (``timeoutSeconds``) or ``close`` is called
    from another thread."""

    def __init__(self, client: ApiClient, path: str, resource_version: str, timeout_s: int,
                 read_timeout_s: float, kind: str | None = None) -> None:
        query = [("watch", "true"), ("resourceVersion", resource_version), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", timeout_s)] + _selected(kind)
        self.server = client.configuration.host
        self.response = _request(client, path, query, (read_timeout_s, read_timeout_s)).response

    def __iter__(self) -> Iterator[dict]:
        buffer = b""
        try:
            for chunk in self.response.stream(64 * 1024, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except ValueError as exc:
            raise TargetUnreachableError(f"Kubernetes API {self.server} sent a broken watch event: {exc}") from exc
        except (urllib3.exceptions.HTTPError, OSError, AttributeError) as exc:
            if self.response.closed:
                return
            raise _failure(exc, self.server) from exc

    def close(self) -> None:
        """End the request, also while another thread is blocked reading it (its read then fails)."""
        try:
            self.response.shutdown()
        except (AttributeError, OSError, ValueError, RuntimeError):  # no socket (left) to shut down
            pass
        self.response.close()
