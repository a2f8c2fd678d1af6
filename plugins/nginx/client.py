"""What the Nginx plugin asks of a host: the stub_status page (HTTP, or ``curl`` through a runner), the nginx binary
(``-T``, ``-t``, ``-s reload``) and files (the logs read from an offset, a configuration file read and written), all
through a ``CommandRunner`` (this host by default, or over SSH), the logs read directly when local."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

from kubestack.errors import CommandFailedError, TargetAuthError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.base import CommandRunner, LocalRunner
from kubestack.plugins.nginx.config import NginxConfig


class NginxClient:
    def __init__(self, config: NginxConfig, runner: CommandRunner | None = None) -> None:
        self._config = config
        self._remote = runner is not None
        self.runner: CommandRunner = runner or LocalRunner()

    # --- stub_status -----------------------------------------------------------------------------

    async def status(self) -> str:
        url, timeout = self._config.status_url, self._config.timeout_s
        if self._remote:
            try:
                return await self.runner.run([self._config.curl, "-sS", "-f", "-m", f"{timeout:g}", url],
                                             timeout=timeout + 1)
            except CommandFailedError as exc:
                raise TargetUnreachableError(f"nginx stub_status at {url}: {exc.stderr.strip()}") from exc
        return await asyncio.to_thread(_http_get, url, timeout)

    # --- the binary ------------------------------------------------------------------------------

    async def nginx(self, *args: str) -> str:
        """``nginx <args>``: stdout; a non-zero exit raises ``CommandFailedError`` with nginx's stderr."""
        return await self.runner.run(self._config.nginx_argv(*args), timeout=max(self._config.timeout_s, 10))

    async def dump(self) -> str:
        return await self.nginx("-T", "-q")

    async def cpus(self) -> int:
        try:
            return int((await self.runner.run(["nproc"], timeout=self._config.timeout_s)).strip())
        except (CommandFailedError, ValueError):
            return 1

    # --- files -----------------------------------------------------------------------------------

    async def size(self, path: str) -> int | None:
        """The file's size, or None when it does not exist."""
        if not self._remote:
            try:
                return Path(path).stat().st_size
            except FileNotFoundError:
                return None
            except PermissionError as exc:
                raise TargetAuthError(f"no permission to read {path}: {exc}") from exc
        try:
            return int((await self.runner.run(["stat", "-c", "%s", path], timeout=self._config.timeout_s)).strip())
        except CommandFailedError:
            return None

    async def read_from(self, path: str, offset: int, limit: int) -> bytes:
        """At most ``limit`` bytes of ``path`` from ``offset``."""
        if not self._remote:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read(limit)
        text = await self.runner.run(["tail", "-c", f"+{offset + 1}", path], timeout=self._config.timeout_s)
        return text.encode()[:limit]

    async def read_text(self, path: str) -> str:
        return await self.runner.run(["cat", path], timeout=self._config.timeout_s)

    async def write_text(self, path: str, text: str) -> None:
        await self.runner.run(["sh", "-c", 'cat > "$1"', "write", path], timeout=self._config.timeout_s, stdin=text)

    async def close(self) -> None:
        await self.runner.close()


def _http_get(url: str, timeout: float) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read(65536).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise TargetAuthError(f"nginx stub_status at {url} refused us ({exc.code}): allow this host") from exc
        raise TargetUnreachableError(f"nginx stub_status at {url} answered {exc.code}: is the location "
                                     "configured with stub_status?") from exc
    except TimeoutError as exc:
        raise TargetTimeoutError(f"nginx at {url} gave no answer in {timeout:g}s") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TargetUnreachableError(f"nginx at {url} cannot be reached: {reason}") from exc
