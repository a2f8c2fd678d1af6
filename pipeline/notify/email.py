"""A notice as an e-mail (text and HTML alternatives), sent over SMTP with STARTTLS (or implicit TLS) and AUTH.

The message threads per incident: ``Message-ID`` is new each time, ``In-Reply-To`` / ``References`` name
``<incident-<id>@kubestack>``, so a mail client shows an incident's story as one conversation. The HTML is built
from the redacted digest, each piece escaped; links are the console's and, on a pending proposal, the decision
page's.

Sending (``SmtpOutgoing.transmit``, one attempt, smtplib in a worker thread): the server must offer STARTTLS (we
never send in plain text) and its certificate must verify (``email.ca_file`` for a private CA). Transient
failures (a connection or timeout, an SMTP 4xx such as 421 or 451) are retried like an HTTP 5xx; a 5xx answer
(535 bad credentials, 550 unknown recipient) and a certificate that does not verify are not.
"""

from __future__ import annotations

import asyncio
import html
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from pydantic import SecretStr

from kubestack.errors import ConfigError
from kubestack.notifysettings import EmailSettings
from kubestack.pipeline.notify.digest import Digest, cut
from kubestack.pipeline.notify.outgoing import DirectOutgoing, Refusal

log = logging.getLogger(__name__)

SUBJECT_MAX = 200
_COLOURS = {"critical": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}


def email_content(d: Digest, subject_id: str, incident_id: str | None, prefix: str) -> dict[str, Any]:
    """Subject, text and HTML of the mail (what is redacted and recorded), and its threading headers."""
    lines = [d.headline, "", *(f"{name}: {value}" for name, value in d.facts), "", d.text]
    if d.cause:
        lines += ["", "Likely cause:", d.cause]
    lines += ["", *(f"{link.label}: {link.url}" for link in [*d.decisions, *d.links]), "", "-- ", d.footer]
    thread = f"<incident-{incident_id or subject_id}@kubestack>"
    return {"subject": cut(f"{prefix} {d.headline}".strip(), SUBJECT_MAX), "text": "\n".join(lines) + "\n",
            "html": email_html(d), "thread": thread}


def email_html(d: Digest) -> str:
    e = html.escape
    colour = "#2e7d32" if d.cleared else _COLOURS.get(d.severity, "#424242")
    rows = "".join(f"<tr><th align=\"left\" style=\"padding:2px 12px 2px 0\">{e(name)}</th><td>{e(value)}</td></tr>"
                   for name, value in d.facts)
    text = "<br>".join(e(line) for line in d.text.splitlines())
    cause = f"<h3>Likely cause</h3><p>{'<br>'.join(e(line) for line in d.cause.splitlines())}</p>" if d.cause else ""
    links = " · ".join(f"<a href=\"{e(link.url, quote=True)}\">{e(link.label)}</a>"
                       for link in [*d.decisions, *d.links])
    return (f"<!DOCTYPE html><html><body style=\"font-family:sans-serif\">"
            f"<h2 style=\"color:{colour}\">{e(d.headline)}</h2><table>{rows}</table><p>{text}</p>{cause}"
            f"<p>{links}</p><p style=\"color:#757575;font-size:small\">{e(d.footer)}</p></body></html>")


def build_message(content: dict[str, Any], settings: EmailSettings) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = content["subject"]
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="kubestack")
    message["In-Reply-To"] = content["thread"]
    message["References"] = content["thread"]
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(content["text"])
    message.add_alternative(content["html"], subtype="html")
    return message


def _tls_context(settings: EmailSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file)


def _send(settings: EmailSettings, message: EmailMessage, timeout_s: float) -> dict[str, tuple[int, bytes]]:
    """One SMTP session; the recipients the server refused (the others got it)."""
    context = _tls_context(settings)
    if settings.tls == "implicit":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout_s)
    with smtp:
        smtp.ehlo()
        if settings.tls == "starttls":
            if not smtp.has_extn("starttls"):
                raise _NoStartTls(f"{settings.host}:{settings.port} offers no STARTTLS: not sending in plain text")
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.username is not None and settings.password is not None:
            smtp.login(settings.username, settings.password.get_secret_value())
        return smtp.send_message(message)


class _NoStartTls(Exception):
    pass


def _refusal(exc: Exception) -> Refusal:
    """How an SMTP attempt failed, and whether trying again may help."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        return Refusal(f"SMTP: every recipient refused ({', '.join(map(str, codes))})",
                       retriable=all(400 <= c < 500 for c in codes))
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        what = "AUTH refused" if isinstance(exc, smtplib.SMTPAuthenticationError) else "SMTP"
        return Refusal(f"{what}: {exc.smtp_code} {text[:300]}", retriable=400 <= exc.smtp_code < 500)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Refusal(f"TLS: the SMTP server's certificate does not verify: {exc.verify_message}")
    if isinstance(exc, _NoStartTls | smtplib.SMTPNotSupportedError):
        return Refusal(str(exc))
    if isinstance(exc, TimeoutError):
        return Refusal("SMTP: no answer in time", retriable=True)
    return Refusal(f"SMTP: {type(exc).__name__}: {exc}", retriable=True)


@dataclass(frozen=True)
class SmtpOutgoing(DirectOutgoing):
    settings: EmailSettings | None = field(default=None, repr=False)

    @classmethod
    def of(cls, channel: str, content: dict[str, Any], settings: EmailSettings) -> SmtpOutgoing:
        return cls(channel, SecretStr(f"smtp://{settings.host}:{settings.port}"), content, settings=settings)

    async def transmit(self, timeout_s: float) -> Refusal | None:
        if self.settings is None:
            raise ConfigError("an e-mail notice without notify.email settings")
        message = build_message(self.payload, self.settings)
        try:
            refused = await asyncio.to_thread(_send, self.settings, message, timeout_s)
        except (smtplib.SMTPException, OSError, _NoStartTls) as exc:
            return _refusal(exc)
        if refused:
            log.warning("e-mail %s: %d of %d recipients refused", message["Message-ID"], len(refused),
                        len(self.settings.recipients))
        return None
