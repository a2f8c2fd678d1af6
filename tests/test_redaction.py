"""Redaction on corpora of real-looking log lines, configs and evidence dicts: the expected outputs of
``corpus.jsonl``, every planted secret of ``secrets.txt`` caught, every ``harmless.txt`` text left as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.redaction.corpus import HARMLESS, SECRETS, Case, load
from kubestack.redaction import PEM_LINES_MAX, is_secret_key, redact, redact_lines, redact_value

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


# --- the planted-secret and harmless corpora (tests/data/redaction/*.txt, bench/redaction/corpus.py) ------------

PLANTED = load(SECRETS)
HARMLESS_TEXTS = load(HARMLESS)


def _redacted(case: Case) -> str:
    return "\n".join(redact_lines(case.text.split("\n"))) if case.lines_mode else redact(case.text)


def test_planted_corpus_is_broad_and_well_formed() -> None:
    assert len(PLANTED) >= 150 and len(HARMLESS_TEXTS) >= 100
    kinds = {case.kind for case in PLANTED}
    assert {"key-value", "config-files", "connection-strings", "url-special", "cli-flags", "redis-commands", "sql",
            "http-auth", "tokens", "cloud", "kubernetes", "private-keys", "chinese", "pii"} <= kinds
    for case in PLANTED:
        assert case.secrets, case.name
        assert all(secret in case.text for secret in case.secrets + case.kept), case.name


@pytest.mark.parametrize("case", PLANTED, ids=[c.name for c in PLANTED])
def test_every_planted_secret_is_caught_and_the_rest_kept(case: Case) -> None:
    out = _redacted(case)
    assert [s for s in case.secrets if s in out] == []
    assert [k for k in case.kept if k not in out] == []
    assert "<redacted" in out


@pytest.mark.parametrize("case", PLANTED, ids=[c.name for c in PLANTED])
def test_planted_redaction_is_idempotent(case: Case) -> None:
    once = _redacted(case)
    again = "\n".join(redact_lines(once.split("\n"))) if case.lines_mode else redact(once)
    assert again == once


@pytest.mark.parametrize("case", HARMLESS_TEXTS, ids=[c.name for c in HARMLESS_TEXTS])
def test_harmless_text_is_left_as_it_is(case: Case) -> None:
    assert _redacted(case) == case.text


def test_a_key_logged_over_several_lines_goes_whole_and_the_next_lines_stay() -> None:
    lines = ["10:02:11 app: key -----BEGIN RSA PRIVATE KEY-----", "10:02:11 app: MIIEowIBAAKCAQEA",
             "10:02:11 app: Xy9z==", "10:02:11 app: -----END RSA PRIVATE KEY----- loaded", "10:02:12 app: ready"]
    assert redact_lines(lines) == ["10:02:11 app: key -----BEGIN RSA PRIVATE KEY-----<redacted>", "<redacted>",
                                   "<redacted>", "<redacted>-----END RSA PRIVATE KEY----- loaded", "10:02:12 app: ready"]
    assert redact_lines(lines[:2]) == ["10:02:11 app: key -----BEGIN RSA PRIVATE KEY-----<redacted>", "<redacted>"]


def test_a_key_whose_end_never_comes_holds_at_most_pem_lines_max_lines() -> None:
    lines = ["-----BEGIN PRIVATE KEY-----"] + ["MIIE"] * PEM_LINES_MAX + ["next record password=pw1", "plain"]
    out = redact_lines(lines)
    assert out[1:PEM_LINES_MAX + 1] == ["<redacted>"] * PEM_LINES_MAX
    assert out[-2:] == ["next record password=<redacted>", "plain"]


def test_evidence_lists_of_lines_are_one_record() -> None:
    evidence = {"lines": ["-----BEGIN EC PRIVATE KEY-----", "MHcCAQEEIIrY", "-----END EC PRIVATE KEY-----"],
                "secret": {"kind": "Secret", "data": {"tls.key": "S0VZ", "note": "x"}, "metadata": {"name": "tls"}}}
    out = redact_value(evidence)
    assert out["lines"][1] == "<redacted>"
    assert out["secret"]["data"] == {"tls.key": "<redacted>", "note": "<redacted>"}
    assert out["secret"]["metadata"] == {"name": "tls"}
