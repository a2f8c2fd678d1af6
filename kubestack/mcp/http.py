"""The streamable HTTP transport: the SDK's Starlette app behind a gate that turns away a request with no bearer
token (401, before the MCP session sees it). The token itself is checked by the API on every tool call, with the
caller's role and tenant: this server keeps no token of its own."""

from __future__ import annotations

import json

from mcp.server.mcpserver import MCPServer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_PATH = "/mcp"


class BearerRequired:
    """ASGI middleware: HTTP requests without ``Authorization: Bearer <token>`` get a 401 JSON answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scheme, _, token = (Headers(scope=scope).get("authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                body = json.dumps({"error": "unauthorized", "detail": "send 'Authorization: Bearer <token>' with a "
                                   "KubeStack API token (`kubestack api token` makes one)"}).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(server: MCPServer, host: str, path: str = DEFAULT_PATH) -> ASGIApp:
    """The server over streamable HTTP at ``path``; ``host``: where it listens (the SDK's DNS-rebinding check
    allows that host)."""
    return BearerRequired(server.streamable_http_app(streamable_http_path=path, host=host))
