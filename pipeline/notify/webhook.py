"""Generic webhooks: the event as JSON in an envelope, signed so the receiver knows it came from us, unchanged.

Body: ``{"type": "<kind>.<status>", "subject_id": ..., "severity": ..., "title": ..., "event": {...}}`` with
types ``incident.open|updated|resolved``, ``rca.reported``, ``approval.pending``, ``result.<status>``,
``prediction.active|updated|withdrawn`` and ``channel.down|restored``. A root-cause report with similar past
incidents adds ``"seen_before": ["Seen before: <id> ..., fixed by redis.config_set (verified)", ...]``.

Headers: ``X-KubeStack-Timestamp: <unix seconds>`` and ``X-KubeStack-Signature: v1=<hex>``, the HMAC-SHA256 of
``"<timestamp>.<body>"`` with the webhook's secret. Receivers check it with ``verify_webhook_signature``, which
also refuses a timestamp more than ``tolerance_s`` away (a replayed request) and accepts several ``v1=``
values separated by commas (a secret being rotated).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from typing import Any

from kubestack.contract.events import RcaReport
from kubestack.pipeline.memory import seen_before
from kubestack.pipeline.notify.notice import ChannelAlert, Notice

SIGNATURE_HEADER = "X-KubeStack-Signature"
TIMESTAMP_HEADER = "X-KubeStack-Timestamp"
TOLERANCE_S = 300.0


def webhook_envelope(notice: Notice) -> dict[str, Any]:
    subject = notice.subject
    if isinstance(subject, ChannelAlert):
        event = {k: str(v) if k == "since" else v for k, v in dataclasses.asdict(subject).items()}
    else:
        event = subject.model_dump(mode="json")
    envelope = {"type": f"{notice.kind}.{notice.status}", "subject_id": notice.subject_id,
                "severity": notice.severity.value, "title": notice.title, "event": event}
    if isinstance(subject, RcaReport) and subject.similar:  # similar past incidents, worded (memory.py)
        envelope["seen_before"] = seen_before(subject.similar)
    return envelope


def encode_body(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def _digest(secret: str | bytes, timestamp: str, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def sign_headers(secret: str | bytes, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: f"v1={_digest(secret, stamp, body)}",
            "Content-Type": "application/json"}


def verify_webhook_signature(secret: str | bytes, body: bytes, timestamp: str | None, signature: str | None, *,
                             now: float | None = None, tolerance_s: float = TOLERANCE_S) -> bool:
    """Whether ``signature`` (the X-KubeStack-Signature header) signs ``body`` at ``timestamp``
    (X-KubeStack-Timestamp) with ``secret``, and the timestamp is within ``tolerance_s`` of ``now``."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    candidates = [part.strip()[3:] for part in signature.split(",") if part.strip().startswith("v1=")]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
