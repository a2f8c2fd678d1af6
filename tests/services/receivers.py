"""Real local HTTP receivers for notifications, speaking Slack's, PagerDuty's and our webhook protocol.

One aiohttp server on 127.0.0.1 (a free port, its own thread and loop, so any test can use it) for the session;
the function fixture ``receivers`` hands a test the three receivers, emptied and unscripted:

    receivers.slack.url                  # an incoming-webhook URL
    receivers.pagerduty.url              # the Events API v2 endpoint; ROUTING_KEY is a valid integration key
    receivers.webhook.url_for("ops")     # a generic webhook; receivers.webhook.secret signs it
    receivers.notify_config()            # a dict for ``notify`` settings pointing at all three
    receivers.slack.script(Reply.error(500), Reply.rate_limited(2), Reply.hang(3))   # the next answers
    receivers.slack.received             # the payloads it accepted (parsed JSON), in order
    receivers.slack.requests             # every request, scripted failures and rejections included
    receivers.pagerduty.alerts["inc-1"]  # PagerDuty's view of one dedup key: status, summary, triggers

Protocols, as the real services answer: Slack 200 ``ok``, or 400 ``invalid_payload`` (not JSON), ``no_text``
(neither text nor blocks), ``invalid_blocks`` (Block Kit a real workspace would refuse: unknown block types,
header over 150 chars, section text over 3000, more than 10 fields, a button without action_id, ...),
404 ``no_service`` for an unknown hook. PagerDuty 202 ``{"status": "success", "message": "Event processed",
"dedup_key": ...}`` or 400 ``{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``.
The webhook checks ``X-KubeStack-Signature`` (HMAC-SHA256 over ``<timestamp>.<body>``, computed here, not with
the code under test) and answers 204, or 401 when it does not verify or is older than 5 minutes.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web

from tests.services.process import free_port

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
SLACK_TOKEN = "XXXXXXXXXXXXXXXXXXXXXXXX"
WEBHOOK_SECRET = "whsec-test-secret"
SLACK_SIGNING_SECRET = "slack-signing-test-secret"
_BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}
_PD_SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass(frozen=True)
class Reply:
    """A scripted answer, used instead of the protocol's for one request."""

    status: int = 500
    body: str = "internal error"
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0

    @classmethod
    def error(cls, status: int = 500, body: str = "internal error") -> Reply:
        return cls(status, body)

    @classmethod
    def rate_limited(cls, retry_after: float | str) -> Reply:
        return cls(429, "rate_limited", {"Retry-After": str(retry_after)})

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        """Answer 200 only after ``seconds``: longer than the client's timeout, it is a timeout."""
        return cls(200, "ok", hang_s=seconds)


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    """The status it was answered with."""

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver(abc.ABC):
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.requests: list[Request] = []
        self.received: list[dict[str, Any]] = []
        self._script: deque[Reply] = deque()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order, then by the protocol again."""
        self._script.extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self.received.clear()
        self._script.clear()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        reply = self._script.popleft() if self._script else None
        if reply is None:
            response = self.answer(request, body)
        else:
            response = web.Response(status=reply.status, text=reply.body, headers=reply.headers)
        self.requests.append(Request(request.path, dict(request.headers), body, response.status))
        if reply is not None and reply.hang_s:
            await asyncio.sleep(reply.hang_s)
        return response

    @abc.abstractmethod
    def answer(self, request: web.Request, body: bytes) -> web.Response:
        """The protocol's answer to an unscripted request; accepted payloads go to ``received``."""


def _text_ok(obj: Any, limit: int, plain_only: bool = False) -> bool:
    types = {"plain_text"} if plain_only else {"plain_text", "mrkdwn"}
    return (isinstance(obj, dict) and obj.get("type") in types and isinstance(obj.get("text"), str)
            and 0 < len(obj["text"]) <= limit)


def _block_ok(block: Any, action_ids: set[str]) -> bool:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        return False
    kind = block["type"]
    if kind == "header":
        return _text_ok(block.get("text"), 150, plain_only=True)
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        return (text is not None or fields is not None) and (text is None or _text_ok(text, 3000)) and (
            fields is None or (isinstance(fields, list) and 0 < len(fields) <= 10
                               and all(_text_ok(f, 2000) for f in fields)))
    if kind == "context":
        elements = block.get("elements")
        return isinstance(elements, list) and 0 < len(elements) <= 10 and all(_text_ok(e, 3000) for e in elements)
    if kind == "actions":
        elements = block.get("elements")
        return isinstance(elements, list) and 0 < len(elements) <= 25 and all(
            _button_ok(e, action_ids) for e in elements)
    return True


def _button_ok(button: Any, action_ids: set[str]) -> bool:
    if not isinstance(button, dict) or button.get("type") != "button":
        return False
    action_id = button.get("action_id")
    if not isinstance(action_id, str) or not 0 < len(action_id) <= 255 or action_id in action_ids:
        return False
    action_ids.add(action_id)
    return (_text_ok(button.get("text"), 75, plain_only=True)
            and button.get("style", "primary") in {"primary", "danger"}
            and len(str(button.get("value", ""))) <= 2000)


def slack_problem(payload: Any) -> str | None:
    """The error Slack's incoming webhook answers for a payload, or None when it accepts it."""
    if not isinstance(payload, dict):
        return "invalid_payload"
    blocks, text = payload.get("blocks"), payload.get("text")
    if not text and not blocks:
        return "no_text"
    if blocks is not None:
        ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and "block_id" in b] \
            if isinstance(blocks, list) else []
        action_ids: set[str] = set()
        if not isinstance(blocks, list) or not 0 < len(blocks) <= 50 or len(ids) != len(set(ids)) \
                or not all(_block_ok(b, action_ids) for b in blocks):
            return "invalid_blocks"
    return None


class SlackReceiver(Receiver):
    @property
    def url(self) -> str:
        return f"{self.base_url}/slack/services/T0000/B0000/{SLACK_TOKEN}"

    def answer(self, request: web.Request, body: bytes) -> web.Response:
        if request.match_info["token"] != SLACK_TOKEN:
            return web.Response(status=404, text="no_service")
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        problem = slack_problem(payload)
        if problem is not None:
            return web.Response(status=400, text=problem)
        self.received.append(payload)
        return web.Response(status=200, text="ok")


def pagerduty_problems(event: Any) -> list[str]:
    """What PagerDuty's Events API v2 would reject in an event; empty when it is valid."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("'routing_key' must be a 32-character integration key")
    action = event.get("event_action")
    if action not in {"trigger", "acknowledge", "resolve"}:
        errors.append("'event_action' must be one of trigger, acknowledge, resolve")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not 0 < len(dedup) <= 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in {"acknowledge", "resolve"} and not dedup:
        errors.append(f"'dedup_key' is required to {action}")
    if action == "trigger":
        errors += _trigger_problems(event.get("payload"))
    return errors


def _trigger_problems(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not 0 < len(summary) <= 1024:
        errors.append("'payload.summary' must be 1 to 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in _PD_SEVERITIES:
        errors.append("'payload.severity' must be one of critical, error, warning, info")
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(payload["timestamp"])
        except (TypeError, ValueError):
            errors.append("'payload.timestamp' must be ISO 8601")
    for name in ("component", "group", "class"):
        if name in payload and not isinstance(payload[name], str):
            errors.append(f"'payload.{name}' must be a string")
    return errors


class PagerDutyReceiver(Receiver):
    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.alerts: dict[str, dict[str, Any]] = {}
        """dedup_key -> {"status": triggered|acknowledged|resolved, "summary", "severity", "triggers", "opened"}"""

    @property
    def url(self) -> str:
        return f"{self.base_url}/pagerduty/v2/enqueue"

    def reset(self) -> None:
        super().reset()
        self.alerts.clear()

    def answer(self, request: web.Request, body: bytes) -> web.Response:
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        errors = pagerduty_problems(event)
        if errors:
            return web.json_response({"status": "invalid event", "message": "Event object is invalid",
                                      "errors": errors}, status=400)
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        self._apply(event, dedup_key)
        self.received.append(event)
        return web.json_response({"status": "success", "message": "Event processed", "dedup_key": dedup_key},
                                 status=202)

    def _apply(self, event: dict[str, Any], dedup_key: str) -> None:
        alert = self.alerts.get(dedup_key)
        if event["event_action"] == "trigger":
            if alert is None or alert["status"] == "resolved":
                alert = self.alerts[dedup_key] = {"status": "triggered", "triggers": 0,
                                                  "opened": (alert or {}).get("opened", 0) + 1}
            alert.update(summary=event["payload"]["summary"], severity=event["payload"]["severity"])
            alert["triggers"] += 1
        elif alert is not None:
            alert["status"] = "resolved" if event["event_action"] == "resolve" else "acknowledged"


def signature_ok(secret: str, timestamp: str | None, signature: str | None, body: bytes) -> bool:
    if not timestamp or not timestamp.isdigit() or not signature or abs(time.time() - int(timestamp)) > 300:
        return False
    expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class WebhookReceiver(Receiver):
    secret = WEBHOOK_SECRET

    def url_for(self, name: str) -> str:
        return f"{self.base_url}/webhooks/{name}"

    def answer(self, request: web.Request, body: bytes) -> web.Response:
        if not signature_ok(self.secret, request.headers.get("X-KubeStack-Timestamp"),
                            request.headers.get("X-KubeStack-Signature"), body):
            return web.json_response({"error": "signature does not verify"}, status=401)
        try:
            envelope = json.loads(body)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(envelope, dict) or "type" not in envelope or "event" not in envelope:
            return web.json_response({"error": "expected {type, event}"}, status=400)
        self.received.append({"webhook": request.match_info["name"], **envelope})
        return web.Response(status=204)


@dataclass
class Receivers:
    slack: SlackReceiver
    pagerduty: PagerDutyReceiver
    webhook: WebhookReceiver

    def reset(self) -> None:
        for receiver in (self.slack, self.pagerduty, self.webhook):
            receiver.reset()

    def notify_config(self, **overrides: Any) -> dict[str, Any]:
        """``notify`` settings (as a dict) with all three channels pointing here; ``overrides`` replace keys."""
        config = {
            "console_url": "http://console.kubestack.test",
            "slack": {"webhook_url": self.slack.url, "signing_secret": SLACK_SIGNING_SECRET},
            "pagerduty": {"events_url": self.pagerduty.url, "routing_key": ROUTING_KEY},
            "webhooks": [{"name": "ops", "url": self.webhook.url_for("ops"), "secret": WEBHOOK_SECRET}],
            "retry": {"max_attempts": 3, "backoff_base_s": 0.05, "backoff_max_s": 0.2, "timeout_s": 2.0},
        }
        return config | overrides


class _Server:
    """The aiohttp app in a thread of its own, so it answers whatever loop (or none) the test runs."""

    name = "notify-receivers"

    def __init__(self) -> None:
        self.port = free_port()
        self.receivers = self._receivers(f"http://127.0.0.1:{self.port}")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
        self._runner: web.AppRunner | None = None

    def _receivers(self, base: str) -> Receivers:
        return Receivers(SlackReceiver(base), PagerDutyReceiver(base), WebhookReceiver(base))

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/slack/services/{team}/{bot}/{token}", self.receivers.slack.handle)
        app.router.add_post("/pagerduty/v2/enqueue", self.receivers.pagerduty.handle)
        app.router.add_post("/webhooks/{name}", self.receivers.webhook.handle)
        return app

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app(), shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[_Server]:
    server = _Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def receivers(receiver_server: _Server) -> Receivers:
    """The Slack, PagerDuty and webhook receivers, emptied and unscripted for this test."""
    receiver_server.receivers.reset()
    return receiver_server.receivers
