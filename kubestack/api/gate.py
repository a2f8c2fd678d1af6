"""What a request must pass before the application reads its body, and the headers every response carries.

FastAPI reads (and parses) a body before it runs a route's dependencies, so without this gate the token check came
after the whole body was in memory: 50 MB with no token grew the API by 100 MB before its 401. The gate is plain
ASGI, in front of everything:

- a declared ``Content-Length`` over ``api.max_body_bytes`` is a 413 at once, the body never read; a body sent
  without one (chunked) is counted as it arrives and cut off with a 413 at the limit;
- a request with a body to a token route is authenticated from its headers first: a missing or unknown token is
  a 401 before a byte of the body is read (the route still checks the role, and audits refusals);
- every response gets ``X-Content-Type-Options``, ``X-Frame-Options`` and ``Referrer-Policy``; the console's pages
  a ``Content-Security-Policy`` that allows only its own scripts, styles and API; API answers are not cached.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kubestack.api.errors import UnauthorizedError

API_PREFIX = "/api/v1/"
SIGNED_PATHS = frozenset({"/api/v1/slack/actions", "/api/v1/pagerduty/webhook"})
"""Routes that prove the caller by a signature over the body (Slack's, PagerDuty's), not by a token: only the size applies."""
BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})
CONSOLE_PATHS = ("/console/",)

COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
CONSOLE_POLICY = (b"content-security-policy",
                  b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                  b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
NO_STORE = (b"cache-control", b"no-store")


class BodyTooLargeError(HTTPException):
    """A body past the limit, found while it streamed in (the route that was reading it gets a 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes (api.max_body_bytes)"


class RequestGate:
    """ASGI middleware: size limit and token before the body, security headers after."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, authenticate: Callable[[str | None], object]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, headers = scope["path"], Headers(scope=scope)
        send = _with_headers(send, path)
        refusal = self._refusal(scope["method"], path, headers)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        await self.app(scope, _limited(receive, self.max_body_bytes), send)

    def _refusal(self, method: str, path: str, headers: Headers) -> tuple[int, dict, dict] | None:
        """(status, body, headers) of the answer a request gets before its body is read; None to let it in."""
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return 400, {"error": "bad_request", "detail": f"Content-Length {declared[:20]!r} is not a "
                                                               "number of bytes"}, {}
            if int(declared) > self.max_body_bytes:
                return 413, {"error": "payload_too_large", "detail": _too_large(self.max_body_bytes)}, {}
        if method in BODYLESS or not path.startswith(API_PREFIX) or path in SIGNED_PATHS:
            return None
        try:
            self.authenticate(headers.get("authorization"))
        except UnauthorizedError as exc:
            return 401, exc.body(), {"www-authenticate": "Bearer"}
        return None


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that counts body bytes and raises ``BodyTooLargeError`` past ``limit``."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLargeError(limit)
        return message

    return counted


def _with_headers(send: Send, path: str) -> Send:
    extra = list(COMMON_HEADERS)
    if path == "/" or path.startswith(CONSOLE_PATHS):
        extra.append(CONSOLE_POLICY)
    elif path.startswith(API_PREFIX):
        extra.append(NO_STORE)

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            message = {**message, "headers": [*message.get("headers", []),
                                              *((n, v) for n, v in extra if n not in present)]}
        await send(message)

    return sending


async def _answer(send: Send, status: int, body: dict, headers: dict[str, str]) -> None:
    """A JSON answer, then the connection closes: the body the client may still be sending is never read."""
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close"), *((k.encode(), v.encode()) for k, v in headers.items())]})
    await send({"type": "http.response.body", "body": payload})
