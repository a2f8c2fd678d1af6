"""Four-letter words over TCP (asyncio): one short connection per word, the reply read to its end. Connection
failures become ``TargetError`` subclasses; a word the server does not allow becomes ``CommandFailedError``."""

from __future__ import annotations

import asyncio

from kubestack.errors import CommandFailedError, TargetTimeoutError, TargetUnreachableError

WORDS = frozenset({"ruok", "srvr", "mntr", "conf", "cons", "dump", "isro", "envi", "wchs"})


class FourLetterClient:
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def word(self, word: str) -> str:
        if word not in WORDS:
            raise ValueError(f"{word!r} is not a four-letter word this plugin sends; known: {', '.join(sorted(WORDS))}")
        try:
            return await asyncio.wait_for(self._ask(word), self.timeout_s)
        except TimeoutError:
            raise TargetTimeoutError(f"ZooKeeper at {self.address} gave no answer to {word} in "
                                     f"{self.timeout_s:g}s") from None
        except OSError as exc:
            raise TargetUnreachableError(f"ZooKeeper at {self.address} cannot be reached: {exc}") from exc

    async def _ask(self, word: str) -> str:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(word.encode())
            await writer.drain()
            text = (await reader.read()).decode(errors="replace")
        finally:
            writer.close()
        if "is not executed because it is not in the whitelist" in text:
            raise CommandFailedError([word, self.address], 1, f"{text.strip()}: add it to 4lw.commands.whitelist")
        return text
