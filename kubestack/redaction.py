"""Redaction of secrets and personal data from text and evidence before anything leaves the process (an LLM
prompt, a hosted service). Pure and idempotent: ``redact(redact(x)) == redact(x)``.

What goes, keeping the shape of the text so the evidence still reads:

- private key blocks: the body between ``-----BEGIN ... PRIVATE KEY-----`` and its END line;
- credentials in URLs: ``postgresql://app:<redacted>@db:5432``, ``redis://:<redacted>@cache``;
- ``Authorization: Bearer <redacted>`` (and Basic, Token, Digest), bare ``Bearer <token>``, and the value of a
  ``Cookie:`` / ``Set-Cookie:`` header line (or of such a key in a mapping);
- the value of a secret-named key in ``key=value``, ``key: value``, ``"key": "value"`` forms: a key *ending*
  in password, passwd, passphrase, secret, token, api key, access key, private key, credential(s), or in
  pass / pwd / auth as its own word (``db_pass``, ``x-auth``), plus the word after Redis ``requirepass`` /
  ``masterauth`` anywhere (``CONFIG SET requirepass <redacted>``);
  booleans and null are left alone (``password_required=true`` says nothing secret), so are keys that only
  start with such a word (``password_authentication_failed=3``, ``token_bucket=10``);
- SQL ``IDENTIFIED BY '...'`` and ``PASSWORD '...'``;
- AWS access key ids, JWTs, well-known token formats (GitHub, Slack, OpenAI-style ``sk-``, Google ``AIza``);
- e-mail addresses;
- with ``ips=True``, IPv4 and IPv6 addresses (ports stay: ``<redacted-ip>:6379``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

REDACTED = "<redacted>"

_SECRET_KEY = (
    r"[A-Za-z0-9_.-]*?(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?"
    r"|private[_-]?key|credentials?|requirepass|masterauth)"
    r"|(?:[A-Za-z0-9_.-]*[_.-])?(?:pass|pwd|auth)"
)
_SECRET_KEY_RE = re.compile(rf"(?:{_SECRET_KEY})", re.IGNORECASE)
_HARMLESS = re.compile(r"(?i)(?:true|false|yes|no|null|none|nil|on|off|\*+|<redacted[\w-]*>|\$\{[^}]*\}|\(null\))")

_PRIVATE_KEY = re.compile(r"(-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----)(.*?)(-----END \2PRIVATE KEY-----)", re.DOTALL)
_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)([^\s/]+)(@[^\s@/]+)")
_AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest)\s+)?)([^\s\"',]+)")
_COOKIE = re.compile(r"(?im)(^[ \t]*(?:set-)?cookie[ \t]*:[ \t]*)([^\r\n]+)")
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]{8,})")
_JSON_PAIR = re.compile(rf"(?i)([\"'](?:{_SECRET_KEY})[\"']\s*:\s*)(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s,}}\]]+)")
_KEY_VALUE = re.compile(
    rf"(?i)((?<![A-Za-z0-9_.-])(?:{_SECRET_KEY})\s*(?:=|:(?!//))\s*)(\"[^\"]*\"|'[^']*'|[^\s&;,'\"}}\]]+)")
_DIRECTIVE = re.compile(r"(?i)(\b(?:requirepass|masterauth)[ \t]+)(\"[^\"]*\"|[^\s)\]},;]+)")
_SQL_PASSWORD = re.compile(r"(?i)(\b(?:identified\s+by|password)\s+)('[^']*'|\"[^\"]*\")")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_KNOWN_TOKEN = re.compile(r"\b(?:(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}"
                          r"|sk-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{35})")
_EMAIL = re.compile(r"(?<![\w.%+:/<>-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                   r"(?:/\d{1,2})?(?![\w]|\.\d)")
_IPV6_CANDIDATE = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?"
                             r"(?:%[\w.]+)?(?![\w:]|\.\w)")


_HEADER_KEYS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_NAME_FIELDS = ("key", "name", "param", "parameter", "variable", "setting")
_VALUE_FIELDS = frozenset({"value", "old", "new", "current", "previous", "expected"})


def _keep_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return f"{value[0]}{REDACTED}{value[0]}"
    return REDACTED


def _value_sub(match: re.Match[str]) -> str:
    prefix, value = match.group(1), match.group(2)
    bare = value.strip("\"'")
    if not bare or _HARMLESS.fullmatch(bare):
        return match.group(0)
    return prefix + _keep_quotes(value)


def _json_sub(match: re.Match[str]) -> str:
    """Like ``_value_sub``, but an unquoted secret (a number) becomes a JSON string, so JSON stays JSON."""
    out = _value_sub(match)
    if out != match.group(0) and out.endswith(REDACTED):
        return f'{match.group(1)}"{REDACTED}"'
    return out


def _ipv6_sub(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return text
    return "<redacted-ip>" if any(c.isalnum() for c in text) else text


def redact(text: str, *, ips: bool = False) -> str:
    """``text`` with secrets (and IP addresses when ``ips``) replaced, its shape kept."""
    if not text:
        return text
    text = _PRIVATE_KEY.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(4)}", text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)
    text = _AUTH_HEADER.sub(_value_sub, text)
    text = _COOKIE.sub(_value_sub, text)
    text = _BEARER.sub(_value_sub, text)
    text = _JSON_PAIR.sub(_json_sub, text)
    text = _KEY_VALUE.sub(_value_sub, text)
    text = _DIRECTIVE.sub(_value_sub, text)
    text = _SQL_PASSWORD.sub(_value_sub, text)
    text = _AWS_KEY_ID.sub("<redacted-aws-key>", text)
    text = _JWT.sub("<redacted-jwt>", text)
    text = _KNOWN_TOKEN.sub("<redacted-token>", text)
    text = _EMAIL.sub("<redacted-email>", text)
    if ips:
        text = _IPV6_CANDIDATE.sub(_ipv6_sub, text)
        text = _IPV4.sub("<redacted-ip>", text)
    return text


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``db_password``, ``apiKey``), by the same rule as ``key=value``."""
    return _SECRET_KEY_RE.fullmatch(key) is not None


def redact_value(obj: Any, *, ips: bool = False) -> Any:
    """A copy of nested dicts, lists and tuples with every string redacted and the scalar value of every
    secret-named key replaced (booleans and None kept); in a dict naming a setting (``{"key": "requirepass",
    "old": ..., "new": ...}``, as config diffs do) whose name is secret, its values are replaced too."""
    if isinstance(obj, str):
        return redact(obj, ips=ips)
    if isinstance(obj, dict):
        out = {}
        named = next((obj[k] for k in _NAME_FIELDS if isinstance(obj.get(k), str)), None)
        names_secret = named is not None and is_secret_key(named)
        for key, value in obj.items():
            secret = isinstance(key, str) and (is_secret_key(key) or (names_secret and key in _VALUE_FIELDS))
            if isinstance(key, str) and key.lower() in _HEADER_KEYS and isinstance(value, str):
                out[key] = redact(f"{key}: {value}", ips=ips).split(": ", 1)[1]
            elif secret and isinstance(value, (str, int, float)) and not isinstance(value, bool):
                out[key] = value if isinstance(value, str) and (not value or _HARMLESS.fullmatch(value)) else REDACTED
            else:
                out[key] = redact_value(value, ips=ips)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_value(item, ips=ips) for item in obj)
    return obj
