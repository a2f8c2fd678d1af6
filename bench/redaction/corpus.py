"""The redaction corpora (``tests/data/redaction/secrets.txt`` and ``harmless.txt``): read by the tests and by
the bench. A case is a header line ``=== <class>`` (``=== <class> lines``: the text is the lines of one log batch),
the text, then ``!! <secret>`` lines (must be gone after redaction) and ``++ <text>`` lines (must still be there).
What precedes the first header is a description."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "redaction"
SECRETS = DATA / "secrets.txt"
HARMLESS = DATA / "harmless.txt"


@dataclass
class Case:
    kind: str
    text: str
    lines_mode: bool = False
    secrets: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    line: int = 0

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.line}"


def load(path: Path) -> list[Case]:
    cases: list[Case] = []
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("=== "):
            _close(cases, body)
            kind, _, mode = line[4:].strip().partition(" ")
            cases.append(Case(kind=kind, text="", lines_mode=mode == "lines", line=number))
            body = []
        elif cases and line.startswith("!! "):
            cases[-1].secrets.append(line[3:])
        elif cases and line.startswith("++ "):
            cases[-1].kept.append(line[3:])
        elif cases and not cases[-1].secrets and not cases[-1].kept:
            body.append(line)
    _close(cases, body)
    return cases


def _close(cases: list[Case], body: list[str]) -> None:
    if cases and not cases[-1].text:
        while body and not body[-1].strip():
            body.pop()
        cases[-1].text = "\n".join(body)
