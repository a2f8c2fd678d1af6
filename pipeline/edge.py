"""Decoding at the edge of every stage: valid bytes become contract events, the rest dead letters."""

from __future__ import annotations

import socket

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import DeadLetter
from kubestack.errors import EventDecodeError
from kubestack.redaction import redact

_MAX_PAYLOAD = 64 * 1024
_REDACTED_SPAN = 4 * _MAX_PAYLOAD
"""Redacted before the cut, so a secret across the cut still looks like one (a URL without its host would not)."""


def dead_letter(
    *,
    topic: str,
    raw: bytes | None,
    key: bytes | None,
    partition: int | None,
    offset: int | None,
    error: Exception,
    stage: str,
    tenant: str = "default",
) -> DeadLetter:
    """The dead-letter record for a message ``stage`` could not process, keeping its bytes and the reason, both
    redacted: the topic keeps letters for 14 days, and a payload that did not decode may hold anything."""
    payload = redact((raw or b"")[:_REDACTED_SPAN].decode("utf-8", errors="backslashreplace"))[:_MAX_PAYLOAD]
    reason = redact(error.reason if isinstance(error, EventDecodeError) else f"{type(error).__name__}: {error}")
    host = socket.gethostname()
    return DeadLetter(
        source=Source(agent=f"worker/{stage}", host=host),
        resource=ResourceRef(kind="topic", name=topic, host=host),
        tenant=tenant,
        original_topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", errors="backslashreplace") if key is not None else None,
        payload=payload,
        reason=reason,
        error_type=type(error).__name__,
        stage=stage,
    )

