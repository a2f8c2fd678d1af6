"""Retrieval quality of the knowledge base on the gold questions: Recall@5 and MRR@10, side by side for the
default (hybrid: BM25 + hashed vectors), BM25 alone, each embedder's dense ranking alone, and hybrid MiniLM.

    nice .venv/bin/python bench/knowledge/run.py [--split dev|holdout|all ...] [--json] [--skip-minilm]

Each embedder's index is built in a temporary folder; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from kubestack.knowledge.index import build
from kubestack.knowledge.retrieve import KnowledgeBase

GOLD = Path(__file__).with_name("gold.jsonl")
# (label, embedder, mode)
SYSTEMS = (
    ("default: hybrid (BM25 + hashed)", "hashed", "hybrid"),
    ("BM25 alone", "hashed", "bm25"),
    ("dense alone: hashed", "hashed", "dense"),
    ("dense alone: MiniLM", "minilm", "dense"),
    ("hybrid: BM25 + MiniLM", "minilm", "hybrid"),
)


def load_gold(split: str) -> list[dict]:
    rows = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split == "all" or r["split"] == split]


def evaluate(kb: KnowledgeBase, mode: str, gold: list[dict]) -> dict:
    """Recall@5 and MRR@10 overall and per language; mean search latency in ms."""
    hits5, rr, by_lang = [], [], defaultdict(list)
    started = time.perf_counter()
    for row in gold:
        ids = [h.id for h in kb.search(row["question"], k=10, mode=mode)]
        rank = ids.index(row["runbook"]) + 1 if row["runbook"] in ids else None
        hits5.append(rank is not None and rank <= 5)
        rr.append(1.0 / rank if rank else 0.0)
        by_lang[row["lang"]].append(rank is not None and rank <= 5)
    elapsed = (time.perf_counter() - started) / max(len(gold), 1) * 1000
    return {"recall@5": sum(hits5) / len(gold), "mrr@10": sum(rr) / len(gold),
            "recall@5_by_lang": {lang: sum(v) / len(v) for lang, v in sorted(by_lang.items())},
            "ms_per_query": elapsed, "misses": [r["question"] for r, ok in zip(gold, hits5, strict=True) if not ok]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "holdout", "all"), nargs="+", default=["dev", "holdout", "all"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-minilm", action="store_true")
    args = parser.parse_args()
    golds = {split: load_gold(split) for split in args.split}
    results: dict[str, dict[str, dict]] = {split: {} for split in args.split}
    bases: dict[str, KnowledgeBase] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, embedder, mode in SYSTEMS:
            if embedder == "minilm" and args.skip_minilm:
                continue
            if embedder not in bases:
                folder = Path(tmp) / embedder
                build(folder, embedder)
                bases[embedder] = KnowledgeBase.open(folder)
            for split, gold in golds.items():
                results[split][label] = evaluate(bases[embedder], mode, gold)
    if args.json:
        json.dump({split: {"questions": len(golds[split]), "results": results[split]} for split in golds},
                  sys.stdout, indent=2, ensure_ascii=False)
        return
    for split, gold in golds.items():
        print(f"\nsplit: {split}, {len(gold)} questions\n")
        print("| system | Recall@5 | MRR@10 | R@5 en | R@5 zh | R@5 mixed | ms/query |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for label, r in results[split].items():
            langs = r["recall@5_by_lang"]
            print(f"| {label} | {r['recall@5']:.3f} | {r['mrr@10']:.3f} | {langs.get('en', 0):.3f} | "
                  f"{langs.get('zh', 0):.3f} | {langs.get('mixed', 0):.3f} | {r['ms_per_query']:.1f} |")


if __name__ == "__main__":
    main()
