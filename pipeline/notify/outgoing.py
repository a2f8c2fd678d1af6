"""Requests of the channels beyond Slack, PagerDuty and generic webhooks, on the same delivery path (send.py).

- ``VendorOutgoing``: an HTTP POST like any ``Outgoing``, plus what some vendors need: headers that carry a
  credential (Opsgenie's ``Authorization: GenieKey ...``), a body signed anew on each attempt (Feishu's
  ``timestamp``/``sign``) or URL (DingTalk's), and a reading of the answer, since Feishu, DingTalk and WeCom answer HTTP 200 with an
  error code in the body (``check``: None when accepted, else a ``Refusal``, retried when it is a rate limit).
- ``DirectOutgoing``: a message a channel sends itself, not by HTTP (e-mail over SMTP); ``transmit`` makes one
  attempt and says how it failed, and ``deliver`` retries it like the others.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from kubestack.pipeline.notify.messages import Outgoing


@dataclass(frozen=True)
class Refusal:
    """Why one attempt failed; ``retriable`` for what may pass (rate limits, transient server errors)."""

    error: str
    retriable: bool = False
    retry_after_s: float | None = None


Check = Callable[[int, bytes], Refusal | None]


@dataclass(frozen=True)
class VendorOutgoing(Outgoing):
    secret_headers: dict[str, SecretStr] = field(default_factory=dict, repr=False)
    sign: Callable[[dict[str, Any]], dict[str, Any]] | None = field(default=None, repr=False)
    """Adds the signature fields to the payload at each attempt (the payload is already redacted)."""
    sign_url: Callable[[str], str] | None = field(default=None, repr=False)
    """Adds the signature to the URL at each attempt."""
    check: Check | None = field(default=None, repr=False)

    def address(self) -> str:
        url = self.url.get_secret_value()
        return self.sign_url(url) if self.sign_url is not None else url

    def body(self) -> bytes:
        payload = self.sign(self.payload) if self.sign is not None else self.payload
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        return {"Content-Type": "application/json; charset=utf-8",
                **{name: value.get_secret_value() for name, value in self.secret_headers.items()}}

    def refusal(self, status: int, body: bytes) -> Refusal | None:
        """The vendor's refusal hidden in a 2xx answer, if any."""
        return self.check(status, body) if self.check is not None else None


@dataclass(frozen=True)
class DirectOutgoing(Outgoing, abc.ABC):
    @abc.abstractmethod
    async def transmit(self, timeout_s: float) -> Refusal | None:
        """One attempt; None when the message was accepted."""


def json_code_check(code_keys: tuple[str, ...], retriable_codes: frozenset[int]) -> Check:
    """A check for vendors that answer ``{"<code key>": 0, ...}`` on success and another code on failure."""

    def check(status: int, body: bytes) -> Refusal | None:
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            return Refusal(f"HTTP {status} with a body that is not JSON: {body[:200]!r}")
        if not isinstance(answer, dict):
            return Refusal(f"HTTP {status} with an unexpected answer: {str(answer)[:200]}")
        code = next((answer[key] for key in code_keys if key in answer), 0)
        if code in (0, None):
            return None
        message = answer.get("msg") or answer.get("errmsg") or answer.get("StatusMessage") or ""
        return Refusal(f"code {code}: {str(message)[:300]}", retriable=code in retriable_codes)

    return check
