"""Text → vector, behind llama-index's ``BaseEmbedding``.

``hashed`` (the default) needs nothing but numpy: a text's terms (stemmed English words and identifiers,
Chinese characters and bigrams, glossary terms) and the character trigrams of its English words are hashed
into a fixed number of signed buckets, weighted by sublinear term frequency times the inverse document
frequency learnt from the corpus at ingest, and L2-normalised. It knows no meaning beyond shared terms and
word fragments, but it is deterministic, instant, and reads Chinese as well as English.

``minilm`` is all-MiniLM-L6-v2 computed in numpy (``minilm.py``): real semantic similarity for English,
almost none for Chinese (its vocabulary has single CJK characters, its training data had little Chinese).
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from llama_index.core.embeddings import BaseEmbedding
from pydantic import PrivateAttr

from kubestack.errors import KnowledgeError
from kubestack.knowledge.text import char_ngrams, terms

DEFAULT = "hashed"


class Embedder(Protocol):
    name: ClassVar[str]
    dim: int

    def fit(self, texts: Sequence[str]) -> None:
        """Learn what the corpus tells (document frequencies); a no-op for pre-trained models."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors."""
        ...

    def save(self, folder: Path) -> None: ...

    def load(self, folder: Path) -> None: ...


class HashedEmbedder:
    """Signed feature hashing of terms and character trigrams, TF-IDF weighted."""

    name: ClassVar[str] = "hashed"
    NGRAM_WEIGHT = 0.5
    """Trigrams catch inflections and typos; terms carry most of the meaning."""

    def __init__(self, dim: int = 4096) -> None:
        self.dim = dim
        self.idf = np.ones(dim, dtype=np.float32)

    def _features(self, text: str) -> Counter[str]:
        counts: Counter[str] = Counter("w:" + term for term in terms(text))
        for gram in char_ngrams(text):
            counts["c:" + gram] += self.NGRAM_WEIGHT
        return counts

    def _slot(self, feature: str) -> tuple[int, float]:
        h = zlib.crc32(feature.encode("utf-8"))
        return h % self.dim, (1.0 if h & 0x80000000 else -1.0)

    def fit(self, texts: Sequence[str]) -> None:
        df = np.zeros(self.dim, dtype=np.float64)
        for text in texts:
            for index in {self._slot(f)[0] for f in self._features(text)}:
                df[index] += 1
        self.idf = (np.log((1 + len(texts)) / (1 + df)) + 1.0).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, count in self._features(text).items():
                index, sign = self._slot(feature)
                out[row, index] += sign * (1.0 + math.log(count) if count >= 1 else count)
            out[row] *= self.idf
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def save(self, folder: Path) -> None:
        np.save(folder / "hashed_idf.npy", self.idf)

    def load(self, folder: Path) -> None:
        self.idf = np.load(folder / "hashed_idf.npy")
        self.dim = len(self.idf)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (numpy forward pass); loaded on first use."""

    name: ClassVar[str] = "minilm"
    dim = 384

    def __init__(self) -> None:
        self._model: Any = None

    def fit(self, texts: Sequence[str]) -> None:
        """Pre-trained: nothing to learn from the corpus."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            from kubestack.knowledge.minilm import MiniLM
            self._model = MiniLM()
        return self._model.encode(list(texts))

    def save(self, folder: Path) -> None:
        """The weights come from their package, nothing to write."""

    def load(self, folder: Path) -> None:
        """The weights come from their package, nothing to read."""


EMBEDDERS: dict[str, type] = {HashedEmbedder.name: HashedEmbedder, MiniLMEmbedder.name: MiniLMEmbedder}


def make_embedder(name: str) -> Embedder:
    if name not in EMBEDDERS:
        raise KnowledgeError(f"unknown embedder {name!r}: choose one of {', '.join(EMBEDDERS)}")
    return EMBEDDERS[name]()


class LlamaEmbedding(BaseEmbedding):
    """An ``Embedder`` as llama-index sees it (its index calls these; one vector per text)."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.name, embed_batch_size=64, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "KubestackEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed([query])[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)
