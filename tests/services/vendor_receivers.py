"""Real local HTTP receivers for Microsoft Teams workflow webhooks, Opsgenie, Feishu / Lark, DingTalk and WeCom,
each checking the vendor's documented payload and signature and answering as the vendor does.

One aiohttp server on 127.0.0.1 for the session (its own thread and loop, like tests/services/receivers.py, whose
``Receiver`` / ``Reply`` it reuses); the function fixture ``vendor_receivers`` hands a test the five, emptied:

    vendor_receivers.notify_config()        # ``notify`` settings (a dict) pointing all five here
    vendor_receivers.teams.received         # accepted payloads, in order; .requests: every request and its status
    vendor_receivers.opsgenie.alerts["inc-1"]   # Opsgenie's view of an alias: status, count, notes, message
    vendor_receivers.feishu.script(Reply(...))  # scripted answers, as in receivers.py

Protocols (the checks are written here from the vendors' documentation, not with the code under test):
- Teams workflow (``/workflows/<id>/triggers/manual/paths/invoke?api-version=2016-06-01&sp=...&sv=1.0&sig=...``):
  a wrong or missing ``sig`` is 401 ``DirectApiInvalidAuthorizationSignature``; a body that is not ``{"type":
  "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content":
  AdaptiveCard}]}`` with a card of version 1.0-1.5, known elements and actions a workflow-posted card can run
  (``Action.OpenUrl``, ``Action.ShowCard``, ``Action.ToggleVisibility``: not ``Action.Http``, nor
  ``Action.Submit`` / ``Action.Execute``, which need a bot) is 400 ``InvalidRequestContent``; over 28 KB 413;
  accepted: 202, empty body.
- Opsgenie (``/v2/alerts``, ``/v2/alerts/<alias>/{acknowledge,close,notes}?identifierType=alias``): no or wrong
  ``Authorization: GenieKey`` is 401 ``{"message": "Could not authenticate", "took", "requestId"}``; a body
  Opsgenie would refuse (message missing or over 130 chars, alias over 512, priority not P1-P5, details not a
  map of strings, ...) 422 ``{"message": "Request body is not processable...", "errors": {...}}``; accepted: 202
  ``{"result": "Request will be processed", "took": ..., "requestId": ...}``.
- Feishu custom bot (``/open-apis/bot/v2/hook/<token>``): HTTP 200 always; ``{"code": 19001}`` unknown token,
  ``{"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}`` on a bad or
  stale signature, ``{"code": 9499, "msg": "Bad Request"}`` on a malformed message or a body over 20 KB,
  ``{"code": 0, "msg": "success", "StatusCode": 0, ...}`` accepted.
- DingTalk robot (``/robot/send?access_token=..&timestamp=..&sign=..``): ``{"errcode": 300005}`` unknown token,
  ``310000`` bad or stale sign, ``40035`` malformed, ``130101`` over 20 messages a minute, ``0`` accepted.
- WeCom robot (``/cgi-bin/webhook/send?key=..``): ``93000`` bad key, ``40008`` unknown msgtype, ``40058``
  markdown content over 4096 bytes, ``45009`` over 20 messages a minute, ``0`` accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from tests.services.receivers import Receiver
from tests.services.receivers import _Server as ReceiverServer

TEAMS_SIG = "teams-sig-0123456789abcdefghij"
OPSGENIE_KEY = "eb243592-faa2-4ba2-a551q-1afdf565c889"
FEISHU_TOKEN = "2d4b9e2f-1c8a-4f55-9a4e-feishu-token"
FEISHU_SECRET = "feishu-bot-secret"
DINGTALK_TOKEN = "dingtalk0access0token0123456789abcdef"
DINGTALK_SECRET = "SEC0dingtalk0secret0abcdef0123456789"
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
TEAMS_BODY_MAX = 28 * 1024
FEISHU_BODY_MAX = 20 * 1024
WECOM_CONTENT_MAX = 4096
SIGN_TOLERANCE_S = 3600
_CARD_ELEMENTS = {"TextBlock", "FactSet", "Container", "ColumnSet", "Image", "ActionSet", "RichTextBlock"}
_WORKFLOW_ACTIONS = {"Action.OpenUrl", "Action.ShowCard", "Action.ToggleVisibility"}
_TEXT_COLOURS = {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


# --- Microsoft Teams (Workflows webhook, Adaptive Card) -------------------------------------------------------

def _element_problem(element: Any) -> str | None:
    if not isinstance(element, dict) or element.get("type") not in _CARD_ELEMENTS:
        return f"unknown card element {element.get('type') if isinstance(element, dict) else element!r}"
    if element["type"] == "TextBlock":
        if not isinstance(element.get("text"), str) or not element["text"]:
            return "TextBlock.text must be a non-empty string"
        if element.get("color", "Default") not in _TEXT_COLOURS:
            return f"TextBlock.color {element['color']!r} is not a colour"
    if element["type"] == "FactSet":
        facts = element.get("facts")
        if not isinstance(facts, list) or not all(
                isinstance(f, dict) and isinstance(f.get("title"), str) and isinstance(f.get("value"), str)
                for f in facts):
            return "FactSet.facts must be a list of {title, value} strings"
    return None


def _action_problem(action: Any) -> str | None:
    kind = action.get("type") if isinstance(action, dict) else None
    if kind not in _WORKFLOW_ACTIONS:
        return f"action {kind!r} cannot run on a card posted by a workflow"
    if kind == "Action.OpenUrl" and not str(action.get("url", "")).startswith(("https://", "http://")):
        return "Action.OpenUrl.url must be an http(s) URL"
    if not isinstance(action.get("title"), str):
        return "an action needs a title"
    return None


def teams_problem(payload: Any) -> str | None:
    """Why a workflow's "post a card" step would fail on this body, or None."""
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return "the body must be {\"type\": \"message\", \"attachments\": [...]}"
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments must be a non-empty list"
    for attachment in attachments:
        if not isinstance(attachment, dict) or attachment.get("contentType") != \
                "application/vnd.microsoft.card.adaptive":
            return "attachment contentType must be application/vnd.microsoft.card.adaptive"
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            return "attachment content must be an AdaptiveCard"
        try:
            version = tuple(int(part) for part in str(card.get("version")).split("."))
        except ValueError:
            return f"card version {card.get('version')!r} is not a version"
        if not (1, 0) <= version <= (1, 5):
            return f"card version {card.get('version')} is not supported (1.0 to 1.5)"
        body = card.get("body")
        if not isinstance(body, list) or not body:
            return "card body must be a non-empty list"
        for problem in (*map(_element_problem, body), *map(_action_problem, card.get("actions", []))):
            if problem:
                return problem
    return None


def _teams_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class TeamsReceiver(Receiver):
    @property
    def url(self) -> str:
        return (f"{self.base_url}/workflows/5f1e3c/triggers/manual/paths/invoke?api-version=2016-06-01"
                f"&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={TEAMS_SIG}")

    def answer(self, request: web.Request, body: bytes) -> web.Response:
        if not hmac.compare_digest(request.query.get("sig", ""), TEAMS_SIG):
            return _teams_error(401, "DirectApiInvalidAuthorizationSignature",
                                "The provided authorization token is not valid.")
        if len(body) > TEAMS_BODY_MAX:
            return _teams_error(413, "MessageSizeLimitExceeded", f"the message is over {TEAMS_BODY_MAX} bytes")
        payload = _json(body)
        problem = teams_problem(payload)
        if problem is not None:
            return _teams_error(400, "InvalidRequestContent", problem)
        self.received.append(payload)
        return web.Response(status=202)


# --- Opsgenie (Alert API v2) ----------------------------------------------------------------------------------

def opsgenie_problems(payload: Any) -> dict[str, str]:
    """What Opsgenie's create-alert validation says about a body (field: message); empty when valid."""
    if not isinstance(payload, dict):
        return {"body": "Body must be a JSON object"}
    errors = {}
    message = payload.get("message")
    if not isinstance(message, str) or not message.strip():
        errors["message"] = "Message can not be empty."
    elif len(message) > 130:
        errors["message"] = "Message can not be longer than 130 characters."
    limits = {"alias": 512, "description": 15000, "entity": 512, "source": 100, "user": 100, "note": 25000}
    for name, limit in limits.items():
        if name in payload and (not isinstance(payload[name], str) or len(payload[name]) > limit):
            errors[name] = f"{name.capitalize()} must be a string of at most {limit} characters."
    if payload.get("priority", "P3") not in {"P1", "P2", "P3", "P4", "P5"}:
        errors["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]"
    tags = payload.get("tags", [])
    if not isinstance(tags, list) or len(tags) > 20 or not all(isinstance(t, str) and len(t) <= 50 for t in tags):
        errors["tags"] = "Tags must be at most 20 strings of at most 50 characters."
    details = payload.get("details", {})
    if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
        errors["details"] = "Details must be a map of strings."
    for responder in payload.get("responders", []):
        if not isinstance(responder, dict) or responder.get("type") not in {"team", "user", "escalation",
                                                                             "schedule"}:
            errors["responders"] = "Responder type must be one of team, user, escalation, schedule."
    return errors


def _action_body_problems(payload: Any) -> dict[str, str]:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        return {"body": "Body must be a JSON object"}
    limits = {"source": 100, "user": 100, "note": 25000}
    return {name: f"{name.capitalize()} must be a string of at most {limit} characters."
            for name, limit in limits.items()
            if name in payload and (not isinstance(payload[name], str) or len(payload[name]) > limit)}


class OpsgenieReceiver(Receiver):
    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.alerts: dict[str, dict[str, Any]] = {}
        """alias -> {"status": open|acked|closed, "count", "message", "priority", "notes": [...], "opened"}"""

    @property
    def url(self) -> str:
        return f"{self.base_url}/opsgenie"

    def reset(self) -> None:
        super().reset()
        self.alerts.clear()

    @staticmethod
    def _answer(status: int, **extra: Any) -> web.Response:
        return web.json_response({**extra, "took": 0.004, "requestId": str(uuid.uuid4())}, status=status)

    def answer(self, request: web.Request, body: bytes) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not hmac.compare_digest(auth, f"GenieKey {OPSGENIE_KEY}"):
            return self._answer(401, message="Could not authenticate")
        payload = _json(body) if body else None
        action = request.match_info.get("action")
        if action is None:
            errors = opsgenie_problems(payload)
        elif request.query.get("identifierType", "id") not in {"id", "alias", "tiny"}:
            errors = {"identifierType": "Identifier type must be one of id, alias, tiny."}
        else:
            errors = _action_body_problems(payload)
        if errors:
            return self._answer(422, message="Request body is not processable. Please check the errors.",
                                errors=errors)
        self._apply(action, request.match_info.get("identifier"), payload or {})
        self.received.append({"action": action or "create", "identifier": request.match_info.get("identifier"),
                              "identifierType": request.query.get("identifierType"), **(payload or {})})
        return self._answer(202, result="Request will be processed")

    def _apply(self, action: str | None, identifier: str | None, payload: dict[str, Any]) -> None:
        if action is None:
            alias = payload.get("alias") or str(uuid.uuid4())
            alert = self.alerts.get(alias)
            if alert is None or alert["status"] == "closed":
                self.alerts[alias] = {"status": "open", "count": 1, "message": payload["message"],
                                      "priority": payload.get("priority", "P3"), "notes": [],
                                      "opened": (alert or {}).get("opened", 0) + 1}
            else:  # Opsgenie de-duplicates an open alert's alias: the count goes up, the alert stays as it was
                alert["count"] += 1
            return
        alert = self.alerts.get(identifier or "")
        if alert is None:  # accepted (202) and dropped later, as Opsgenie does with an unknown alias
            return
        if payload.get("note"):
            alert["notes"].append(payload["note"])
        if action == "acknowledge" and alert["status"] == "open":
            alert["status"] = "acked"
        elif action == "close":
            alert["status"] = "closed"


# --- Feishu / Lark, DingTalk, WeCom ---------------------------------------------------------------------------

def feishu_expected_sign(secret: str, timestamp: str) -> str:
    return base64.b64encode(hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()


def dingtalk_expected_sign(secret: str, timestamp: str) -> str:
    """Base64, as the ``sign`` query parameter reads once URL-decoded."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _fresh(timestamp: str, unit: float) -> bool:
    return timestamp.isdigit() and abs(time.time() - int(timestamp) / unit) <= SIGN_TOLERANCE_S


def _lark_problem(card: Any) -> str | None:
    if not isinstance(card, dict) or not isinstance(card.get("elements"), list):
        return "card.elements must be a list"
    for element in card["elements"]:
        tag = element.get("tag") if isinstance(element, dict) else None
        if tag not in {"div", "hr", "action", "note", "img", "markdown", "column_set"}:
            return f"unknown card element tag {tag!r}"
        if tag == "action":
            for button in element.get("actions", []):
                if button.get("tag") != "button" or not str(button.get("url", "http")).startswith("http"):
                    return "an action must be buttons with http(s) urls"
    header = card.get("header")
    if header is not None and not isinstance((header.get("title") or {}).get("content"), str):
        return "card.header.title.content must be a string"
    return None


def feishu_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return "body is not a JSON object"
    kind = payload.get("msg_type")
    if kind == "text":
        return None if isinstance((payload.get("content") or {}).get("text"), str) else "content.text is missing"
    if kind == "interactive":
        return _lark_problem(payload.get("card"))
    if kind in {"post", "image", "share_chat"}:
        return None if isinstance(payload.get("content"), dict) else "content is missing"
    return f"msg_type {kind!r} is not supported"


class RateWindow:
    """A vendor's per-robot limit: ``limit`` messages in any 60 s."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sent: deque[float] = deque()

    def allow(self) -> bool:
        now = time.monotonic()
        while self._sent and now - self._sent[0] > 60:
            self._sent.popleft()
        if len(self._sent) >= self.limit:
            return False
        self._sent.append(now)
        return True

    def reset(self) -> None:
        self._sent.clear()


class FeishuReceiver(Receiver):
    secret: str | None = FEISHU_SECRET

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.window = RateWindow(100)

    @property
    def url(self) -> str:
        return f"{self.base_url}/open-apis/bot/v2/hook/{FEISHU_TOKEN}"

    def reset(self) -> None:
        super().reset()
        self.window.reset()

    def answer(self, request: web.Request, body: bytes) -> web.Response:
        if request.match_info["token"] != FEISHU_TOKEN:
            return web.json_response({"code": 19001, "data": {},
                                      "msg": "param invalid: incoming webhook access token invalid"})
        if len(body) > FEISHU_BODY_MAX:
            return web.json_response({"code": 9499, "data": {}, "msg": "Bad Request"})
        payload = _json(body)
        if self.secret is not None:
            stamp = str(payload.get("timestamp", "")) if isinstance(payload, dict) else ""
            sign = payload.get("sign") if isinstance(payload, dict) else None
            if not _fresh(stamp, 1) or not isinstance(sign, str) or \
                    not hmac.compare_digest(sign, feishu_expected_sign(self.secret, stamp)):
                return web.json_response({"code": 19021, "data": {}, "msg": "sign match fail or timestamp is not "
                                                                            "within one hour from current time"})
        if feishu_problem(payload) is not None:
            return web.json_response({"code": 9499, "data": {}, "msg": "Bad Request"})
        if not self.window.allow():
            return web.json_response({"code": 11232, "data": {}, "msg": "frequency limited psm[lark.oapi.app_"
                                                                        "platform_runtime]appID[1]"})
        self.received.append(payload)
        return web.json_response({"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {},
                                  "msg": "success"})


def dingtalk_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return "body is not a JSON object"
    kind = payload.get("msgtype")
    if kind == "markdown":
        md = payload.get("markdown") or {}
        return None if isinstance(md.get("title"), str) and isinstance(md.get("text"), str) and md["text"] \
            else "markdown.title and markdown.text are required"
    if kind == "text":
        return None if isinstance((payload.get("text") or {}).get("content"), str) else "text.content is required"
    if kind in {"link", "actionCard", "feedCard"}:
        return None if isinstance(payload.get(kind), dict) else f"{kind} is required"
    return f"msgtype {kind!r} is not supported"


class DingTalkReceiver(Receiver):
    secret: str | None = DINGTALK_SECRET

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.window = RateWindow(20)

    @property
    def url(self) -> str:
        return f"{self.base_url}/robot/send?access_token={DINGTALK_TOKEN}"

    def reset(self) -> None:
        super().reset()
        self.window.reset()

    def answer(self, request: web.Request, body: bytes) -> web.Response:
        if request.query.get("access_token") != DINGTALK_TOKEN:
            return web.json_response({"errcode": 300005, "errmsg": "token is not exist"})
        if self.secret is not None:
            stamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
            if not _fresh(stamp, 1000) or not hmac.compare_digest(sign, dingtalk_expected_sign(self.secret, stamp)):
                return web.json_response({"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc."
                                                                       "dingtalk.com/doc#/serverapi2/qf2nxq]"})
        payload = _json(body)
        problem = dingtalk_problem(payload)
        if problem is not None:
            return web.json_response({"errcode": 40035, "errmsg": f"缺少参数 json: {problem}"})
        if not self.window.allow():
            return web.json_response({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        self.received.append(payload)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


class WeComReceiver(Receiver):
    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.window = RateWindow(20)

    @property
    def url(self) -> str:
        return f"{self.base_url}/cgi-bin/webhook/send?key={WECOM_KEY}"

    def reset(self) -> None:
        super().reset()
        self.window.reset()

    def answer(self, request: web.Request, body: bytes) -> web.Response:
        if request.query.get("key") != WECOM_KEY:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url, hint: [1700000000_1_abc]"})
        payload = _json(body)
        kind = payload.get("msgtype") if isinstance(payload, dict) else None
        if kind not in {"text", "markdown", "image", "news", "file", "template_card"}:
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        if kind == "markdown":
            content = (payload.get("markdown") or {}).get("content")
            if not isinstance(content, str) or not content:
                return web.json_response({"errcode": 41009, "errmsg": "missing markdown content"})
            if len(content.encode()) > WECOM_CONTENT_MAX:
                return web.json_response({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"})
        if not self.window.allow():
            return web.json_response({"errcode": 45009, "errmsg": "api freq out of limit"})
        self.received.append(payload)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


@dataclass
class VendorReceivers:
    teams: TeamsReceiver
    opsgenie: OpsgenieReceiver
    feishu: FeishuReceiver
    dingtalk: DingTalkReceiver
    wecom: WeComReceiver

    def all(self) -> list[Receiver]:
        return [self.teams, self.opsgenie, self.feishu, self.dingtalk, self.wecom]

    def reset(self) -> None:
        for receiver in self.all():
            receiver.reset()

    def notify_config(self, **overrides: Any) -> dict[str, Any]:
        """``notify`` settings with the five channels pointing here (fast retries); ``overrides`` replace keys."""
        config = {
            "console_url": "http://console.kubestack.test",
            "teams": {"webhook_url": self.teams.url},
            "opsgenie": {"api_key": OPSGENIE_KEY, "api_url": self.opsgenie.url,
                         "responders": [{"type": "team", "name": "SRE"}]},
            "feishu": {"webhook_url": self.feishu.url, "secret": FEISHU_SECRET},
            "dingtalk": {"webhook_url": self.dingtalk.url, "secret": DINGTALK_SECRET},
            "wecom": {"webhook_url": self.wecom.url},
            "retry": {"max_attempts": 3, "backoff_base_s": 0.05, "backoff_max_s": 0.2, "timeout_s": 2.0},
        }
        return config | overrides


class _Server(ReceiverServer):
    """The vendors' receivers on the same threaded aiohttp server as Slack's and PagerDuty's."""

    name = "vendor-receivers"

    def _receivers(self, base: str) -> VendorReceivers:
        return VendorReceivers(TeamsReceiver(base), OpsgenieReceiver(base), FeishuReceiver(base),
                               DingTalkReceiver(base), WeComReceiver(base))

    def _app(self) -> web.Application:
        r = self.receivers
        app = web.Application(client_max_size=1024 ** 2)
        app.router.add_post("/workflows/{workflow}/triggers/manual/paths/invoke", r.teams.handle)
        app.router.add_post("/opsgenie/v2/alerts", r.opsgenie.handle)
        app.router.add_post("/opsgenie/v2/alerts/{identifier}/{action:acknowledge|close|notes}", r.opsgenie.handle)
        app.router.add_post("/open-apis/bot/v2/hook/{token}", r.feishu.handle)
        app.router.add_post("/robot/send", r.dingtalk.handle)
        app.router.add_post("/cgi-bin/webhook/send", r.wecom.handle)
        return app


@pytest.fixture(scope="session")
def vendor_receiver_server() -> Iterator[_Server]:
    server = _Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def vendor_receivers(vendor_receiver_server: _Server) -> VendorReceivers:
    """The Teams, Opsgenie, Feishu, DingTalk and WeCom receivers, emptied and unscripted for this test."""
    vendor_receiver_server.receivers.reset()
    return vendor_receiver_server.receivers
