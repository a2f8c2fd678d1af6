"""PostgreSQL's frontend/backend protocol (version 3), spoken by the plugin itself for what it sends: the startup
(TLS first when ``sslmode`` asks for it), cleartext, md5 and SCRAM-SHA-256 logins, and the simple query protocol,
every cell as text. psycopg's import alone (its binary wheel bundles libpq and a second OpenSSL) cost the agent
about 10 MB resident for a few statements; ``plugins/redis/resp.py`` did the same for Redis.

What goes wrong comes out as ``PgServerError`` (an ErrorResponse: SQLSTATE, severity, message), ``PgLoginError``
(this side refuses to go on: no password to give, a method it does not speak, a server that cannot prove it
knows the password; ``PgTlsRefusedError`` when TLS is required and the server has none), ``PgProtocolError``
(what came back is not the protocol), or the socket's own ``OSError`` / ``asyncio.IncompleteReadError``.
``client.py`` maps them to the plugin's errors.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import ssl
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
_MAX_MESSAGE = 256 * 1024 * 1024
_CLOSE_TIMEOUT_S = 5.0
_VERIFYING = ("verify-ca", "verify-full")
_FIELD_NAMES = {b"S": "severity", b"V": "severity", b"C": "sqlstate", b"M": "message", b"D": "detail", b"H": "hint"}

Rows = list[tuple[str | None, ...]]


class PgServerError(Exception):
    """The server's ErrorResponse; ``str()`` is its message with the detail and hint lines, as libpq prints them."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        self.sqlstate = fields.get("sqlstate", "")
        self.severity = fields.get("severity", "ERROR")
        lines = [fields.get("message", "no message")]
        lines += [f"{label}: {fields[key]}" for key, label in (("detail", "DETAIL"), ("hint", "HINT")) if key in fields]
        super().__init__("\n".join(lines))

    @property
    def fatal(self) -> bool:
        """The server ends the session after it (FATAL, PANIC)."""
        return self.severity in ("FATAL", "PANIC")


class PgLoginError(Exception):
    """This side cannot or will not complete the login."""


class PgTlsRefusedError(PgLoginError):
    """The server has no TLS, and ``sslmode`` requires it."""


class PgProtocolError(Exception):
    """What came back is not PostgreSQL's protocol 3."""


@dataclass(frozen=True)
class Login:
    """Where and as whom to log in; ``parameters`` go into the startup message (``options``, ``application_name``)."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = field(default=None, repr=False)
    sslmode: str = "prefer"
    root_cert: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def unix_socket(self) -> str | None:
        """A directory as host means libpq's socket file in it."""
        return f"{self.host}/.s.PGSQL.{self.port}" if self.host.startswith("/") else None


def frame(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def startup_message(login: Login) -> bytes:
    params = {"user": login.user, "database": login.dbname, "client_encoding": "UTF8", **login.parameters}
    body = struct.pack("!I", PROTOCOL_3) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items())
    return struct.pack("!I", len(body) + 5) + body + b"\0"


def md5_password(password: str, user: str, salt: bytes) -> str:
    """The md5 method's answer: ``md5`` + md5(md5(password + user) + salt), in hex."""
    inner = hashlib.md5((password + user).encode()).hexdigest().encode()
    return "md5" + hashlib.md5(inner + salt).hexdigest()


def error_fields(body: bytes) -> dict[str, str]:
    fields = {}
    for part in body.split(b"\0"):
        if part and part[:1] in _FIELD_NAMES:
            fields.setdefault(_FIELD_NAMES[part[:1]], part[1:].decode(errors="replace"))
    return fields


def data_row(body: bytes) -> tuple[str | None, ...]:
    (count,), pos, cells = struct.unpack_from("!h", body), 2, []
    for _ in range(count):
        (size,) = struct.unpack_from("!i", body, pos)
        pos += 4
        if size < 0:
            cells.append(None)
        else:
            cells.append(body[pos:pos + size].decode(errors="replace"))
            pos += size
    return tuple(cells)


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(5)
    (length,) = struct.unpack_from("!I", header, 1)
    if not 4 <= length <= _MAX_MESSAGE:
        raise PgProtocolError(f"message {header[:1]!r} of {length} bytes")
    return header[:1], await reader.readexactly(length - 4)


class ScramSha256:
    """The client side of SCRAM-SHA-256 (RFC 7677) without channel binding. PostgreSQL takes the user name from the
    startup message, so it is left empty here; the password is NFKC-normalised (SASLprep's main step)."""

    def __init__(self, password: str, nonce: str | None = None, user: str = "") -> None:
        self._password = unicodedata.normalize("NFKC", password).encode()
        self._nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self._first_bare = f"n={user},r={self._nonce}"
        self._auth_message = b""
        self._server_key = b""

    def first(self) -> bytes:
        return f"n,,{self._first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        attrs = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        nonce = attrs.get("r", "")
        if not nonce.startswith(self._nonce) or "s" not in attrs or "i" not in attrs:
            raise PgLoginError(f"the server's SCRAM challenge is not one: {text[:80]!r}")
        salted = hashlib.pbkdf2_hmac("sha256", self._password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        without_proof = f"c=biws,r={nonce}"
        self._auth_message = f"{self._first_bare},{text},{without_proof}".encode()
        signature = hmac.digest(hashlib.sha256(client_key).digest(), self._auth_message, "sha256")
        self._server_key = hmac.digest(salted, b"Server Key", "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        attrs = dict(part.split("=", 1) for part in server_final.decode().split(",") if "=" in part)
        if "e" in attrs:
            raise PgLoginError(f"SCRAM refused: {attrs['e']}")
        expected = hmac.digest(self._server_key, self._auth_message, "sha256")
        if not hmac.compare_digest(base64.b64decode(attrs.get("v", "")), expected):
            raise PgLoginError("the server's SCRAM signature is wrong: it does not know the password")


def tls_context(sslmode: str, root_cert: str | None = None) -> ssl.SSLContext:
    """``require`` encrypts without checking the certificate; ``verify-ca`` checks it against ``root_cert`` (else
    libpq's ``~/.postgresql/root.crt``, else the system's store); ``verify-full`` also checks the host name."""
    context = ssl.create_default_context()
    if sslmode not in _VERIFYING:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    default = Path.home() / ".postgresql" / "root.crt"
    if root_cert or default.is_file():
        context.load_verify_locations(root_cert or str(default))
    context.check_hostname = sslmode == "verify-full"
    return context


class PgConnection:
    """One logged-in session. Not safe for concurrent use: the caller sends one statement at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self.parameters: dict[str, str] = {}

    @classmethod
    async def connect(cls, login: Login) -> PgConnection:
        """Open and log in. ``allow`` tries without TLS first and again with it when the server refuses the login;
        ``prefer`` asks for TLS and goes on without it when the server has none."""
        if login.sslmode == "allow" and login.unix_socket is None:
            try:
                return await cls._connect(login, tls=None)
            except PgServerError:
                return await cls._connect(login, tls="require")
        tls = None if login.sslmode in ("disable", "allow") or login.unix_socket else login.sslmode
        return await cls._connect(login, tls)

    @classmethod
    async def _connect(cls, login: Login, tls: str | None) -> PgConnection:
        if login.unix_socket:
            reader, writer = await asyncio.open_unix_connection(login.unix_socket)
        else:
            reader, writer = await asyncio.open_connection(login.host, login.port)
        conn = cls(reader, writer)
        try:
            if tls is not None:
                await conn._start_tls(login, tls)
            await conn._login(login)
        except BaseException:
            conn.abort()
            raise
        return conn

    async def _start_tls(self, login: Login, sslmode: str) -> None:
        self._writer.write(struct.pack("!II", 8, SSL_REQUEST))
        await self._writer.drain()
        answer = await self._reader.readexactly(1)
        if answer == b"S":
            await self._writer.start_tls(tls_context(sslmode, login.root_cert), server_hostname=login.host)
        elif answer != b"N":
            raise PgProtocolError(f"answer {answer!r} to the TLS request")
        elif sslmode != "prefer":
            raise PgTlsRefusedError(f"the server does not offer TLS, and sslmode is {sslmode}")

    async def _login(self, login: Login) -> None:
        self._writer.write(startup_message(login))
        scram: ScramSha256 | None = None
        while True:
            kind, body = await read_message(self._reader)
            if kind == b"R":
                scram = await self._authenticate(login, body, scram)
            elif kind == b"E":
                raise PgServerError(error_fields(body))
            elif kind == b"S":
                name, value, _ = body.split(b"\0", 2)
                self.parameters[name.decode()] = value.decode(errors="replace")
            elif kind == b"Z":
                return
            elif kind not in (b"K", b"N"):  # BackendKeyData and notices carry nothing the plugin uses
                raise PgProtocolError(f"message {kind!r} during the login")

    async def _authenticate(self, login: Login, body: bytes, scram: ScramSha256 | None) -> ScramSha256 | None:
        (code,) = struct.unpack_from("!I", body)
        if code == 0:  # AuthenticationOk
            return scram
        if code == 12 and scram is not None:  # SASLFinal
            scram.verify(body[4:])
            return scram
        if login.password is None:
            raise PgLoginError("the server asks for a password and none is configured (no password supplied)")
        if code == 3:
            self._send(b"p", login.password.encode() + b"\0")
        elif code == 5:
            self._send(b"p", md5_password(login.password, login.user, body[4:8]).encode() + b"\0")
        elif code == 10:
            if b"SCRAM-SHA-256" not in body[4:].split(b"\0"):
                raise PgLoginError(f"the server offers only SASL mechanisms {body[4:].strip(bytes(1))!r}")
            scram = ScramSha256(login.password)
            first = scram.first()
            self._send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
        elif code == 11 and scram is not None:
            self._send(b"p", scram.final(body[4:]))
        else:
            raise PgLoginError(f"the server asks for authentication method {code}, which is not spoken here")
        await self._writer.drain()
        return scram

    def _send(self, kind: bytes, body: bytes) -> None:
        self._writer.write(frame(kind, body))

    async def query(self, sql: str) -> Rows:
        """Rows of the first result that has any (``[]`` for a statement without); ``PgServerError`` after the server
        is ready again, so that the session stays usable unless the error is fatal."""
        self._send(b"Q", sql.encode() + b"\0")
        await self._writer.drain()
        results: list[Rows] = []
        error: PgServerError | None = None
        while True:
            kind, body = await read_message(self._reader)
            if kind == b"T":
                results.append([])
            elif kind == b"D":
                if not results:
                    raise PgProtocolError("a data row before its row description")
                results[-1].append(data_row(body))
            elif kind == b"E":
                error = PgServerError(error_fields(body))
                if error.fatal:
                    raise error
            elif kind == b"Z":
                if error is not None:
                    raise error
                return results[0] if results else []
            elif kind not in (b"C", b"I", b"N", b"S", b"A"):  # completions, notices, parameter changes, notifications
                raise PgProtocolError(f"message {kind!r} in a query's reply")

    async def close(self) -> None:
        """Terminate, then close the socket; a peer that does not answer TLS's closing is not waited for long."""
        try:
            self._send(b"X", b"")
            self._writer.close()
            await asyncio.wait_for(self._writer.wait_closed(), _CLOSE_TIMEOUT_S)
        except OSError:  # TimeoutError and ssl.SSLError among them
            self.abort()

    def abort(self) -> None:
        self._writer.transport.abort()
