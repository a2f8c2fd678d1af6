"""Small real HTTP servers for the proxies' tests (HAProxy, Nginx) to balance over: each answers on a free loopback
port from a thread and can be told to fail (500 on every path but ``/health``), to be slow, or to stop listening
(connections refused) and start again on the same port."""

from __future__ import annotations

import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.services.process import free_port

HEALTH_PATH = "/health"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        backend = self.server.backend
        if self.path != HEALTH_PATH and backend.delay_s:
            time.sleep(backend.delay_s)
        status = 500 if backend.failing and self.path != HEALTH_PATH else 200
        body = f"{backend.name} {status}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the http.server signature)
        """Quiet: the proxies log every request already."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, backend: HttpBackend) -> None:
        self.backend = backend
        super().__init__(("127.0.0.1", backend.port), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client gone before its answer (a health check, a test's idle socket) is no error of the backend."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HttpBackend:
    """One backend: ``failing`` answers 500 (``/health`` still 200: an application error, not a dead server),
    ``delay_s`` delays every answer but ``/health``, ``stop()`` refuses connections until ``start()``."""

    def __init__(self, name: str, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.failing = False
        self.delay_s = 0.0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> HttpBackend:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"http-backend-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Healthy and fast again, listening."""
        self.failing, self.delay_s = False, 0.0
        self.start()

    @contextmanager
    def down(self) -> Iterator[HttpBackend]:
        self.stop()
        try:
            yield self
        finally:
            self.start()


def get(url: str, timeout: float = 10.0) -> int:
    """The status of a GET (an HTTP error status is returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def wait_until(condition, timeout_s: float = 20.0, what: str = "the condition", step_s: float = 0.1):
    """``condition()``'s first truthy value, polled until ``timeout_s``; AssertionError naming ``what`` after."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:.0f}s")
        time.sleep(step_s)
