"""What the RabbitMQ plugin asks of the management HTTP API, and two ways to ask it: a direct connection (httpx)
or ``curl`` run through a ``CommandRunner`` (locally or over SSH). Both return the decoded JSON and turn failures
into ``TargetError`` subclasses; the password goes to curl on stdin, never on its command line."""

from __future__ import annotations

import json
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import httpx

from kubestack.errors import (
    CommandFailedError,
    TargetAuthError,
    TargetError,
    TargetTimeoutError,
    TargetUnreachableError,
)
from kubestack.plugins.base import CommandRunner
from kubestack.plugins.rabbitmq.config import RabbitMQConfig


def path(*parts: str) -> str:
    """``/queues/%2F/orders``: each part quoted whole (the default vhost ``/`` is ``%2F``)."""
    return "/" + "/".join(quote(p, safe="") for p in parts)


class RabbitMQClient(Protocol):
    async def get(self, resource: str, params: dict[str, Any] | None = None) -> Any:
        """The decoded JSON of ``GET /api<resource>``."""
        ...

    async def put(self, resource: str, body: dict[str, Any]) -> None: ...

    async def delete(self, resource: str, *, reason: str | None = None) -> None:
        """``DELETE /api<resource>``; ``reason`` goes in ``X-Reason`` (shown to a closed connection's client)."""
        ...

    async def close(self) -> None: ...


def classify_status(status: int, body: str, method: str, resource: str, where: str) -> Exception | None:
    """The error an HTTP status means (None for success)."""
    if status < 300:
        return None
    if status == 401:
        return TargetAuthError(f"RabbitMQ at {where} refused the credentials")
    if status == 403:
        return TargetAuthError(f"RabbitMQ at {where}: the user may not {method} {resource}: {body[:200]}")
    return CommandFailedError([method, resource], status, body[:500])


class DirectRabbitMQClient:
    """One httpx client, opened on first use."""

    def __init__(self, config: RabbitMQConfig) -> None:
        self._config = config
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            c = self._config
            password = c.password.resolve() if c.password else "guest"
            self._http = httpx.AsyncClient(base_url=c.base_url, auth=(c.user, password or ""), timeout=c.timeout_s,
                                           verify=c.verify_tls, headers={"content-type": "application/json"})
        return self._http

    async def _request(self, method: str, resource: str, **kwargs: Any) -> httpx.Response:
        where = self._config.address
        try:
            response = await self._client().request(method, resource, **kwargs)
        except httpx.TimeoutException as exc:
            raise TargetTimeoutError(f"RabbitMQ at {where} gave no answer in {self._config.timeout_s:g}s") from exc
        except httpx.TransportError as exc:
            raise TargetUnreachableError(f"RabbitMQ at {where} cannot be reached: {exc}") from exc
        error = classify_status(response.status_code, response.text, method, resource, where)
        if error is not None:
            raise error
        return response

    async def get(self, resource: str, params: dict[str, Any] | None = None) -> Any:
        response = await self._request("GET", resource, params=params)
        try:
            return response.json()
        except ValueError as exc:
            raise TargetUnreachableError(f"{self._config.address} does not answer like the RabbitMQ management "
                                         f"API: {response.text[:200]!r}") from exc

    async def put(self, resource: str, body: dict[str, Any]) -> None:
        await self._request("PUT", resource, json=body)

    async def delete(self, resource: str, *, reason: str | None = None) -> None:
        await self._request("DELETE", resource, headers={"X-Reason": reason} if reason else None)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


_STATUS_MARK = "\nkubestack-http-status:"


def classify_curl_error(exc: CommandFailedError, where: str) -> TargetError | None:
    """curl's exit codes: 6/7 cannot resolve or connect, 28 timed out, 35/60 TLS."""
    if exc.returncode in (6, 7, 35, 60):
        return TargetUnreachableError(f"RabbitMQ at {where} cannot be reached: {exc.stderr.strip()}")
    if exc.returncode == 28:
        return TargetTimeoutError(f"RabbitMQ at {where} gave no answer: {exc.stderr.strip()}")
    return None


class CurlRabbitMQClient:
    """``curl`` through a runner; its options (the login, a body) are read from stdin (``-K -``)."""

    def __init__(self, config: RabbitMQConfig, runner: CommandRunner) -> None:
        self._config = config
        self._runner = runner

    async def _call(self, method: str, resource: str, *, params: dict[str, Any] | None = None,
                    body: dict[str, Any] | None = None, reason: str | None = None) -> str:
        c = self._config
        url = c.base_url + resource + (f"?{urlencode(params)}" if params else "")
        password = (c.password.resolve() if c.password else "guest") or ""
        options = [f'user = "{_curl_quote(c.user)}:{_curl_quote(password)}"']
        if body is not None:
            options += ['header = "content-type: application/json"', f'data = "{_curl_quote(json.dumps(body))}"']
        if reason:
            options.append(f'header = "X-Reason: {_curl_quote(reason)}"')
        argv = [c.curl, "-sS", "-K", "-", "-X", method, "--max-time", f"{c.timeout_s:g}",
                "-w", _STATUS_MARK.replace("\n", "\\n") + "%{http_code}", url]
        if not c.verify_tls:
            argv.insert(1, "-k")
        try:
            out = await self._runner.run(argv, timeout=c.timeout_s + 2, stdin="\n".join(options) + "\n")
        except CommandFailedError as exc:
            error = classify_curl_error(exc, c.address)
            if error is not None:
                raise error from exc
            raise
        text, _, status = out.rpartition(_STATUS_MARK)
        error = classify_status(int(status.strip() or 0), text, method, resource, c.address)
        if error is not None:
            raise error
        return text

    async def get(self, resource: str, params: dict[str, Any] | None = None) -> Any:
        text = await self._call("GET", resource, params=params)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise TargetUnreachableError(f"{self._config.address} does not answer like the RabbitMQ management "
                                         f"API: {text[:200]!r}") from exc

    async def put(self, resource: str, body: dict[str, Any]) -> None:
        await self._call("PUT", resource, body=body)

    async def delete(self, resource: str, *, reason: str | None = None) -> None:
        await self._call("DELETE", resource, reason=reason)

    async def close(self) -> None:
        """Nothing to close: every call is its own ``curl`` process."""


def _curl_quote(text: str) -> str:
    """A value inside double quotes of a curl config file."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
