"""Every channel's request for a notice: Slack, PagerDuty and webhooks as ``messages.render`` makes them, and
Microsoft Teams, Opsgenie, e-mail, Feishu / Lark, DingTalk and WeCom from the notice's redacted digest
(``digest.py``), each checked once more on the way out (``redact_value``, or for escaped markup a re-check
like Slack's). What only the transport needs is added after redaction: Opsgenie's key, Feishu's and DingTalk's
signatures (made anew at each attempt), the mail recipients.
"""

from __future__ import annotations

import html

from pydantic import SecretStr

from kubestack.notifysettings import NotifySettings
from kubestack.pipeline.notify import messages
from kubestack.pipeline.notify.cn_webhooks import (
    dingtalk_check,
    dingtalk_message,
    dingtalk_signer,
    feishu_check,
    feishu_message,
    feishu_signer,
    lark_escape,
    lark_unescape,
    wecom_check,
    wecom_message,
)
from kubestack.pipeline.notify.digest import digest, recheck
from kubestack.pipeline.notify.email import SmtpOutgoing, email_content
from kubestack.pipeline.notify.messages import Outgoing
from kubestack.pipeline.notify.notice import Notice
from kubestack.pipeline.notify.opsgenie import opsgenie_request
from kubestack.pipeline.notify.outgoing import VendorOutgoing
from kubestack.pipeline.notify.teams import teams_message
from kubestack.redaction import redact_value

__all__ = ["render"]


def render(notice: Notice, channel: str, settings: NotifySettings) -> Outgoing | None:
    """The channel's request for the notice, or None when the channel does not carry this kind of notice."""
    if channel not in ("teams", "opsgenie", "email", "feishu", "dingtalk", "wecom"):
        return messages.render(notice, channel, settings)
    if channel not in settings.channel_names():
        return None
    ips = settings.redact_ips
    d = digest(notice, settings.console_url, ips=ips)
    if channel == "teams":
        return VendorOutgoing(channel, settings.teams.webhook_url, redact_value(teams_message(d), ips=ips))
    if channel == "opsgenie":
        request = opsgenie_request(notice, d, settings.opsgenie)
        if request is None:
            return None
        key = settings.opsgenie.api_key.get_secret_value()
        return VendorOutgoing(channel, SecretStr(settings.opsgenie.base_url + request.path),
                              redact_value(request.payload, ips=ips),
                              secret_headers={"Authorization": SecretStr(f"GenieKey {key}")})
    if channel == "email":
        content = email_content(d, notice.subject_id, notice.incident_id, settings.email.subject_prefix)
        checked = {**redact_value({k: content[k] for k in ("subject", "text")}, ips=ips),
                   "html": recheck(content["html"], unescape=_html_unescape, escape=_html_escape, ips=ips),
                   "thread": content["thread"]}
        return SmtpOutgoing.of(channel, checked, settings.email)
    if channel == "feishu":
        payload = recheck(feishu_message(d), unescape=lark_unescape, escape=lark_escape, ips=ips)
        secret = settings.feishu.secret
        return VendorOutgoing(channel, settings.feishu.webhook_url, payload,
                              sign=feishu_signer(secret.get_secret_value()) if secret else None, check=feishu_check)
    if channel == "dingtalk":
        secret = settings.dingtalk.secret
        return VendorOutgoing(channel, settings.dingtalk.webhook_url, redact_value(dingtalk_message(d), ips=ips),
                              sign_url=dingtalk_signer(secret.get_secret_value()) if secret else None,
                              check=dingtalk_check)
    return VendorOutgoing(channel, settings.wecom.webhook_url, redact_value(wecom_message(d), ips=ips),
                          check=wecom_check)


def _html_escape(text: str) -> str:
    return html.escape(text, quote=False)


def _html_unescape(text: str) -> str:
    return html.unescape(text)
