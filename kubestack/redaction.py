"""Redaction of secrets and personal data from text and evidence before anything leaves the process (an LLM
prompt, a hosted service, a viewer's API response, a dead letter, ``kubestack redact``). Pure and idempotent:
``redact(redact(x)) == redact(x)``.

What goes, keeping the shape of the text so the evidence still reads:

- private keys: the body of a ``-----BEGIN ... PRIVATE KEY-----`` block (RSA, EC, OPENSSH, ENCRYPTED, PGP ... BLOCK)
  up to its END line, or to the end of the text when it has none; ``redact_lines`` carries an open block over the
  lines of one batch, so a key logged over several lines goes whole; a base64-encoded PEM key (a Kubernetes
  ``tls.key``, a kubeconfig's ``client-key-data``);
- credentials in URLs, a ``/``, ``@``, ``:`` or ``%``-escape in the password included
  (``postgresql://app:<redacted>@db:5432``); Slack, Discord, Teams and Telegram webhook secrets;
- ``Authorization`` headers (Bearer, Basic, Token, ApiKey ...), a bare ``Bearer <token>``, ``Cookie`` values;
- the value of a secret-named key in ``key=value``, ``key: value``, ``"key": "value"``, ``key => value`` forms: a
  key *ending* in password, passwd, passphrase, secret, token, credential(s), api/access/secret/private/account/
  shared-access/signing/encryption/master/session/app key, 密码, 口令, 密钥, 秘钥, 令牌, or in pass / pwd / auth as its
  own word (``db_pass``, ``x-auth``); a PagerDuty ``routing_key`` / ``integration_key`` of 32 characters (a
  RabbitMQ routing key such as ``orders.created`` stays); booleans, null, placeholders (``${VAR}``, ``?``, ``$1``,
  ``<password>``) and keys that only *start* with such a word (``password_encryption``) are left alone;
- command lines: ``mysql -pPASS``, ``redis-cli -a PASS``, ``--password PASS``, ``curl -u user:PASS``, ``sshpass``,
  ``mongosh -p``, ``docker login -p``, ``keytool -storepass``, ``openssl -passout pass:``, ``rabbitmqctl
  add_user``, ``kubectl --from-literal=k=VALUE``;
- Redis: ``AUTH``, ``HELLO ... AUTH``, ``MIGRATE ... AUTH/AUTH2``, ``ACL SETUSER ... >pass``, ``requirepass`` /
  ``masterauth`` / ``sentinel auth-pass`` directives; SQL: ``IDENTIFIED BY '...'``, ``PASSWORD '...'``,
  ``SET PASSWORD ... = '...'``, ``PASSWORD('...')``;
- configuration formats: ``.pgpass`` and ``.netrc`` lines, Kafka JAAS ``user_<name>="..."``, every value under
  ``data`` / ``stringData`` of a Kubernetes Secret, a container env entry whose name is secret;
- well-known token formats (AWS, Alibaba and Tencent key ids, JWTs, GitHub, GitLab, Slack, Stripe, npm, PyPI,
  OpenAI/Anthropic ``sk-``, Google, Hugging Face, Vault, Docker Hub, SendGrid, Grafana, DigitalOcean, Shopify);
- e-mail addresses (``Jane <jane@example.org>`` too);
- with ``ips=True``, IPv4 and IPv6 addresses (ports stay: ``<redacted-ip>:6379``).

Speed: every log line the LLM or a chat sees passes here, so each rule runs only when its trigger words are in the
text (one ``lower()`` and substring tests for a line with none), and no pattern backtracks without bound.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

REDACTED = "<redacted>"
PEM_LINES_MAX = 400
"""``redact_lines`` keeps a private key block open this many lines at most when its END line never comes."""

# --- key names -------------------------------------------------------------------------------------------------

_KEY_WORDS = (r"password|passwd|passphrase|secret|token|credentials?|requirepass|masterauth|apikey"
              r"|(?:api|access|secret|private|account|shared[_-]?access|signing|encryption|master|session|app"
              r"|license|webhook)[_-]?key|access[_-]?key[_-]?id|private[_-]?key[_-]?id|\.dockerconfigjson"
              r"|密码|口令|密钥|秘钥|令牌")
_SECRET_KEY = rf"[\w.-]*?(?:{_KEY_WORDS})|(?:[\w.-]*[_.-])?(?<!no[_.-])(?<!no)(?:pass|pwd|auth|sig)"
_SECRET_KEY_RE = re.compile(_SECRET_KEY, re.IGNORECASE)
_SHAPED_KEY_RE = re.compile(r"(?i)[\w.-]*(?:routing|integration|service)[_-]?key")
_SHAPED_VALUE_RE = re.compile(r"[A-Za-z0-9]{32}")
_KEY_TRIGGERS = ("pass", "pwd", "secret", "token", "credential", "auth", "key", "sig", "密码", "口令", "密钥", "秘钥", "令牌")

_HARMLESS = re.compile(
    r"(?i)(?:true|false|yes|no|null|none|nil|on|off|required|optional|enabled|disabled|empty|unset|\*+|\?|\$\d+"
    r"|from|fix|restore|check|see|use|set|add|remove|missing|wrong|expired|failed|rotate|renew|update|reset|`.*|\.{2,}\S*|…\S*"
    r"|<[\w -]*>|\$\{[^}]*\}|\$\([^)]*\)|\{\{[^}]*\}\}|\$[A-Za-z_]\w*|%\(\w+\)s|%s|:[A-Za-z_]\w*|\(null\))")

# A word that ends a secret key, directly followed by its separator: where a key=value pair may be.
_KEY_END = re.compile(r"(?:password|passwd|passphrase|secret|token|credentials?|requirepass|masterauth"
                      r"|key(?:[_-]?id)?|pass|pwd|auth|sig|密码|口令|密钥|秘钥|令牌|\.dockerconfigjson)(?=[\"']?[ \t]*(?:=>?|:(?!//)|：))")
_NAMES_A_SECRET_OBJECT = re.compile(r"(?i)existing[_-]?secret")  # Helm: the name of a Kubernetes Secret
_KEY_END_ANY_CASE = re.compile("(?i)" + _KEY_END.pattern)
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_SEPARATOR = re.compile(r"([\"']?[ \t]*(?:=>?|:|：)[ \t]*)")
_VALUE = re.compile(r"\$\{[^}\n]{0,256}\}|\{\{[^}\n]{0,256}\}\}|\$\([^)\n]{0,256}\)|\"(?:[^\"\\\n]|\\.){0,4096}\"|'[^'\n]{0,4096}'"
                    r"|(?![{\[])[^\s&;,'\"}\]，；。）<]{1,4096}")


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``db_password``, ``apiKey``), by the same rule as ``key=value``."""
    return _SECRET_KEY_RE.fullmatch(key) is not None


def _keep_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return f"{value[0]}{REDACTED}{value[0]}"
    return REDACTED


def _is_harmless(value: str) -> bool:
    bare = value.strip("\"'")
    return not bare or _HARMLESS.fullmatch(bare) is not None


def _replace_value(value: str) -> str:
    """A secret value replaced; an unquoted one ending in a ``)`` it did not open keeps it (``password: YES)``)."""
    tail = ""
    if value.endswith(")") and "(" not in value and value[0] not in "\"'":
        value, tail = value[:-1], ")"
    if not value or _is_harmless(value):
        return value + tail
    return _keep_quotes(value) + tail


def _key_values(text: str) -> str:
    out, last = [], 0
    low = text.lower()
    finder = _KEY_END
    if len(low) != len(text):  # a character whose lower case is longer: positions would not match
        low, finder = text, _KEY_END_ANY_CASE
    for hit in finder.finditer(low):
        if hit.start() < last:
            continue
        start = hit.start()
        while start > 0 and (text[start - 1] in _KEY_CHARS or text[start - 1].isalnum()):
            start -= 1
        key = text[start:hit.end()]
        shaped = _SHAPED_KEY_RE.fullmatch(key) is not None
        if not shaped and (not is_secret_key(key) or _NAMES_A_SECRET_OBJECT.fullmatch(key)):
            continue
        sep = _SEPARATOR.match(text, hit.end())
        value = _VALUE.match(text, sep.end()) if sep else None
        if value is None or (shaped and not _SHAPED_VALUE_RE.fullmatch(value.group(0).strip("\"'"))):
            continue
        raw = value.group(0)
        if key.lower() in ("pass", "auth") and raw.isdigit() and len(raw) <= 3:
            continue  # pass=3 fail=0: a count, not a password
        new = _replace_value(raw)
        if new == REDACTED and sep.group(1).lstrip("\"' \t").startswith(":") and start > 0 \
                and text[start - 1] in "\"'" and raw[0] not in "\"'":
            new = f'"{REDACTED}"'  # an unquoted JSON value (a number) becomes a string, so JSON stays JSON
        out.append(text[last:value.start()] + new)
        last = value.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


# --- private keys ----------------------------------------------------------------------------------------------

_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
_PEM_B64 = re.compile(r"LS0tLS1CRUdJTi[A-Za-z0-9+/=]{8,}")


def _pem_blocks(text: str) -> tuple[str, str | None]:
    """``text`` with every private key body replaced, and the END marker still awaited when a block is open."""
    out, pos = [], 0
    while (begin := _PEM_BEGIN.search(text, pos)) is not None:
        end_marker = f"-----END {begin.group(1)}-----"
        end = text.find(end_marker, begin.end())
        out.append(text[pos:begin.end()])
        if end < 0:
            out.append(REDACTED)
            return "".join(out), end_marker
        out.append(REDACTED if text[begin.end():end] != REDACTED else text[begin.end():end])
        pos = end
    out.append(text[pos:])
    return "".join(out), None


def _b64_pem_sub(match: re.Match[str]) -> str:
    blob = match.group(0)
    try:
        head = base64.b64decode(blob[:64], validate=False)
    except (binascii.Error, ValueError):
        return blob
    return REDACTED if b"PRIVATE KEY" in head else blob


# --- the rules -------------------------------------------------------------------------------------------------

def _sub(pattern: re.Pattern[str], group: int = 2) -> Callable[[str], str]:
    """Replace group ``group`` of each match (unless harmless), keeping the groups around it."""

    def apply(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            value = m.group(group)
            if value is None:
                return m.group(0)
            new = _replace_value(value)
            return text[m.start():m.start(group)] + new + text[m.end(group):m.end()]

        return pattern.sub(one, text)

    return apply


def _fixed(pattern: re.Pattern[str], marker: str) -> Callable[[str], str]:
    return lambda text: pattern.sub(marker, text)


_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s:/@\"'<>]{0,256}:)([^\s\"'<>?#]{1,512})"
                  r"(@[A-Za-z0-9._\-\[\]:,%]{1,512})(?=[/?#\s\"'<>),;]|$)")


def _url_sub(match: re.Match[str]) -> str:
    password = match.group(2)
    if re.match(r"\d{1,5}(?:/|$)", password) or password == REDACTED:
        return match.group(0)  # host:port/path@digest, not a password
    return match.group(1) + REDACTED + match.group(3)


_WEBHOOK = re.compile(r"(?i)(\bhttps?://(?:hooks\.slack\.com/(?:services|workflows|triggers)/"
                      r"|(?:[\w-]+\.)?discord(?:app)?\.com/api/webhooks/|[\w.-]*webhook\.office\.com/webhookb2/"
                      r"|api\.telegram\.org/bot))(?!\.\.)([^\s\"'<>/]{1,256}(?:/[^\s\"'<>?]{1,256}){0,4})")
_AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?:bearer|basic|token|digest|apikey|ssws"
    r"|negotiate)[ \t]+|(?=[^\s\"',]{0,4096}\d|[^\s\"',]{16})))([^\s\"',]{1,4096})")
_COOKIE = re.compile(r"(?im)(^[ \t]*(?:set-)?cookie[ \t]*:[ \t]*)([^\r\n]{1,8192})")
_BEARER = re.compile(r"(?i)(\bbearer[ \t]+)((?=[A-Za-z._~+/=-]{0,4096}\d|[A-Za-z0-9._~+/=-]{24})"
                     r"[A-Za-z0-9._~+/=-]{8,4096})")
_ARG = r"(\"[^\"\n]{0,4096}\"|'[^'\n]{0,4096}'|[^\s\"'|;&]{1,4096})"
_CLI = [
    re.compile(rf"\b(?:mysql|mysqldump|mysqladmin|mysqlcheck|mysqlimport|mysqlpump|mysqlbinlog|mysqlsh|mariadb"
               rf"|mariadb-dump|mariadb-admin)\b[^\n|;&]{{0,1024}}?(\s-p){_ARG}"),
    re.compile(rf"\b(?:mysqladmin|mariadb-admin)\b[^\n|;&]{{0,1024}}?(\spassword\s+){_ARG}"),
    re.compile(rf"\b(?:redis-cli|redis-benchmark|valkey-cli)\b[^\n|;&]{{0,1024}}?(\s(?:-a|--pass))\s+{_ARG}"),
    re.compile(rf"\b(?:mongo|mongosh|mongodump|mongorestore|mongoexport|mongoimport|mongostat|mongotop)\b"
               rf"[^\n|;&]{{0,1024}}?(\s-p)\s+{_ARG}"),
    re.compile(rf"\b(?:sshpass)\b[^\n|;&]{{0,256}}?(\s-p)\s*{_ARG}"),
    re.compile(rf"\bdocker\s+login\b[^\n|;&]{{0,1024}}?(\s-p)\s+{_ARG}"),
    re.compile(rf"\b(?:rabbitmqctl)\s+(?:add_user|change_password)\s+\S{{1,256}}(\s+){_ARG}"),
    re.compile(rf"\bhtpasswd\s+-\w*b\w*(?:\s+-\w+)*\s+\S{{1,1024}}\s+\S{{1,256}}(\s+){_ARG}"),
    re.compile(rf"(?i)(\s-(?:srcstorepass|deststorepass|storepass|keypass|srckeypass|destkeypass|new)\s+){_ARG}"),
    re.compile(r"(?i)(\s-(?:passin|passout|pass|password|k)\s+pass:)([^\s\"']{1,4096})"),
    re.compile(rf"(--from-literal[= ][\w.-]{{1,256}}=){_ARG}"),
    re.compile(rf"(?i)((?<![\w-])--?(?:[\w-]{{0,64}}[-_])?(?:password|passwd|passphrase|pass|secret|token|api-key"
               rf"|apikey|requirepass|masterauth|auth-pass)[ \t]+)(?!-){_ARG}"),
]
_CLI_TRIGGERS = (("mysql", "mariadb"), ("mysqladmin", "mariadb-admin"), ("redis-cli", "redis-benchmark", "valkey-cli"),
                 "mongo", "sshpass", "docker", "rabbitmqctl", "htpasswd", ("storepass", "keypass", "-new "), "pass:",
                 "--from-literal", ("password", "passwd", "passphrase", "pass ", "pass\t", "secret", "token", "api-key",
                                    "apikey", "requirepass", "masterauth", "auth-pass"))
_CURL_USER = re.compile(r"(\bcurl\b[^\n|;&]{0,1024}?\s(?:-u|--user)\s+[\"']?[^\s:\"']{1,256}:)([^\s\"']{1,4096})")

_REDIS = [
    re.compile(r"(?m)(\bAUTH[ \t]+(?:[^\s\"'<>]{1,256}[ \t]+)?)([^\s\"'<>]{1,4096})(?=[ \t]*(?:$|[\"'\],}]))"),
    re.compile(r"(?i)(\"auth\"[ \t,]+(?:\"[^\"\n]{0,256}\"[ \t,]+)?)(\"[^\"\n]{0,4096}\")"),
    re.compile(r"(?i)(\bHELLO\b[^\n]{0,256}?\bAUTH[ \t]+[^\s\"']{1,256}[ \t]+)([^\s\"']{1,4096})"),
    re.compile(r"(?i)(\bMIGRATE\b[^\n]{0,1024}?\bAUTH[ \t]+)([^\s\"']{1,4096})"),
    re.compile(r"(?i)(\bMIGRATE\b[^\n]{0,1024}?\bAUTH2[ \t]+[^\s\"']{1,256}[ \t]+)([^\s\"']{1,4096})"),
    re.compile(r"(?i)(\b(?:requirepass|masterauth)[ \t]+)(?!(?:is|was|are|not|has|had|must|should|will|can|set|unset"
               r"|missing|empty|required|changed|to|for|of|in|the|and|or|from|with|value|directive|option|setting)\b)"
               r"(\"[^\"\n]{0,4096}\"|(?!<)[^\s)\]},;]{1,4096})"),
    re.compile(r"(?i)(\bsentinel[ \t]+(?:set[ \t]+\S{1,256}[ \t]+)?auth-pass[ \t]+(?:\S{1,256}[ \t]+)?)"
               r"(\"[^\"\n]{0,4096}\"|\S{1,4096})"),
]
_REDIS_TRIGGERS = (("auth ", "auth\t"), '"auth"', "hello", "migrate", "migrate", ("requirepass", "masterauth"),
                   "auth-pass")
_ACL_LINE = re.compile(r"(?m)(?:\b(?i:ACL[ \t]+SETUSER)[ \t]+\S+|^[ \t]*(?:\d+\)[ \t]*)?\"?user[ \t]+\S+"
                       r"(?=[ \t]+(?:on|off|reset|nopass|resetpass|[><#~&%+-])))[ \t][^\n]{0,4096}")
_ACL_PASSWORD = re.compile(r"(?<=\s)([><#])(?!redacted)([^\s]{1,4096})")
_SQL = [
    re.compile(r"(?i)(\bidentified\s+(?:with\s+\w{1,64}\s+)?(?:by|as)\s+(?:password\s+)?)('[^'\n]{0,4096}'"
               r"|\"[^\"\n]{0,4096}\")"),
    re.compile(r"(?i)(\bpassword\s+)('[^'\n]{0,4096}'|\"[^\"\n]{0,4096}\")"),
    re.compile(r"(?i)(\bset\s+password\b[^=\n]{0,512}=\s*(?:(?:old_)?password\s*\(\s*)?)"
               r"('[^'\n]{0,4096}'|\"[^\"\n]{0,4096}\")"),
]
_PGPASS = re.compile(r"(?m)^([A-Za-z*][A-Za-z0-9_.*-]{0,255}:(?:\d{1,5}|\*):[^:\s]{1,256}:[^:\s]{1,256}:)"
                     r"((?:[^:\s\\]|\\.){1,1024})$")
_NETRC = re.compile(r"(?i)(\bmachine\s+\S+\s+login\s+\S+\s+password\s+)(\S{1,4096})")
_JAAS_USER = re.compile(r"(\buser_[\w.-]{1,128}[ \t]*=[ \t]*)(\"[^\"\n]{0,4096}\"|[^\s;\"]{1,4096})")
_ENV_ENTRY = re.compile(
    rf"(?i)(\bname\"?[ \t]*:[ \t]*[\"']?(?:{_SECRET_KEY})[\"']?[ \t]*(?:,[ \t]*|\n[ \t]*-?[ \t]*)\"?value\"?[ \t]*:"
    r"[ \t]*)(\"[^\"\n]{0,4096}\"|'[^'\n]{0,4096}'|[^\s,}]{1,4096})")
_SECRET_KIND = re.compile(r"(?i)[\"']?kind[\"']?[ \t]*:[ \t]*[\"']?Secret\b")
_YAML_DATA = re.compile(r"(?m)^([ \t]*)(?:data|stringData):[ \t]*\n((?:\1[ \t]+[^\n]*(?:\n|$))+)")
_YAML_ITEM = re.compile(r"(?m)^([ \t]+[\w.-]{1,253}:[ \t]*)([^\n|>]{1,1048576})$")
_JSON_DATA = re.compile(r"(\"(?:data|stringData)\"\s*:\s*\{)([^{}]{0,1048576})(\})")
_JSON_ITEM = re.compile(r"(\"[\w.-]{1,253}\"\s*:\s*)(\"(?:[^\"\\]|\\.){0,1048576}\")")


def _k8s_secret(text: str) -> str:
    if _SECRET_KIND.search(text) is None:
        return text
    text = _YAML_DATA.sub(lambda m: m.group(1) + m.group(0)[len(m.group(1)):len(m.group(0)) - len(m.group(2))]
                          + _YAML_ITEM.sub(lambda i: i.group(1) + _replace_value(i.group(2)), m.group(2)), text)
    return _JSON_DATA.sub(lambda m: m.group(1) + _JSON_ITEM.sub(lambda i: i.group(1) + _keep_quotes(i.group(2))
                                                                if not _is_harmless(i.group(2)) else i.group(0),
                                                                m.group(2)) + m.group(3), text)


def _acl(text: str) -> str:
    return _ACL_LINE.sub(lambda m: _ACL_PASSWORD.sub(lambda p: p.group(1) + REDACTED, m.group(0)), text)


_TOKENS = re.compile(
    r"\b(?:(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,255}|gl(?:pat|dt|rt|ptt|cbt|soat|ffct)-[A-Za-z0-9_-]{20,64}"
    r"|xox[abprsce]-[A-Za-z0-9-]{10,255}|xapp-\d-[A-Za-z0-9-]{10,255}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,255}"
    r"|whsec_[A-Za-z0-9]{16,255}|npm_[A-Za-z0-9]{36}|sk-[A-Za-z0-9_-]{20,255}|AIza[0-9A-Za-z_-]{35}"
    r"|ya29\.[0-9A-Za-z_-]{20,2048}|hf_[A-Za-z]{30,40}|pypi-[A-Za-z0-9_-]{50,512}|hv[sbr]\.[A-Za-z0-9_-]{24,512}"
    r"|dckr_pat_[A-Za-z0-9_-]{20,64}|SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"
    r"|gl(?:sa|c)_[A-Za-z0-9_+/=-]{32,256}|dop_v1_[a-f0-9]{64}|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32})\b")
_CLOUD_KEY_ID = re.compile(r"\b(?:(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}|LTAI[A-Za-z0-9]{12,30}"
                           r"|AKID[A-Za-z0-9]{32})\b")
_CLOUD_TRIGGERS = ("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa", "ltai", "akid")
_TOKEN_TRIGGERS = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glrt-", "glptt-", "glcbt-",
                   "glsoat-", "glffct-", "glsa_", "glc_",
                   "xox", "xapp-", "sk_", "rk_", "whsec_", "npm_", "sk-", "aiza", "ya29.", "hf_", "pypi-", "hvs.",
                   "hvb.", "hvr.", "dckr_pat_", "sg.", "dop_v1_", "shpat_", "shpss_", "shpca_", "shppa_")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,4096}\.eyJ[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{0,4096}")
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b(?!:[\w~])")


def _emails(text: str) -> str:
    """Each ``local@domain.tld`` replaced; not ``user@host`` of a URL (after ``/`` or ``:``, except ``mailto:``),
    nor ``git@host:path``."""
    out, last, at = [], 0, text.find("@")
    while at >= 0:
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        domain = _EMAIL_DOMAIN.match(text, at + 1) if start < at else None
        before = text[start - 1] if start > 0 else ""
        if domain and start >= last and (before not in "\\:/>" or before == "" or text.endswith("mailto:", 0, start)) \
                and not before.isalnum() and before != "_":
            out.append(text[last:start] + "<redacted-email>")
            last = domain.end()
        at = text.find("@", max(at + 1, last))
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                   r"(?:/\d{1,2})?(?![\w]|\.\d)")
_IPV6_CANDIDATE = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?"
                             r"(?:%[\w.]+)?(?![\w:]|\.\w)")


def _ipv6_sub(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return text
    return "<redacted-ip>" if any(c.isalnum() for c in text) else text


def _all(*steps: Callable[[str], str]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        for step in steps:
            text = step(text)
        return text

    return apply


# (what must be in the lowered text for the rule to run: any of these, the rule). Order matters: URLs and headers
# before key=value (``password=`` inside a URL query is then still caught), tokens and e-mails last.
_Gate = tuple[str, ...] | Callable[[str], bool]
_RULES: tuple[tuple[_Gate, Callable[[str], str]], ...] = (
    (("ls0tls1crudjti",), lambda t: _PEM_B64.sub(_b64_pem_sub, t)),
    (("secret",), _k8s_secret),
    (("://",), lambda t: _URL.sub(_url_sub, t) if "@" in t else t),
    (("hooks.slack.com", "discord", "webhook.office.com", "api.telegram.org"), _sub(_WEBHOOK)),
    (("authorization",), _sub(_AUTH_HEADER)),
    (("cookie",), _sub(_COOKIE)),
    (("bearer",), _sub(_BEARER)),
    *(((trigger,) if isinstance(trigger, str) else trigger, _sub(p)) for trigger, p in zip(_CLI_TRIGGERS, _CLI)),
    (("curl",), _sub(_CURL_USER)),
    *(((trigger,) if isinstance(trigger, str) else trigger, _sub(p)) for trigger, p in zip(_REDIS_TRIGGERS, _REDIS)),
    (("user",), _acl),
    (("password", "identified"), _all(*(_sub(p) for p in _SQL))),
    (("name",), _sub(_ENV_ENTRY)),
    (_KEY_TRIGGERS + (".dockerconfigjson",), _key_values),
    (("loginmodule",), _sub(_JAAS_USER)),
    (lambda low: low.count(":") >= 4, lambda t: _PGPASS.sub(lambda m: m.group(1) + REDACTED if m.group(2) != REDACTED else m.group(0), t)),
    (("machine",), _sub(_NETRC)),
    (("eyj",), _fixed(_JWT, "<redacted-jwt>")),
    (_CLOUD_TRIGGERS, _fixed(_CLOUD_KEY_ID, "<redacted-aws-key>")),
    (_TOKEN_TRIGGERS, _fixed(_TOKENS, "<redacted-token>")),
    (("@",), _emails),
)


# One scan for every trigger word; a word found runs the rules of every trigger it contains ("password" those of
# "pass" too), so a rule runs when any of its triggers is in the text.
_TRIGGERS = sorted({t for gate, _ in _RULES if not callable(gate) for t in gate}, key=len, reverse=True)
_TRIGGER_RE = re.compile("|".join(map(re.escape, _TRIGGERS)))
_RULES_OF = {t: frozenset(i for i, (gate, _) in enumerate(_RULES) if not callable(gate) and any(u in t for u in gate))
             for t in _TRIGGERS}
_GATED_BY_FUNCTION = tuple(i for i, (gate, _) in enumerate(_RULES) if callable(gate))


def _redact(text: str, ips: bool) -> tuple[str, str | None]:
    open_end = None
    low = text.lower()
    if "-----begin" in low:
        text, open_end = _pem_blocks(text)
    run: set[int] = set()
    for word in set(_TRIGGER_RE.findall(low)):
        run |= _RULES_OF[word]
    run.update(i for i in _GATED_BY_FUNCTION if _RULES[i][0](low))  # type: ignore[operator]
    for i in sorted(run):
        text = _RULES[i][1](text)
    if ips:
        text = _IPV6_CANDIDATE.sub(_ipv6_sub, text)
        text = _IPV4.sub("<redacted-ip>", text)
    return text, open_end


def redact(text: str, *, ips: bool = False) -> str:
    """``text`` with secrets (and IP addresses when ``ips``) replaced, its shape kept."""
    if not text:
        return text
    return _redact(text, ips)[0]


def redact_lines(lines: Iterable[str], *, ips: bool = False) -> list[str]:
    """The lines of one batch or record, each redacted, and a private key begun in one line redacted up to its END
    line (at most ``PEM_LINES_MAX`` lines): a key logged over several lines goes whole."""
    out: list[str] = []
    open_end, held = None, 0
    for line in lines:
        if open_end is not None:
            end = line.find(open_end)
            if end < 0 and held < PEM_LINES_MAX:
                out.append(line if line == REDACTED else REDACTED)
                held += 1
                continue
            if end >= 0:
                head = line[:end]
                rest, open_end = _redact(line[end:], ips) if line[end:] else ("", None)
                out.append((REDACTED if head and head != REDACTED else head) + rest)
                held = 0
                continue
            open_end = None
        redacted, open_end = _redact(line, ips) if line else (line, None)
        held = 0
        out.append(redacted)
    return out


_HEADER_KEYS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_NAME_FIELDS = ("key", "name", "param", "parameter", "variable", "setting")
_VALUE_FIELDS = frozenset({"value", "old", "new", "current", "previous", "expected"})


def _secret_data(obj: dict) -> dict:
    """A Kubernetes Secret as a mapping: every value under data / stringData replaced."""
    return {k: ({dk: REDACTED for dk in v} if k in ("data", "stringData") and isinstance(v, dict) else v)
            for k, v in obj.items()}


def redact_value(obj: Any, *, ips: bool = False) -> Any:
    """A copy of nested dicts, lists and tuples with every string redacted (a list of strings as the lines of one
    record, ``redact_lines``) and the scalar value of every secret-named key replaced (booleans and None kept); in
    a dict naming a setting (``{"key": "requirepass", "old": ..., "new": ...}``, as config diffs do) whose name
    is secret, its values are replaced too; every value of a Kubernetes Secret's data."""
    if isinstance(obj, str):
        return redact(obj, ips=ips)
    if isinstance(obj, dict):
        if obj.get("kind") == "Secret":
            obj = _secret_data(obj)
        out = {}
        named = next((obj[k] for k in _NAME_FIELDS if isinstance(obj.get(k), str)), None)
        names_secret = named is not None and is_secret_key(named)
        for key, value in obj.items():
            secret = isinstance(key, str) and (is_secret_key(key) or (names_secret and key in _VALUE_FIELDS))
            if isinstance(key, str) and key.lower() in _HEADER_KEYS and isinstance(value, str):
                out[key] = redact(f"{key}: {value}", ips=ips).split(": ", 1)[1]
            elif secret and isinstance(value, (str, int, float)) and not isinstance(value, bool):
                out[key] = value if isinstance(value, str) and _is_harmless(value) else REDACTED
            else:
                out[key] = redact_value(value, ips=ips)
        return out
    if isinstance(obj, (list, tuple)):
        if obj and all(isinstance(item, str) for item in obj):
            return type(obj)(redact_lines(obj, ips=ips))
        return type(obj)(redact_value(item, ips=ips) for item in obj)
    return obj
