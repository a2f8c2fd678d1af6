"""Pure parsers of what nginx says: ``stub_status``, access log lines (the ``kubestack`` format, else
``combined``), error log lines, and the configuration as ``nginx -T`` prints it (every file, includes resolved)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from kubestack.redaction import redact

_STUB = re.compile(r"Active connections:\s*(?P<active>\d+)\s+server accepts handled requests\s+(?P<accepts>\d+)\s+"
                   r"(?P<handled>\d+)\s+(?P<requests>\d+)\s+Reading:\s*(?P<reading>\d+)\s+Writing:\s*(?P<writing>\d+)"
                   r"\s+Waiting:\s*(?P<waiting>\d+)", re.S)


def parse_stub_status(text: str) -> dict[str, int]:
    match = _STUB.search(text)
    if match is None:
        raise ValueError(f"not a stub_status page: {text[:120]!r}")
    return {k: int(v) for k, v in match.groupdict().items()}


@dataclass(frozen=True)
class Attempt:
    """One try of a request at an upstream server (nginx tries the next one after an error)."""

    address: str
    status: int | None
    response_s: float | None
    connected: bool


@dataclass(frozen=True)
class Access:
    ts: datetime | None
    client: str
    request: str
    status: int
    request_s: float | None
    attempts: tuple[Attempt, ...] = ()


_KUBESTACK = re.compile(r'^(?P<ts>\S+) (?P<client>\S+) "(?P<request>[^"]*)" (?P<status>\d{3}) \S+ (?P<rt>\S+) '
                        r'"(?P<ua>[^"]*)" "(?P<us>[^"]*)" "(?P<urt>[^"]*)" "(?P<uct>[^"]*)"')
_COMBINED = re.compile(r'^(?P<client>\S+) \S+ \S+ \[(?P<ts>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) ')


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _values(text: str) -> list[str]:
    """``"a:1, b:2 : c:3"`` (tries, and ``:`` between upstream groups after an internal redirect) → the values."""
    return [v.strip() for v in re.split(r"[,:](?=\s)", text) if v.strip()] if text not in ("", "-") else []


def parse_access_line(line: str) -> Access | None:
    if match := _KUBESTACK.match(line):
        addresses, statuses = _values(match["ua"]), _values(match["us"])
        times, connects = _values(match["urt"]), _values(match["uct"])
        attempts = tuple(
            Attempt(address=address, status=_int(statuses[i]) if i < len(statuses) else None,
                    response_s=_float(times[i]) if i < len(times) else None,
                    connected=i < len(connects) and connects[i] != "-")
            for i, address in enumerate(addresses))
        return Access(ts=_timestamp(match["ts"], "%Y-%m-%dT%H:%M:%S%z"), client=match["client"],
                      request=match["request"], status=int(match["status"]), request_s=_float(match["rt"]),
                      attempts=attempts)
    if match := _COMBINED.match(line):
        return Access(ts=_timestamp(match["ts"], "%d/%b/%Y:%H:%M:%S %z"), client=match["client"],
                      request=match["request"], status=int(match["status"]), request_s=None)
    return None


def _timestamp(text: str, layout: str) -> datetime | None:
    try:
        return datetime.strptime(text, layout)
    except ValueError:
        return None


@dataclass(frozen=True)
class ErrorLine:
    level: str
    message: str
    upstream: str | None
    """The upstream URL the line names (``http://10.0.0.5:8080/path``), when it names one."""

    @property
    def upstream_address(self) -> str | None:
        if not self.upstream:
            return None
        return re.sub(r"^[a-z]+://", "", self.upstream).split("/", 1)[0]


_ERROR = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(?P<level>\w+)\] \d+#\d+: (?:\*\d+ )?(?P<message>.*)$")
_UPSTREAM = re.compile(r'upstream: "(?P<url>[^"]+)"')


def parse_error_line(line: str) -> ErrorLine | None:
    match = _ERROR.match(line)
    if match is None:
        return None
    upstream = _UPSTREAM.search(line)
    return ErrorLine(level=match["level"], message=match["message"], upstream=upstream["url"] if upstream else None)


UPSTREAM_FAILURES = ("connect() failed", "upstream timed out", "no live upstreams",
                     "upstream prematurely closed connection", "recv() failed")
"""Error log messages of an upstream that cannot be reached or dropped the request."""


def upstream_failure(line: ErrorLine) -> str | None:
    """The kind of upstream failure the line reports (``connect() failed (111: Connection refused)``), or None."""
    for marker in UPSTREAM_FAILURES:
        if marker in line.message:
            return line.message.split(" while ", 1)[0].split(", client:", 1)[0]
    return None


# --- configuration ---------------------------------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None
    file: str = ""


_TOKEN = re.compile(r"""\s*(?:(#[^\n]*)|("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')|([{};])|([^\s{};"'#]+))""")
_FILE_MARK = re.compile(r"^# configuration file (?P<path>.+):\s*$", re.M)


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        comment, quoted, punct, word = match.groups()
        if comment is not None:
            continue
        tokens.append(quoted[1:-1] if quoted else punct or word)
    return tokens


def parse_config_text(text: str, file: str = "") -> list[Directive]:
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    for token in _tokens(text):
        if token == ";":
            if words:
                stack[-1].append(Directive(name=words[0], args=words[1:], file=file))
            words = []
        elif token == "{":
            block = Directive(name=words[0] if words else "", args=words[1:], block=[], file=file)
            stack[-1].append(block)
            stack.append(block.block)
            words = []
        elif token == "}":
            if len(stack) > 1:
                stack.pop()
            words = []
        else:
            words.append(token)
    return stack[0]


def split_dump(dump: str) -> dict[str, str]:
    """``nginx -T`` output → file path → its text."""
    marks = list(_FILE_MARK.finditer(dump))
    return {m["path"]: dump[m.end():marks[i + 1].start() if i + 1 < len(marks) else len(dump)]
            for i, m in enumerate(marks)}


def parse_dump(dump: str) -> list[Directive]:
    """The main file's directives, each ``include`` replaced by what the files it names hold."""
    files = split_dump(dump)
    if not files:
        raise ValueError(f"not an 'nginx -T' dump: {dump[:120]!r}")
    parsed = {path: parse_config_text(text, path) for path, text in files.items()}

    def expand(directives: list[Directive], depth: int = 0) -> list[Directive]:
        out = []
        for d in directives:
            if d.name == "include" and d.args and depth < 10:
                for path, included in parsed.items():
                    if _matches(path, d.args[0]):
                        out += expand(included, depth + 1)
                continue
            if d.block is not None:
                d.block = expand(d.block, depth)
            out.append(d)
        return out

    main = next(iter(parsed))
    return expand(parsed[main])


def _matches(path: str, pattern: str) -> bool:
    from fnmatch import fnmatch

    return fnmatch(path, pattern) or path.endswith("/" + pattern.lstrip("./")) or fnmatch(path, f"*/{pattern}")


def find(directives: list[Directive], *names: str) -> list[Directive]:
    """Directives reached by the path of block names (``find(tree, "http", "upstream")``)."""
    level = directives
    for i, name in enumerate(names):
        matched = [d for d in level if d.name == name]
        if i == len(names) - 1:
            return matched
        level = [child for d in matched for child in (d.block or [])]
    return []


@dataclass(frozen=True)
class UpstreamServer:
    upstream: str
    address: str
    flags: tuple[str, ...]
    file: str

    @property
    def down(self) -> bool:
        return "down" in self.flags

    @property
    def backup(self) -> bool:
        return "backup" in self.flags


def upstream_servers(tree: list[Directive]) -> list[UpstreamServer]:
    return [UpstreamServer(upstream=" ".join(u.args), address=s.args[0], flags=tuple(s.args[1:]), file=s.file)
            for u in find(tree, "http", "upstream") for s in (u.block or []) if s.name == "server" and s.args]


def worker_capacity(tree: list[Directive], cpus: int) -> tuple[int, int]:
    """(worker_processes, worker_connections) as configured (``auto``: ``cpus``; nginx's defaults 1 and 512)."""
    processes = find(tree, "worker_processes")
    connections = find(tree, "events", "worker_connections")
    workers = processes[-1].args[0] if processes and processes[-1].args else "1"
    count = cpus if workers == "auto" else int(workers) if workers.isdigit() else 1
    per_worker = int(connections[-1].args[0]) if connections and connections[-1].args[0].isdigit() else 512
    return count, per_worker


def _label(d: Directive) -> str:
    if d.name == "server" and d.block is not None:
        listens = [" ".join(c.args) for c in d.block if c.name == "listen"]
        names = [" ".join(c.args) for c in d.block if c.name == "server_name"]
        return "server " + ",".join(listens or ["80"]) + (f" {names[0]}" if names else "")
    return " ".join([d.name, *d.args])


_SECRET = re.compile(r"(password|passwd|secret|token|_key\b|authorization|cookie|api.?key)", re.I)
_HEADERS = ("proxy_set_header", "add_header", "fastcgi_param", "uwsgi_param", "grpc_set_header", "set")


def flatten(tree: list[Directive], path: str = "") -> dict[str, str]:
    """``{"http/upstream app | server 10.0.0.5:8080": "weight=2", "events | worker_connections": "1024"}``: each
    directive under the path of its blocks; a directive repeated in one block joined by ``; ``; an upstream's
    servers and a server's ``listen`` keyed by their address. Values of secret-looking directives redacted."""
    config: dict[str, str] = {}
    for d in tree:
        if d.block is not None:
            config |= flatten(d.block, f"{path}/{_label(d)}" if path else _label(d))
            continue
        keyed = d.name in ("server", "listen") and d.args
        where = path or "main"
        key = f"{where} | {d.name} {d.args[0]}" if keyed else f"{where} | {d.name}"
        value = " ".join(d.args[1:] if keyed else d.args) or "on"
        if _SECRET.search(d.name) or (d.name in _HEADERS and d.args and _SECRET.search(d.args[0])):
            value = f"{d.args[0]} <redacted>" if d.name in _HEADERS else "<redacted>"
        key, value = redact(key), redact(value)
        config[key] = f"{config[key]}; {value}" if key in config else value
    return config
