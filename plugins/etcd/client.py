"""What the etcd plugin asks of a member, through the v3 HTTP JSON gateway and ``/metrics`` of its client URL
(httpx). Connection failures become ``TargetError`` subclasses; an error the member answers (``{"error": ...,
"code": ...}``) becomes ``CommandFailedError`` with etcd's message."""

from __future__ import annotations

from typing import Any

import httpx

from kubestack.errors import (
    CommandFailedError,
    TargetAuthError,
    TargetError,
    TargetTimeoutError,
    TargetUnreachableError,
)
from kubestack.plugins.etcd.config import EtcdConfig
from kubestack.plugins.etcd.parse import Alarm, Member, Status, parse_alarms, parse_members, parse_status


class EtcdClient:
    """One member's client URL; ``at(url)`` asks another member with the same TLS settings and timeout."""

    def __init__(self, config: EtcdConfig, url: str | None = None) -> None:
        self._config = config
        self.url = (url or config.url).rstrip("/")
        verify: Any = str(config.ca_file) if config.ca_file else True
        cert = (str(config.cert_file), str(config.key_file)) if config.cert_file and config.key_file else None
        self._http = httpx.AsyncClient(base_url=self.url, timeout=config.timeout_s, verify=verify, cert=cert)

    def at(self, url: str) -> EtcdClient:
        return EtcdClient(self._config, url)

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise TargetTimeoutError(f"etcd at {self.url} gave no answer to {path} in "
                                     f"{self._config.timeout_s:g}s") from exc
        except httpx.TransportError as exc:
            raise TargetUnreachableError(f"etcd at {self.url} cannot be reached: {exc}") from exc
        if response.status_code in (401, 403):
            raise TargetAuthError(f"etcd at {self.url} refused {path}: {response.text[:200]}")
        return response

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._send("POST", path, body)
        try:
            data = response.json()
        except ValueError:
            raise TargetUnreachableError(f"{self.url}{path} does not speak the etcd v3 gateway "
                                         f"(HTTP {response.status_code}): {response.text[:200]!r}") from None
        if response.status_code != 200 or "error" in data:
            message = data.get("message") or data.get("error") or response.text[:200]
            raise CommandFailedError(["POST", f"{self.url}{path}"], response.status_code, str(message))
        return data

    async def status(self) -> Status:
        return parse_status(await self._post("/v3/maintenance/status", {}))

    async def members(self) -> list[Member]:
        return parse_members(await self._post("/v3/cluster/member/list", {}))

    async def alarms(self) -> list[Alarm]:
        return parse_alarms(await self._post("/v3/maintenance/alarm", {"action": "GET"}))

    async def metrics(self) -> str:
        response = await self._send("GET", "/metrics")
        if response.status_code != 200:
            raise CommandFailedError(["GET", f"{self.url}/metrics"], response.status_code, response.text[:200])
        return response.text

    async def defragment(self) -> None:
        await self._post("/v3/maintenance/defragment", {})

    async def compact(self, revision: int) -> None:
        await self._post("/v3/kv/compaction", {"revision": str(revision), "physical": True})

    async def disarm(self, member_id: str, alarm: str) -> list[Alarm]:
        return parse_alarms(await self._post("/v3/maintenance/alarm", {"action": "DEACTIVATE", "memberID": member_id,
                                                                       "alarm": alarm}))

    async def close(self) -> None:
        await self._http.aclose()


async def member_views(client: EtcdClient, members: list[Member], own: Status | None = None) -> dict[str, Status | str]:
    """Member id → its status read at its own client URL (``own`` stands for the member ``client`` asks), or why it
    could not be read."""
    views: dict[str, Status | str] = {}
    for member in members:
        if own is not None and member.id == own.member_id:
            views[member.id] = own
            continue
        if not member.client_urls:
            views[member.id] = "no client URL (never started)"
            continue
        other = client.at(member.client_urls[0])
        try:
            views[member.id] = await other.status()
        except (TargetError, CommandFailedError) as exc:
            views[member.id] = str(exc)
        finally:
            await other.close()
    return views
