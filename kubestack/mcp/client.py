"""The MCP server's calls to the KubeStack API, with one caller's bearer token: over stdio the token the server was
started with, over streamable HTTP the one the MCP client sent (passed through, never stored)."""

from __future__ import annotations

from typing import Any

import httpx

from kubestack.errors import RemoteApiError

TIMEOUT_S = 60.0
"""A question runs live checks (up to 30 s each, in parallel) before it is answered."""


class ApiCaller:
    def __init__(self, url: str, authorization: str, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": authorization}
        self.timeout_s = timeout_s

    async def get(self, path: str, **params: Any) -> Any:
        return await self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        return await self._call("POST", path, json=body)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, headers=self._headers, timeout=self.timeout_s) as http:
            try:
                response = await http.request(method, f"/api/v1{path}", **kwargs)
            except httpx.HTTPError as exc:
                raise RemoteApiError(f"cannot reach the KubeStack API at {self.url} ({type(exc).__name__}: {exc}); "
                                     "is `kubestack api serve` running, and is --api-url right?") from exc
        if response.is_success:
            return response.json()
        raise RemoteApiError(f"the KubeStack API answered {method} {path} with {response.status_code} "
                             f"{_error(response)}")


def _error(response: httpx.Response) -> str:
    """``code: detail`` from the API's error body ``{"error", "detail"}``; a list of ``{loc, msg}`` as one line."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(body, dict):
        return str(body)[:300]
    detail = body.get("detail", body)
    if isinstance(detail, list):
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg')}" for d in detail
                           if isinstance(d, dict))
    return f"{body.get('error', 'error')}: {detail}"
