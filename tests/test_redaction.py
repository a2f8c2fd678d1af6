"""Redaction on a corpus of real-looking log lines, configs and evidence dicts, near misses included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubestack.redaction import is_secret_key, redact, redact_value

CORPUS = [json.loads(line) for line in
          (Path(__file__).parent / "data" / "redaction" / "corpus.jsonl").read_text().splitlines() if line.strip()]


def _apply(case: dict) -> object:
    ips = case.get("ips", False)
    if isinstance(case["input"], str):
        return redact(case["input"], ips=ips)
    return redact_value(case["input"], ips=ips)


def test_corpus_is_broad() -> None:
    kinds = [case["kind"] for case in CORPUS]
    assert len(CORPUS) >= 60
    assert kinds.count("keep") >= 15 and kinds.count("ips") >= 5


@pytest.mark.parametrize("case", CORPUS, ids=[f"{i}-{c['kind']}" for i, c in enumerate(CORPUS)])
def test_corpus(case: dict) -> None:
    assert _apply(case) == case["expected"]


@pytest.mark.parametrize("case", CORPUS, ids=[f"{i}-{c['kind']}" for i, c in enumerate(CORPUS)])
def test_idempotent(case: dict) -> None:
    once = _apply(case)
    again = redact(once, ips=case.get("ips", False)) if isinstance(once, str) else redact_value(
        once, ips=case.get("ips", False))
    assert again == once


def test_ips_left_alone_unless_asked() -> None:
    line = "replica 10.0.0.7:6379 and [2001:db8::7]:6380"
    assert redact(line) == line
    assert redact(line, ips=True) == "replica <redacted-ip>:6379 and [<redacted-ip>]:6380"


def test_secret_key_names() -> None:
    assert all(is_secret_key(k) for k in ("password", "DB_PASSWORD", "apiKey", "x-auth", "requirepass", "pass"))
    assert not any(is_secret_key(k) for k in ("password_authentication_failed", "max_connections", "bypass",
                                               "tokens_used", "secretName", "author"))


def test_redact_value_keeps_types_and_input() -> None:
    evidence = {"password": "pw", "waits": ({"blocking_id": 7},), "ratio": 0.93, "ok": True}
    out = redact_value(evidence)
    assert out == {"password": "<redacted>", "waits": ({"blocking_id": 7},), "ratio": 0.93, "ok": True}
    assert evidence["password"] == "pw"
