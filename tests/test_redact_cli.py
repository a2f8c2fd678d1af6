"""``kubestack redact``: the planted-secret and harmless corpora through the real console script, from outside."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.redaction.corpus import HARMLESS, SECRETS, Case, load
from tests.cli import KUBESTACK, cli_env, run


def _joined(cases: list[Case]) -> str:
    return "".join(f"=== case {i} ===\n{case.text}\n" for i, case in enumerate(cases))


def _split(output: str, count: int) -> list[str]:
    parts = output.split("=== case ")[1:]
    assert len(parts) == count
    return [part.split(" ===\n", 1)[1].removesuffix("\n") for part in parts]


def _stdin(text: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KUBESTACK, "redact", *args], input=text, capture_output=True, text=True, env=cli_env(),
                          timeout=120)


def test_every_planted_secret_is_caught_through_the_command(tmp_path: Path) -> None:
    cases = load(SECRETS)
    open_keys = [c for c in cases if "-----BEGIN" in c.text and "-----END" not in c.text]  # would hold what follows
    whole = [c for c in cases if c not in open_keys]
    path = tmp_path / "planted.txt"
    path.write_text(_joined(whole), encoding="utf-8")
    result = run("redact", str(path))
    assert result.returncode == 0, result.stderr
    outputs = _split(result.stdout, len(whole)) + [_stdin(c.text).stdout for c in open_keys]
    missed = [(c.name, s) for c, out in zip(whole + open_keys, outputs) for s in c.secrets if s in out]
    lost = [(c.name, k) for c, out in zip(whole + open_keys, outputs) for k in c.kept if k not in out]
    assert len(whole + open_keys) >= 150 and missed == [] and lost == []


def test_harmless_texts_come_back_unchanged_from_standard_input() -> None:
    cases = load(HARMLESS)
    text = _joined(cases)
    result = _stdin(text)
    assert result.returncode == 0, result.stderr
    assert result.stdout == text


def test_ips_only_when_asked_and_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    line = "replica 10.0.0.7:6379 auth failed, password=pw-9\n"
    assert _stdin(line).stdout == "replica 10.0.0.7:6379 auth failed, password=<redacted>\n"
    assert _stdin(line, "--ips").stdout == "replica <redacted-ip>:6379 auth failed, password=<redacted>\n"
    result = run("redact", str(tmp_path / "missing.log"))
    assert result.returncode == 2 and "does not exist" in result.stderr
