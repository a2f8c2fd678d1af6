"""A scripted LLM endpoint: a real local HTTP server that answers chat requests from a script (the OpenAI or
Ollama protocol), or forwards them to a real server while recording what was sent. For what a real model cannot
produce on demand: chosen answers, 429 with Retry-After, slow answers, malformed JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from tests.services.process import free_port


@dataclass
class Recorded:
    path: str
    body: str
    status: int = 0
    answer: str = ""


@dataclass
class Scripted:
    """A real local HTTP server. As a proxy it forwards to ``upstream``; otherwise it answers from ``replies``
    in order (the last one repeats): ``(status, headers, body, delay_s)``."""

    url: str = ""
    upstream: str | None = None
    replies: list[tuple[int, dict[str, str], str, float]] = field(default_factory=list)
    received: list[Recorded] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        record = Recorded(path=request.path, body=await request.text())
        self.received.append(record)
        if self.upstream is not None:
            async with httpx.AsyncClient(timeout=300) as client:
                answer = await client.post(f"{self.upstream}{request.path.removeprefix('/v1')}",
                                           content=record.body, headers={"content-type": "application/json"})
            record.status, record.answer = answer.status_code, answer.text
            return web.Response(status=answer.status_code, body=answer.content, content_type="application/json")
        status, headers, body, delay = self.replies[min(len(self.received) - 1, len(self.replies) - 1)]
        await asyncio.sleep(delay)
        record.status = status
        return web.Response(status=status, headers=headers, text=body, content_type="application/json")


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    async with scripted_server() as server:
        yield server


@contextlib.asynccontextmanager
async def scripted_server() -> AsyncIterator[Scripted]:
    """A ``Scripted`` server until the block ends (several at once, for requests made side by side)."""
    server = Scripted()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def openai_reply(content: str) -> str:
    return json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": "scripted",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
