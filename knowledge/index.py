"""Building the on-disk index: documents → chunks (llama-index ``TextNode``s) → vectors in a faiss index.

Layout under the knowledge folder (``Settings().home / "knowledge"`` by default)::

    index/manifest.json      embedder, dimension, documents and chunks, build time
    index/*.json             llama-index storage: docstore, index store, faiss vectors
    index/hashed_idf.npy     the embedder's learnt state, when it has any
    incidents/<id>.md        incident memories (``memory.py``); re-read by every ingest

A build writes a new folder next to the old one and swaps it in, so a reader never sees half an index.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import faiss
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.vector_stores.faiss import FaissVectorStore
from pydantic import BaseModel

from kubestack.knowledge.embedders import DEFAULT, LlamaEmbedding, make_embedder
from kubestack.knowledge.runbook import Runbook, load_dir, load_runbooks

log = logging.getLogger(__name__)

KNOWLEDGE_DIR = "knowledge"
INDEX_DIR = "index"
INCIDENTS_DIR = "incidents"
MANIFEST = "manifest.json"
_META_KEYS = ["doc_id", "middleware", "kind", "title", "section"]


class Manifest(BaseModel):
    version: int = 1
    embedder: str
    dim: int
    documents: int
    chunks: int
    built_at: datetime


def default_folder(home: Path) -> Path:
    """Where the knowledge base lives under the settings' ``home``."""
    return home / KNOWLEDGE_DIR


def head_text(book: Runbook) -> str:
    """The front matter as text: title, symptoms and signals are what questions usually echo."""
    m = book.meta
    parts = [m.title, *m.symptoms, *m.signals.rules, *m.signals.metrics, *m.signals.logs]
    return "\n".join(parts)


def document_nodes(book: Runbook) -> list[TextNode]:
    """One chunk for the front matter, one per ``## `` section (each led by the title, for context)."""
    meta = {"doc_id": book.id, "middleware": book.meta.middleware, "kind": book.meta.kind, "title": book.meta.title}
    chunks = [("summary", head_text(book))]
    chunks += [(heading or "overview", f"{book.meta.title}\n{heading}\n{text}") for heading, text in book.sections()]
    return [TextNode(id_=f"{book.id}#{i}", text=text, metadata=meta | {"section": section},
                     excluded_embed_metadata_keys=_META_KEYS, excluded_llm_metadata_keys=_META_KEYS)
            for i, (section, text) in enumerate(chunks)]


def all_documents(folder: Path) -> list[Runbook]:
    """The packaged runbooks plus the incident memories kept under ``folder``."""
    books = load_runbooks()
    incidents = folder / INCIDENTS_DIR
    if incidents.is_dir():
        books += load_dir(incidents)
    return books


def build(folder: Path, embedder_name: str = DEFAULT, books: list[Runbook] | None = None) -> Manifest:
    """(Re)build ``folder/index`` from ``books`` (default: ``all_documents(folder)``)."""
    books = all_documents(folder) if books is None else books
    nodes = [node for book in books for node in document_nodes(book)]
    embedder = make_embedder(embedder_name)
    embedder.fit([n.text for n in nodes])
    target = folder / INDEX_DIR
    staging = folder / f".{INDEX_DIR}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    storage = StorageContext.from_defaults(vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatIP(embedder.dim)))
    VectorStoreIndex(nodes, storage_context=storage, embed_model=LlamaEmbedding(embedder))
    storage.persist(persist_dir=str(staging))
    embedder.save(staging)
    manifest = Manifest(embedder=embedder_name, dim=embedder.dim, documents=len(books), chunks=len(nodes),
                        built_at=datetime.now(timezone.utc))
    (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    _swap(staging, target)
    log.info("knowledge index built in %s: %d documents, %d chunks, embedder %s", target, len(books), len(nodes),
             embedder_name)
    return manifest


def _swap(staging: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old.{os.getpid()}")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(index_dir: Path) -> Manifest | None:
    path = index_dir / MANIFEST
    if not path.is_file():
        return None
    return Manifest.model_validate(json.loads(path.read_text()))
