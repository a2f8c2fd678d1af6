"""The message each channel gets for a notice, redacted before anything leaves.

``render(notice, channel, settings)`` is the one way out: it builds the channel's payload (``slack.py``,
``pagerduty.py``, ``webhook.py``) and passes the whole of it through ``redaction.redact_value`` (passwords,
tokens, keys, connection strings, e-mails; IPs with ``notify.redact_ips``), then adds what only the transport
needs (the PagerDuty routing key, the webhook signature at send time). Slack is the exception in form, not in
effect: its mrkdwn must be escaped, which a second redaction would undo (``masterauth &lt;redacted&gt;`` reads
as a secret again), so its renderer redacts each piece before escaping it and ``render`` re-checks every string.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from kubestack.notifysettings import NotifySettings
from kubestack.pipeline.notify.notice import Notice
from kubestack.pipeline.notify.pagerduty import pagerduty_event
from kubestack.pipeline.notify.slack import SlackRenderer
from kubestack.pipeline.notify.webhook import encode_body, sign_headers, verify_webhook_signature, webhook_envelope
from kubestack.redaction import redact, redact_value

__all__ = ["Outgoing", "render", "redacted_text", "verify_webhook_signature"]

log = logging.getLogger(__name__)

TITLE_MAX = 253
BODY_MAX = 4000


@dataclass(frozen=True)
class Outgoing:
    """One HTTP POST to a channel: where, what, and for webhooks the key that signs each attempt."""

    channel: str
    url: SecretStr
    payload: dict[str, Any]
    signing_secret: SecretStr | None = field(default=None, repr=False)

    def body(self) -> bytes:
        if self.signing_secret is not None:
            return encode_body(self.payload)
        return json.dumps(self.payload, separators=(",", ":")).encode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Headers of one attempt; a webhook's are signed anew each time, so a late retry is not stale."""
        if self.signing_secret is None:
            return {"Content-Type": "application/json"}
        return sign_headers(self.signing_secret.get_secret_value(), body, timestamp)


def render(notice: Notice, channel: str, settings: NotifySettings) -> Outgoing | None:
    """The channel's request for the notice, or None when the channel does not carry this kind of notice."""
    ips = settings.redact_ips
    if channel == "slack":
        url = settings.slack.webhook_url
        payload = SlackRenderer(settings.console_url, redact_ips=ips).message(notice)
        return None if url is None else Outgoing(channel, url, _recheck_slack(payload, ips))
    if channel == "pagerduty":
        key = settings.pagerduty.routing_key
        event = pagerduty_event(notice, settings.console_url)
        if event is None or key is None:
            return None
        payload = {"routing_key": key.get_secret_value(), **redact_value(event, ips=ips)}
        return Outgoing(channel, SecretStr(settings.pagerduty.events_url), payload)
    if channel.startswith("webhook:"):
        hook = settings.webhook(channel)
        return Outgoing(channel, SecretStr(hook.url), redact_value(webhook_envelope(notice), ips=ips), hook.secret)
    return None


def _recheck_slack(obj: Any, ips: bool) -> Any:
    """The safety net for Slack, whose renderer redacts then escapes each piece: a string that redaction would
    still change (read unescaped) is redacted and escaped whole, at the cost of its links."""
    if isinstance(obj, dict):
        return {key: _recheck_slack(value, ips) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_recheck_slack(item, ips) for item in obj]
    if not isinstance(obj, str):
        return obj
    plain = obj.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    if redact(plain, ips=ips) == plain:
        return obj
    log.warning("a Slack message needed a second redaction pass (a renderer let event text through unredacted)")
    return redact(plain, ips=ips).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def redacted_text(notice: Notice, settings: NotifySettings) -> tuple[str, str]:
    """(title, body) of the ``Notification`` event, redacted and cut to the contract's sizes."""
    title = redact(notice.title, ips=settings.redact_ips)[:TITLE_MAX]
    return title, redact(notice.text, ips=settings.redact_ips)[:BODY_MAX]
