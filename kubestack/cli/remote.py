"""Calls from the CLI to the KubeStack API (``kubestack api serve``): the same roles, tenants and audit as the
console, so ``kubestack proposals approve`` is recorded with the token's name like a click in the console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from kubestack.errors import RemoteApiError

if TYPE_CHECKING:  # httpx only when the API is called (its import is most of a command's start otherwise)
    import httpx

    from kubestack.settings import Settings

UrlOption = Annotated[str | None, typer.Option(
    "--api-url", envvar="KUBESTACK_API_URL", help="The API (default: http://<api.host>:<api.port>)")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="KUBESTACK_API_TOKEN", help="API token (see `kubestack api token`)", show_default=False)]


class ApiClient:
    def __init__(self, url: str, token: str | None, timeout_s: float = 30.0) -> None:
        if not token:
            raise RemoteApiError("no API token: pass --token or set KUBESTACK_API_TOKEN "
                                 "(`kubestack api serve` prints one; `kubestack api token` makes one)")
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s)

    @classmethod
    def from_options(cls, settings: Settings, url: str | None, token: str | None) -> ApiClient:
        return cls(url or f"http://{settings.api.host}:{settings.api.port}", token)

    def get(self, path: str, **params: Any) -> dict:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict) -> dict:
        return self._call("POST", path, json=body)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict:
        import httpx

        try:
            response = self._http.request(method, f"/api/v1{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteApiError(f"cannot reach the API at {self.url} ({exc}): is `kubestack api serve` running, "
                                 "and is --api-url right?") from exc
        if response.is_success:
            return response.json()
        raise RemoteApiError(f"{method} {path}: {response.status_code} {_detail(response)}")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # invalid input: [{loc, msg}, ...]
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg')}" for d in detail)
    return str(detail)
