"""What the Sentinel plugin asks of one sentinel, over a direct redis.asyncio connection (no retries: the agent
has its own rhythm); replies are kept raw (flat lists, INFO text) and read by ``parse``."""

from __future__ import annotations

from typing import Any, Protocol

import redis.exceptions as rexc
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from kubestack.errors import (
    CommandFailedError,
    TargetAuthError,
    TargetTimeoutError,
    TargetUnreachableError,
)
from kubestack.plugins.sentinel.config import SentinelConfig

_AUTH_MARKERS = ("NOAUTH", "WRONGPASS", "AUTH failed", "invalid password", "NOPERM")


class SentinelClient(Protocol):
    async def call(self, *args: str) -> Any:
        """One command's raw reply (``SENTINEL MASTERS`` as a list of flat lists, ``INFO`` as text); an error reply
        raises ``CommandFailedError``."""
        ...

    async def close(self) -> None: ...


def _raw(response: Any, **_: Any) -> Any:
    return response


class DirectSentinelClient:
    def __init__(self, config: SentinelConfig) -> None:
        self._config = config
        self._redis: Redis | None = None

    def _connection(self) -> Redis:
        if self._redis is None:
            c = self._config
            password = c.password.resolve() if c.password else None
            self._redis = Redis(host=c.host, port=c.port, username=c.user, password=password, decode_responses=True,
                                protocol=2, socket_timeout=c.timeout_s, socket_connect_timeout=c.timeout_s,
                                retry=Retry(NoBackoff(), 0))
            for command in ("INFO", "SENTINEL"):
                self._redis.set_response_callback(command, _raw)
        return self._redis

    async def call(self, *args: str) -> Any:
        where = self._config.address
        try:
            return await self._connection().execute_command(*args)
        except rexc.AuthenticationError as exc:
            raise TargetAuthError(f"Sentinel at {where} refused the credentials: {exc}") from exc
        except rexc.TimeoutError as exc:
            raise TargetTimeoutError(f"Sentinel at {where} gave no answer in {self._config.timeout_s:g}s") from exc
        except rexc.ConnectionError as exc:
            raise TargetUnreachableError(f"Sentinel at {where} cannot be reached: {exc}") from exc
        except rexc.InvalidResponse as exc:
            raise TargetUnreachableError(f"{where} does not speak the Redis protocol: {exc}") from exc
        except rexc.ResponseError as exc:
            if str(exc).startswith(_AUTH_MARKERS):
                raise TargetAuthError(f"Sentinel at {where} refused the credentials: {exc}") from exc
            raise CommandFailedError(["sentinel", *args], 1, str(exc)) from exc

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
