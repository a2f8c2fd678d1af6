"""The API's boundary against the running server: bodies are refused by size and by token before they are read,
responses carry security headers, probes learn nothing sensitive, reads never see the feed's uncommitted rows.
The 50 MB drill runs ``kubestack api serve`` in its own process and measures its resident set."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from kubestack.api.auth import new_token, token_spec
from tests.cli import cli_env, follow
from tests.services.kubestack_api import ApiServer, incident
from tests.services.process import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]

MB = 1024 * 1024


async def raw_post(url: str, path: str, headers: dict[str, str], body_bytes: int = 0, chunk: int = 256 * 1024,
                   timeout_s: float = 10.0) -> tuple[int | None, dict[str, str], bytes, int]:
    """POST over a bare socket: the head, then up to ``body_bytes`` of body (chunk-framed with
    ``Transfer-Encoding: chunked``) while the answer is read. The answer's (status, headers, body) and how many
    body bytes were sent before the server answered and closed. A server that closes with body bytes unread
    resets the connection, which may discard its answer before it is read: the status is then None."""
    framed = headers.get("Transfer-Encoding") == "chunked"
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(head.encode() + b"\r\n")
    sent = 0

    async def send_body() -> None:
        nonlocal sent
        block = b"x" * chunk
        try:
            while sent < body_bytes:
                piece = block[:min(chunk, body_bytes - sent)]
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if framed else piece)
                await writer.drain()
                sent += len(piece)
        except (ConnectionError, OSError):
            pass  # the server answered and closed: what it did not read stays unsent

    sender = asyncio.create_task(send_body())
    answer = b""
    try:
        async with asyncio.timeout(timeout_s):
            while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                answer += chunk
    except ConnectionError:
        pass  # closed with unread body bytes in its socket (a reset): what arrived before is the answer
    finally:
        sender.cancel()
        writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    if not head:
        return None, {}, b"", sent
    status_line, *lines = head.decode().split("\r\n")
    found = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
    return int(status_line.split()[1]), found, payload, sent


def _length(answer: bytes) -> int:
    head = answer.partition(b"\r\n\r\n")[0].decode().lower()
    return next((int(line.split(":", 1)[1]) for line in head.split("\r\n") if line.startswith("content-length:")),
                0)


async def test_a_declared_oversized_body_is_413_before_it_is_read(api_server: ApiServer) -> None:
    status, _, body, _ = await raw_post(api_server.url, "/api/v1/proposals/p-1/approve",
                                        {"Content-Length": str(50 * MB), "Content-Type": "application/json"})
    assert status == 413 and b"larger than 1048576 bytes (api.max_body_bytes)" in body


async def test_without_a_token_a_body_is_refused_before_a_byte_of_it_is_read(api_server: ApiServer) -> None:
    """The head alone gets the 401: before, the server waited for the 100 KB it was promised."""
    status, headers, body, _ = await raw_post(api_server.url, "/api/v1/diagnose",
                                              {"Content-Length": str(100_000), "Content-Type": "application/json"},
                                              timeout_s=5)
    assert status == 401 and headers["www-authenticate"] == "Bearer" and b"missing Authorization" in body
    status, _, body, _ = await raw_post(api_server.url, "/api/v1/proposals/p-1/reject",
                                        {"Content-Length": "5000", "Authorization": "Bearer forged"}, timeout_s=5)
    assert status == 401 and b"unknown or revoked token" in body


async def test_a_streamed_body_is_cut_off_at_the_limit(api_server: ApiServer) -> None:
    async def chunks():
        for _ in range(8):
            yield b"x" * (256 * 1024)

    async with api_server.client("otto") as client:
        response = await client.post("/api/v1/diagnose", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"error": "payload_too_large",
                               "detail": "the request body is larger than 1048576 bytes (api.max_body_bytes)"}


async def test_slack_callbacks_are_size_limited_but_need_no_token(api_server: ApiServer) -> None:
    async with api_server.client() as client:
        small = await client.post("/api/v1/slack/actions", content=b"payload=x",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        large = await client.post("/api/v1/slack/actions", content=b"p" * (2 * MB),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert small.status_code == 401 and "X-Slack-Signature" in small.json()["detail"]  # the signature check ran
    assert large.status_code == 413


async def test_security_headers_on_the_console_and_the_api(api_server: ApiServer) -> None:
    async with api_server.client("vera") as client:
        page = await client.get("/")
        script = await client.get("/console/app.js")
        answer = await client.get("/api/v1/incidents")
    for response in (page, script, answer):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert answer.headers["cache-control"] == "no-store"


async def test_health_tells_a_probe_nothing_sensitive_and_metrics_need_a_token(api_server: ApiServer) -> None:
    async with api_server.client() as anonymous:
        probe = await anonymous.get("/api/v1/health")
        metrics = await anonymous.get("/metrics")
    async with api_server.client("vera") as viewer:
        detailed = await viewer.get("/api/v1/health")
        scraped = await viewer.get("/metrics")
    assert probe.status_code == 200 and probe.json() == {"status": "ok", "kafka_reachable": True,
                                                         "feed_running": probe.json()["feed_running"]}
    assert set(detailed.json()) >= {"read_model", "feed"} and detailed.json()["read_model"]["incidents"] >= 0
    assert metrics.status_code == 401 and metrics.json()["error"] == "unauthorized"
    assert scraped.status_code == 200 and "kubestack_api_requests_total" in scraped.text


async def test_diagnose_does_not_list_targets_to_another_tenants_operator(api_server: ApiServer) -> None:
    async with api_server.client("acme-op") as client:
        response = await client.post("/api/v1/diagnose", json={"target": "nope"})
    assert response.status_code == 404 and response.json()["detail"] == "no target 'nope'"
    assert "this-host" not in response.text and "cache-nowhere" not in response.text


async def test_a_read_never_sees_the_feeds_uncommitted_rows(api_server: ApiServer) -> None:
    """The feed's transaction is open on the writing connection (as mid-apply); a request answered on another
    thread must not see its rows."""
    from kubestack.api.readmodel import upsert_incident

    store = api_server.app.state.context.store
    half_written = incident()
    store.conn.execute("BEGIN")
    try:
        upsert_incident(store.conn, half_written)
        async with api_server.client("ada") as client:
            response = await client.get(f"/api/v1/incidents/{half_written.incident_id}")
    finally:
        store.conn.execute("ROLLBACK")
    assert response.status_code == 404, "a read saw a row that was never committed"


# --- the drill: 50 MB with no token against `kubestack api serve` ------------------------------------------------


async def _until_up(client: httpx.AsyncClient, api, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert api.proc.poll() is None, api.output[-3000:]
        try:
            if (await client.get("/api/v1/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.3)
    raise AssertionError(f"the API did not answer within {timeout_s}s: {api.output[-3000:]}")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def test_drill_50_mb_without_a_token_is_refused_unread(kafka, tmp_path: Path) -> None:
    port, token = free_port(), new_token()
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({"api": {"port": port, "feed_group": f"drill-{uuid.uuid4().hex[:8]}",
                                              "tokens": [token_spec(token, "ada", "admin").model_dump(mode="json")]}}))
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_HOME=str(tmp_path),
                  KUBESTACK_KAFKA__TOPIC_PREFIX=f"test.drill.{uuid.uuid4().hex[:8]}.", KUBESTACK_CONFIG=str(config))
    api = follow("api", "serve", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            await _until_up(client, api)
            for _ in range(5):  # warm: the first requests import and allocate what every request needs
                await client.post("/api/v1/diagnose", json={"target": "x"})
        before = _rss_kib(api.proc.pid)
        started = time.monotonic()
        blasts = [await raw_post(url, "/api/v1/proposals/p-1/approve", headers, body_bytes=50 * MB)
                  for headers in ({"Content-Length": str(50 * MB), "Content-Type": "application/json"},
                                  {"Transfer-Encoding": "chunked", "Content-Type": "application/json"})]
        took = time.monotonic() - started
        after = _rss_kib(api.proc.pid)
        # the answers themselves, without a body in flight (a reset can eat the answer to a blast)
        declared = await raw_post(url, "/api/v1/proposals/p-1/approve", {"Content-Length": str(50 * MB)})
        chunked = await raw_post(url, "/api/v1/proposals/p-1/approve", {"Transfer-Encoding": "chunked"})
    finally:
        code = api.stop()
    print(f"drill: RSS {before / 1024:.1f} MB -> {after / 1024:.1f} MB after two 50 MB bodies without a token in "
          f"{took:.2f}s (declared: answered {blasts[0][0]}, {blasts[0][3]} bytes sent before the server closed; "
          f"chunked: answered {blasts[1][0]}, {blasts[1][3]} bytes sent)")
    assert declared[0] == 413 and chunked[0] == 401, (declared, chunked)
    assert all(status in (None, 413, 401) and sent < 50 * MB for status, _, _, sent in blasts), blasts
    assert after - before < 5 * 1024, f"the API grew by {(after - before) / 1024:.1f} MB"
    assert code == 0, api.output[-3000:]
