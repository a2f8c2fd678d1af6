"""A real local SMTP server (aiosmtpd) that requires STARTTLS and AUTH, for the e-mail channel.

Session fixture ``smtp_server``: aiosmtpd's ``Controller`` on 127.0.0.1 (a free port, its own thread), a
self-signed certificate for ``127.0.0.1`` / ``localhost`` made here with ``cryptography`` (``ca_file`` is its PEM,
what the client must trust), STARTTLS required before anything else and AUTH (PLAIN, LOGIN) only after it, with
``SMTP_USER`` / ``SMTP_PASSWORD``. What it accepts lands in ``messages`` (parsed ``EmailMessage`` with the
envelope). ``script`` makes the next transactions answer a given SMTP reply at DATA (e.g. ``"451 4.3.0 try
later"``), ``reject_rcpt`` refuses a recipient with 550. Function fixture ``smtp`` empties it for a test.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.services.process import free_port

SMTP_USER = "kubestack-notify"
SMTP_PASSWORD = "smtp-pa55-word"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubestack-test-smtp")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    peer_tls: bool
    login: str | None


@dataclass
class _Handler:
    messages: list[Received] = field(default_factory=list)
    replies: deque[str] = field(default_factory=deque)
    refused_recipients: set[str] = field(default_factory=set)
    sessions: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:
        if address in self.refused_recipients:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sessions += 1
        if self.replies:
            return self.replies.popleft()
        message = BytesParser(policy=policy.default).parsebytes(envelope.original_content or envelope.content)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message,
                                      session.ssl is not None, login))
        return "250 2.0.0 queued"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER
          and auth_data.password.decode() == SMTP_PASSWORD)
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class SmtpServer:
    def __init__(self, folder: Path) -> None:
        self.cert_file, self.key_file = self_signed(folder)
        self.ca_file = str(self.cert_file)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.handler = _Handler()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.cert_file, self.key_file)
        self._controller = Controller(self.handler, hostname=self.host, port=self.port, tls_context=tls,
                                      require_starttls=True, auth_required=True, auth_require_tls=True,
                                      authenticator=_authenticator, ready_timeout=10)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def script(self, *replies: str) -> None:
        """The next DATA commands answer these SMTP replies instead of queueing the message."""
        self.handler.replies.extend(replies)

    def reject_rcpt(self, *addresses: str) -> None:
        self.handler.refused_recipients.update(addresses)

    def reset(self) -> None:
        self.handler.messages.clear()
        self.handler.replies.clear()
        self.handler.refused_recipients.clear()
        self.handler.sessions = 0

    def email_config(self, **overrides: Any) -> dict[str, Any]:
        """``notify.email`` settings pointing here."""
        return {"host": self.host, "port": self.port, "ca_file": self.ca_file, "username": SMTP_USER,
                "password": SMTP_PASSWORD, "sender": "kubestack@ops.example", "recipients": ["oncall@ops.example"],
                **overrides}

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path_factory.mktemp("smtp"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    """The SMTP server, emptied and unscripted for this test."""
    smtp_server.reset()
    return smtp_server
