"""``kubestack mcp``: the MCP server over the KubeStack API (``kubestack.mcp``), on stdio for an assistant that
starts it, or on streamable HTTP for several. Standard output is the protocol's on stdio: logs go to standard
error."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import typer

from kubestack.cli.remote import TokenOption, UrlOption
from kubestack.errors import RemoteApiError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


def mcp(
    ctx: typer.Context,
    transport: Annotated[Literal["stdio", "http"], typer.Option(
        help="stdio: one client that starts this command (the token from --token); http: streamable HTTP, each "
             "client sends its own API token as 'Authorization: Bearer'")] = "stdio",
    api_url: UrlOption = None,
    token: TokenOption = None,
    host: Annotated[str, typer.Option(help="Listen address (http)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Listen port (http)")] = DEFAULT_PORT,
    path: Annotated[str, typer.Option(help="Endpoint path (http)")] = "/mcp",
) -> None:
    """Serve incidents, topology, questions, runbooks and decisions to AI assistants over the Model Context
    Protocol, through the KubeStack API: the token's role and tenant decide what they see and may do."""
    import anyio

    from kubestack.mcp.server import build_server

    settings = ctx.obj
    url = api_url or f"http://{settings.api.host}:{settings.api.port}"
    if transport == "stdio":
        if not token:
            raise RemoteApiError("no API token: pass --token or set KUBESTACK_API_TOKEN (`kubestack api token` makes "
                                 "one); over stdio every tool call is made with it")
        anyio.run(build_server(url, token).run_stdio_async)
        return
    import uvicorn

    from kubestack.mcp.http import http_app

    if token:
        log.info("over HTTP each client's own token is used; the one given (--token / KUBESTACK_API_TOKEN) is not")
    typer.echo(f"KubeStack MCP server on http://{host}:{port}{path} (API {url})", err=True)
    uvicorn.run(http_app(build_server(url), host, path), host=host, port=port, log_config=None,
                server_header=False)
