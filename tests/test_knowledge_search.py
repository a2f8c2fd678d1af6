"""Ingest into a temporary folder and search it: English, Chinese and mixed questions, the middleware filter,
each retrieval mode, incident memory, the numpy MiniLM against reference values, and the CLI in a subprocess."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Hypothesis, Incident, IncidentStatus, RcaReport, Severity
from kubestack.knowledge.embedders import HashedEmbedder, MiniLMEmbedder, make_embedder
from kubestack.errors import IndexNotFoundError, KnowledgeError
from kubestack.knowledge.index import INCIDENTS_DIR, build, read_manifest
from kubestack.knowledge.memory import incident_document, remember
from kubestack.knowledge.minilm import model_dir
from kubestack.knowledge.retrieve import KnowledgeBase
from kubestack.knowledge.runbook import load_runbooks, parse_runbook
from kubestack.knowledge.wordpiece import WordPiece
from tests.cli import cli_env, run

DATA = Path(__file__).parent / "data" / "knowledge"
SOURCE = Source(agent="worker/rca", host="worker-1")
ORDERS_DB = ResourceRef(kind="postgresql", name="orders-db", host="db-7")


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("knowledge")
    build(folder)
    return folder


@pytest.fixture(scope="module")
def kb(kb_dir: Path) -> KnowledgeBase:
    return KnowledgeBase.open(kb_dir)


def top(kb: KnowledgeBase, query: str, **kwargs) -> list[str]:
    return [h.id for h in kb.search(query, **kwargs)]


def test_manifest_records_the_build(kb_dir: Path) -> None:
    manifest = read_manifest(kb_dir / "index")
    assert manifest is not None and manifest.embedder == "hashed" and manifest.dim == 4096
    assert manifest.documents == len(load_runbooks()) and manifest.chunks > manifest.documents


@pytest.mark.parametrize(("query", "expected"), [
    ("why is replication lagging on the orders db", "mysql/replication-lag"),
    ("pg too many clients", "postgresql/too-many-clients"),
    ("redis 内存满了怎么办", "redis/memory-full"),
    ("kafka 消费积压了", "kafka/consumer-lag"),
    ("postgres 事务号快回卷了", "postgresql/xid-wraparound"),
    ("mysql 死锁 Deadlock found when trying to get lock", "mysql/deadlocks"),
    ("host.inodes_low on /var", "host/inodes-exhausted"),
])
def test_english_chinese_and_mixed_questions_find_their_runbook_first(kb: KnowledgeBase, query: str,
                                                                       expected: str) -> None:
    assert top(kb, query)[0] == expected


def test_middleware_filter_keeps_only_that_middleware(kb: KnowledgeBase) -> None:
    hits = kb.search("replication lag, the replica is behind", middleware="postgresql", k=5)
    assert hits[0].id == "postgresql/replica-lag"
    assert {h.middleware for h in hits} == {"postgresql"} and len(hits) == 5
    assert top(kb, "replication lag, the replica is behind", middleware="redis")[0] == "redis/replication-broken"
    assert kb.search("anything", middleware="cassandra") == []


def test_each_mode_ranks_and_hybrid_reports_both_ranks(kb: KnowledgeBase) -> None:
    query = "ERR max number of clients reached"
    assert top(kb, query, mode="bm25")[0] == "redis/maxclients-rejected"
    assert top(kb, query, mode="dense")[0] == "redis/maxclients-rejected"
    best = kb.search(query, k=1)[0]
    assert best.bm25_rank == 1 and best.dense_rank == 1 and best.score > 0 and best.snippet
    assert len(kb.search(query, k=3)) == 3


def test_opening_a_folder_without_index_says_to_ingest(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="kubestack knowledge ingest"):
        KnowledgeBase.open(tmp_path)
    with pytest.raises(KnowledgeError, match="unknown embedder"):
        make_embedder("word2vec")


def _incident(incident_id: str) -> tuple[Incident, RcaReport]:
    opened = datetime(2026, 3, 1, 2, 14, tzinfo=timezone.utc)
    incident = Incident(source=SOURCE, resource=ORDERS_DB, incident_id=incident_id,
                        title="orders-db checkout writes stalled behind a vacuum freeze", status=IncidentStatus.RESOLVED,
                        severity=Severity.CRITICAL, opened_at=opened, resources=[ORDERS_DB],
                        member_event_ids=["ev-1", "ev-2"], summary="checkout timed out for 40 minutes")
    rca = RcaReport(source=SOURCE, resource=ORDERS_DB, incident_id=incident_id, narrative="A forgotten psql "
                    "session held the oldest xmin; the anti-wraparound vacuum could not advance.",
                    hypotheses=[Hypothesis(rank=1, component=ORDERS_DB.key, cause="postgresql.xid_age_high",
                                           confidence=0.8, evidence_ids=["ev-1"],
                                           runbooks=["postgresql/xid-wraparound"])])
    return incident, rca


def test_incident_document_is_a_valid_knowledge_document() -> None:
    incident, rca = _incident("inc-42")
    book = incident_document(incident, rca, signals=["postgresql.xid_age_high", "postgresql_db_xid_age",
                                                      "must be vacuumed within"], resolution="terminated pid 4242")
    assert book.id == "incident/inc-42" and book.meta.kind == "incident" and book.meta.middleware == "postgresql"
    assert book.meta.signals.rules == ["postgresql.xid_age_high"]
    assert book.meta.signals.metrics == ["postgresql_db_xid_age"]
    assert book.meta.signals.logs == ["must be vacuumed within"]
    assert book.meta.related == ["postgresql/xid-wraparound"]
    assert "terminated pid 4242" in book.body and "confidence 80%" in book.body
    assert parse_runbook(book.to_markdown(), "memory") == book


def test_remembered_incident_is_indexed_at_once_and_replaced_when_remembered_again(tmp_path: Path) -> None:
    build(tmp_path)
    incident, rca = _incident("inc-7")
    remember(tmp_path, incident, rca, resolution="killed the forgotten psql session holding xmin")
    assert (tmp_path / INCIDENTS_DIR / "inc-7.md").is_file()
    kb = KnowledgeBase.open(tmp_path)
    hits = kb.search("checkout writes stalled behind a vacuum freeze", middleware="postgresql")
    assert hits[0].id == "incident/inc-7" and hits[0].kind == "incident"
    remember(tmp_path, incident, rca, resolution="ran VACUUM FREEZE on orders_items")
    kb = KnowledgeBase.open(tmp_path)
    assert len([d for d in kb.documents if d.startswith("incident/")]) == 1
    best = kb.search("VACUUM FREEZE orders_items checkout stalled", k=1)[0]
    assert best.id == "incident/inc-7"
    assert not any("forgotten psql session holding xmin" in n.get_content() for n in kb.nodes.values())
    build(tmp_path)   # a full re-ingest keeps remembered incidents
    assert "incident/inc-7" in KnowledgeBase.open(tmp_path).documents


def test_remember_without_an_index_only_writes_the_document(tmp_path: Path) -> None:
    incident, _ = _incident("inc-9")
    remember(tmp_path, incident)
    assert (tmp_path / INCIDENTS_DIR / "inc-9.md").is_file() and not (tmp_path / "index").exists()


def test_hashed_embedder_is_deterministic_unit_length_and_reads_chinese() -> None:
    embedder = HashedEmbedder(dim=512)
    embedder.fit(["redis memory full", "主从延迟 replication lag", "disk full"])
    vectors = embedder.embed(["主从延迟", "redis memory full", "主从延迟"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2]) and abs(float(vectors[0] @ vectors[1])) < 0.5


def test_wordpiece_matches_the_reference_tokenizer_on_recorded_cases() -> None:
    recorded = json.loads((DATA / "wordpiece_ids.json").read_text(encoding="utf-8"))
    tokenizer = WordPiece.from_file(model_dir() / "vocab.txt")
    for case in recorded["cases"]:
        assert tokenizer.encode(case["text"], 10_000) == case["ids"], case["text"]


def test_minilm_in_numpy_gives_the_published_similarities() -> None:
    """sentence-transformers' documentation: 0.7553 and 0.2474 for these pairs with all-MiniLM-L6-v2."""
    vectors = MiniLMEmbedder().embed(["A man is eating food.", "A man is eating a piece of bread.",
                                      "A man is riding a horse."])
    assert vectors.shape == (3, 384)
    assert float(vectors[0] @ vectors[1]) == pytest.approx(0.7553, abs=1e-3)
    assert float(vectors[0] @ vectors[2]) == pytest.approx(0.2474, abs=1e-3)


def test_cli_ingest_then_search_in_a_subprocess(tmp_path: Path) -> None:
    env = cli_env(KUBESTACK_HOME=str(tmp_path))
    ingest = run("knowledge", "ingest", "--embedder", "default", env=env)
    assert ingest.returncode == 0, ingest.stderr
    assert "indexed" in ingest.stderr and (tmp_path / "knowledge" / "index" / "manifest.json").is_file()
    found = run("knowledge", "search", "redis 内存满了怎么办", "--json", "-k", "3", env=env)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert [h["id"] for h in hits][0] == "redis/memory-full" and len(hits) == 3
    filtered = run("knowledge", "search", "too many connections", "--middleware", "mysql", "--json", env=env)
    assert {h["middleware"] for h in json.loads(filtered.stdout)} == {"mysql"}
    table = run("knowledge", "search", "pg too many clients", env=env)
    assert table.returncode == 0 and "postgresql/too-many-clients" in table.stdout


def test_cli_search_before_ingest_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run("knowledge", "search", "anything", env=cli_env(KUBESTACK_HOME=str(tmp_path)))
    assert result.returncode == 1
    assert "kubestack knowledge ingest" in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
