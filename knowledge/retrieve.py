"""Hybrid search over the persisted index: BM25 and dense vectors, each ranked per document, fused by
reciprocal rank fusion, filtered by middleware.

Chunks are ranked, then each document takes the rank of its best chunk; a document's fused score is
``sum(1 / (RRF_K + rank))`` over the two rankings. The faiss store cannot filter by metadata, so the dense
side scores every chunk (the corpus is small) and the filter applies to documents afterwards.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.schema import BaseNode
from llama_index.vector_stores.faiss import FaissVectorStore
from pydantic import BaseModel

from kubestack.knowledge.bm25 import BM25
from kubestack.knowledge.embedders import LlamaEmbedding, make_embedder
from kubestack.errors import IndexNotFoundError
from kubestack.knowledge.index import INDEX_DIR, Manifest, build, document_nodes, read_manifest
from kubestack.knowledge.runbook import Runbook

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "bm25", "dense"]
RRF_K = 60
SNIPPET_CHARS = 240


class Hit(BaseModel):
    id: str
    title: str
    middleware: str
    kind: str
    score: float
    section: str
    snippet: str
    bm25_rank: int | None = None
    dense_rank: int | None = None


def _doc_ranks(chunk_ids: list[str], nodes: dict[str, BaseNode]) -> dict[str, tuple[int, str]]:
    """Document → (1-based rank among documents, id of its best chunk), from chunks best first."""
    ranks: dict[str, tuple[int, str]] = {}
    for chunk_id in chunk_ids:
        doc = nodes[chunk_id].metadata["doc_id"]
        if doc not in ranks:
            ranks[doc] = (len(ranks) + 1, chunk_id)
    return ranks


class KnowledgeBase:
    """An opened index: ``search`` it, ``add`` documents to it (both persist nothing else)."""

    def __init__(self, index_dir: Path, manifest: Manifest, index: VectorStoreIndex) -> None:
        self.index_dir, self.manifest, self.index = index_dir, manifest, index
        self._refresh()

    @classmethod
    def open(cls, folder: Path) -> KnowledgeBase:
        index_dir = folder / INDEX_DIR
        manifest = read_manifest(index_dir)
        if manifest is None:
            raise IndexNotFoundError(f"no knowledge index in {folder}: run 'kubestack knowledge ingest' first")
        embedder = make_embedder(manifest.embedder)
        embedder.load(index_dir)
        storage = StorageContext.from_defaults(vector_store=FaissVectorStore.from_persist_dir(str(index_dir)),
                                               persist_dir=str(index_dir))
        index = load_index_from_storage(storage, embed_model=LlamaEmbedding(embedder))
        return cls(index_dir, manifest, index)

    def _refresh(self) -> None:
        self.nodes: dict[str, BaseNode] = dict(self.index.docstore.docs)
        self._order = sorted(self.nodes)
        self.bm25 = BM25([self.nodes[i].get_content() for i in self._order])

    @property
    def documents(self) -> set[str]:
        return {n.metadata["doc_id"] for n in self.nodes.values()}

    def _bm25_chunks(self, query: str) -> list[str]:
        scores = self.bm25.scores(query)
        ranked = np.argsort(-scores, kind="stable")
        return [self._order[i] for i in ranked if scores[i] > 0]

    def _dense_chunks(self, query: str) -> list[str]:
        retriever = self.index.as_retriever(similarity_top_k=len(self.nodes))
        return [hit.node.node_id for hit in retriever.retrieve(query) if hit.node.node_id in self.nodes]

    def search(self, query: str, *, middleware: str | None = None, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        """The ``k`` best documents for ``query``, best first."""
        lists = {}
        if mode in ("hybrid", "bm25"):
            lists["bm25"] = _doc_ranks(self._bm25_chunks(query), self.nodes)
        if mode in ("hybrid", "dense"):
            lists["dense"] = _doc_ranks(self._dense_chunks(query), self.nodes)
        fused: dict[str, float] = {}
        for ranks in lists.values():
            for doc, (rank, _) in ranks.items():
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (RRF_K + rank)
        hits = []
        for doc, score in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0])):
            best = min((r for r in (ranks.get(doc) for ranks in lists.values()) if r), key=lambda r: r[0])
            node = self.nodes[best[1]]
            if middleware is not None and node.metadata["middleware"] != middleware:
                continue
            hits.append(Hit(id=doc, title=node.metadata["title"], middleware=node.metadata["middleware"],
                            kind=node.metadata["kind"], score=round(score, 6), section=node.metadata["section"],
                            snippet=" ".join(node.get_content().split())[:SNIPPET_CHARS],
                            bm25_rank=lists.get("bm25", {}).get(doc, (None,))[0],
                            dense_rank=lists.get("dense", {}).get(doc, (None,))[0]))
            if len(hits) == k:
                break
        return hits

    def add(self, books: list[Runbook]) -> None:
        """Index ``books`` now and persist. A document already indexed (an incident remembered again) makes a
        full rebuild: faiss cannot delete vectors, and a stale chunk must not answer."""
        if any(book.id in self.documents for book in books):
            build(self.index_dir.parent, self.manifest.embedder)
            fresh = KnowledgeBase.open(self.index_dir.parent)
            self.manifest, self.index = fresh.manifest, fresh.index
        else:
            self.index.insert_nodes([node for book in books for node in document_nodes(book)])
            self.index.storage_context.persist(persist_dir=str(self.index_dir))
        self._refresh()
        log.info("knowledge index: %d document(s) added, %d chunks in all", len(books), len(self.nodes))
