"""``kubestack redact [FILE]``: a text (a file, or standard input) printed as the product redacts it before it
leaves (an LLM prompt, a notification, a viewer's API response, a dead letter), for people who share logs and
configs. The whole text is one record: a private key spread over lines goes whole."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def redact(
    file: Annotated[Path | None, typer.Argument(help="Text to redact; standard input without it",
                                                exists=True, dir_okay=False, readable=True)] = None,
    ips: Annotated[bool, typer.Option("--ips", help="Also replace IP addresses (as llm.redact_ips does)")] = False,
) -> None:
    """Print a text with its secrets (passwords, tokens, keys, connection strings, e-mails) replaced."""
    from kubestack.redaction import redact as redact_text

    text = file.read_text(encoding="utf-8", errors="replace") if file is not None else sys.stdin.read()
    sys.stdout.write(redact_text(text, ips=ips))
