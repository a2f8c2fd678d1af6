"""Delivering one request to one channel: a timeout per attempt, retries with exponential backoff and jitter for
what may pass (timeouts, connection errors, 5xx), the server's ``Retry-After`` on a 429 (up to
``retry.retry_after_max_s``; longer is given up on), and no retry for any other 4xx (the response body is the
error). The sleep is injectable so tests run the real loop without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from kubestack.notifysettings import RetrySettings
from kubestack.retryafter import retry_after_s
from kubestack.pipeline.notify.messages import Outgoing
from kubestack.pipeline.notify.outgoing import DirectOutgoing, Refusal, VendorOutgoing

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
ERROR_BODY_MAX = 500


@dataclass(frozen=True)
class Delivery:
    channel: str
    delivered: bool
    attempts: int
    error: str | None = None
    status: int | None = None


def backoff_s(attempt: int, retry: RetrySettings, rng: random.Random) -> float:
    """Delay after failed attempt ``attempt`` (1-based): base * 2^(attempt-1), capped, times a jitter in [0.5, 1]."""
    return min(retry.backoff_max_s, retry.backoff_base_s * 2 ** (attempt - 1)) * (0.5 + rng.random() / 2)


@dataclass(frozen=True)
class _Attempt:
    status: int | None
    error: str | None
    retriable: bool = True
    retry_after_s: float | None = None


async def _attempt(client: httpx.AsyncClient, out: Outgoing, retry: RetrySettings) -> _Attempt:
    """One POST; ``error`` None means delivered."""
    if isinstance(out, DirectOutgoing):  # e-mail: the channel sends it itself
        return _refused(None, await out.transmit(retry.timeout_s))
    body = out.body()
    url = out.address() if isinstance(out, VendorOutgoing) else out.url.get_secret_value()
    try:
        response = await client.post(url, content=body, headers=out.headers(body), timeout=retry.timeout_s)
    except httpx.TimeoutException:
        return _Attempt(None, f"no answer within {retry.timeout_s:g}s")
    except httpx.HTTPError as exc:
        return _Attempt(None, f"{type(exc).__name__}: {str(exc).replace(url, '<url>') or 'connection failed'}")
    status = response.status_code
    if 200 <= status < 300:
        return _refused(status, out.refusal(status, response.content) if isinstance(out, VendorOutgoing) else None)
    error = f"HTTP {status}: {response.text[:ERROR_BODY_MAX]}".rstrip(": ")
    if status == 429:
        return _Attempt(status, error, retry_after_s=retry_after_s(response.headers.get("retry-after")))
    return _Attempt(status, error, retriable=status >= 500)


def _refused(status: int | None, refusal: Refusal | None) -> _Attempt:
    if refusal is None:
        return _Attempt(status, None)
    return _Attempt(status, refusal.error, refusal.retriable, refusal.retry_after_s)


async def deliver(client: httpx.AsyncClient, out: Outgoing, retry: RetrySettings, *, max_attempts: int | None = None,
                  sleep: Sleep = asyncio.sleep, rng: random.Random | None = None) -> Delivery:
    """POST ``out`` until it is accepted or the attempts run out."""
    rng = rng or random.Random()
    limit = max_attempts or retry.max_attempts
    result = _Attempt(None, None)
    for attempt in range(1, limit + 1):
        result = await _attempt(client, out, retry)
        if result.error is None:
            return Delivery(out.channel, True, attempt, None, result.status)
        if not result.retriable:
            log.warning("%s refused a notice (not retried): %s", out.channel, result.error)
            return Delivery(out.channel, False, attempt, result.error, result.status)
        wait = result.retry_after_s
        if wait is not None and wait > retry.retry_after_max_s:
            log.warning("%s rate-limited us for %gs: giving up this notice", out.channel, wait)
            return Delivery(out.channel, False, attempt, f"{result.error} (Retry-After {wait:g}s exceeds "
                            f"retry_after_max_s {retry.retry_after_max_s:g}s)", result.status)
        if attempt < limit:
            delay = wait if wait is not None else backoff_s(attempt, retry, rng)
            log.info("%s attempt %d/%d failed (%s); retrying in %.2fs", out.channel, attempt, limit, result.error,
                     delay)
            await sleep(delay)
    log.warning("%s: notice not delivered after %d attempts: %s", out.channel, limit, result.error)
    return Delivery(out.channel, False, limit, result.error, result.status)
