"""Notices for the chat bots of Feishu / Lark, DingTalk and WeCom: their message formats, signatures and answers.

- Feishu / Lark custom bot: ``{"msg_type": "interactive", "card": {...}}`` (header coloured by severity, lark_md
  text, buttons that open the console and the decision page). With a secret, each attempt adds ``timestamp``
  (Unix seconds) and ``sign`` = base64(HMAC-SHA256 with key ``"<timestamp>\\n<secret>"`` over an empty message).
  Answers HTTP 200 ``{"code": 0, ...}``; 19021 is a bad signature, 11232 a rate limit (retried).
- DingTalk custom robot: ``{"msgtype": "markdown", "markdown": {"title", "text"}}``. With a secret, the URL gets
  ``timestamp`` (Unix milliseconds) and ``sign`` = urlencode(base64(HMAC-SHA256 with key secret over
  ``"<timestamp>\\n<secret>"``)), made anew at each attempt (DingTalk refuses one older than an hour).
  Answers HTTP 200 ``{"errcode": 0, "errmsg": "ok"}``; 310000 is a bad signature, 130101 a rate limit (retried).
- WeCom group robot: ``{"msgtype": "markdown", "markdown": {"content"}}``, content within 4096 UTF-8 bytes;
  the robot's ``key`` in the URL is its only secret. Answers ``{"errcode": 0, "errmsg": "ok"}``; 93000 is a bad
  key, 45009 a rate limit (retried).

Text from events is already redacted (the digest); lark_md is escaped (``<at id=all>`` cannot ping everyone), and
in DingTalk and WeCom markdown ``<@`` is broken up (no mentions).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

from kubestack.pipeline.notify.digest import Digest, cut, cut_bytes
from kubestack.pipeline.notify.outgoing import json_code_check

FEISHU_TEXT_MAX = 3000
FEISHU_BODY_MAX = 20_000
DINGTALK_TEXT_MAX = 18_000
WECOM_CONTENT_MAX = 4096
FEISHU_RATE_LIMITED = frozenset({11232, 9499})
DINGTALK_RATE_LIMITED = frozenset({130101, 410100})
WECOM_RATE_LIMITED = frozenset({45009, 45033, -1})
_FEISHU_TEMPLATES = {"critical": "red", "warning": "orange", "info": "blue"}

feishu_check = json_code_check(("code", "StatusCode"), FEISHU_RATE_LIMITED)
dingtalk_check = json_code_check(("errcode",), DINGTALK_RATE_LIMITED)
wecom_check = json_code_check(("errcode",), WECOM_RATE_LIMITED)


# --- signatures ---------------------------------------------------------------------------------------------

def feishu_sign(secret: str, timestamp: int) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value, already URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def feishu_signer(secret: str, clock: Callable[[], float] = time.time) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def sign(payload: dict[str, Any]) -> dict[str, Any]:
        stamp = int(clock())
        return {"timestamp": str(stamp), "sign": feishu_sign(secret, stamp), **payload}

    return sign


def dingtalk_signer(secret: str, clock: Callable[[], float] = time.time) -> Callable[[str], str]:
    return lambda url: dingtalk_url(url, secret, clock())


def dingtalk_url(url: str, secret: str | None, now: float | None = None) -> str:
    if secret is None:
        return url
    stamp = int((time.time() if now is None else now) * 1000)
    return f"{url}{'&' if '?' in url else '?'}timestamp={stamp}&sign={dingtalk_sign(secret, stamp)}"


# --- escaping -----------------------------------------------------------------------------------------------

def lark_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def lark_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _no_mentions(text: str) -> str:
    return text.replace("<@", "< @")


# --- messages -----------------------------------------------------------------------------------------------

def feishu_message(d: Digest) -> dict[str, Any]:
    e = lark_escape
    template = "green" if d.cleared else _FEISHU_TEMPLATES.get(d.severity, "blue")
    fields = [{"is_short": len(value) < 40, "text": {"tag": "lark_md", "content": cut(f"**{e(name)}**\n{e(value)}",
                                                                                      500)}}
              for name, value in d.facts[:10]]
    elements: list[dict[str, Any]] = [{"tag": "div", "fields": fields},
                                      {"tag": "div", "text": {"tag": "lark_md", "content": cut(e(d.text),
                                                                                              FEISHU_TEXT_MAX)}}]
    if d.cause:
        elements.append({"tag": "div", "text": {"tag": "lark_md",
                                                "content": cut(f"**Likely cause**\n{e(d.cause)}", FEISHU_TEXT_MAX)}})
    buttons = [{"tag": "button", "text": {"tag": "plain_text", "content": link.label}, "url": link.url,
                "type": {"Approve": "primary", "Reject": "danger"}.get(link.label, "default")}
               for link in [*d.decisions, *d.links]]
    if buttons:
        elements += [{"tag": "hr"}, {"tag": "action", "actions": buttons}]
    elements.append({"tag": "note", "elements": [{"tag": "plain_text", "content": cut(d.footer, 500)}]})
    return {"msg_type": "interactive", "card": {
        "config": {"wide_screen_mode": True},
        "header": {"title": {"tag": "plain_text", "content": cut(d.headline, 200)}, "template": template},
        "elements": elements}}


def _markdown_lines(d: Digest, heading: str, text: str | None = None) -> list[str]:
    m = _no_mentions
    lines = [f"{heading} {m(d.headline)}", ""]
    lines += [f"> **{m(name)}**: {m(value)}" for name, value in d.facts]
    lines += ["", m(d.text if text is None else text)]
    if d.cause:
        lines += ["", f"**Likely cause**: {m(d.cause)}"]
    links = [f"[{link.label}]({link.url})" for link in [*d.decisions, *d.links]]
    if links:
        lines += ["", " · ".join(links)]
    return [*lines, "", m(d.footer)]


def dingtalk_message(d: Digest) -> dict[str, Any]:
    text = "\n".join(_markdown_lines(d, "####"))
    return {"msgtype": "markdown", "markdown": {"title": cut(d.headline, 100), "text": cut(text, DINGTALK_TEXT_MAX)},
            "at": {"isAtAll": False}}


def wecom_message(d: Digest) -> dict[str, Any]:
    """The text is cut first, so the links and footer stay within WeCom's 4096 bytes."""
    colour = "info" if d.cleared else ("warning" if d.severity == "critical" else "comment")

    def content(text: str) -> str:
        lines = _markdown_lines(d, "###", text)
        lines[0] = f'### <font color="{colour}">{_no_mentions(d.headline)}</font>'
        return "\n".join(lines)

    room = WECOM_CONTENT_MAX - len(content("").encode())
    text = cut_bytes(_no_mentions(d.text), room) if room > 0 else ""
    return {"msgtype": "markdown", "markdown": {"content": cut_bytes(content(text), WECOM_CONTENT_MAX)}}
