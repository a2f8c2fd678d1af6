"""Okapi BM25 over the analyzer's terms (``text.terms``): the lexical half of hybrid retrieval.

Built in memory from the indexed texts when the index is opened: the corpus is small (hundreds of chunks),
so this takes milliseconds and there is no second store to keep in step with the vector index.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from kubestack.knowledge.text import terms


class BM25:
    def __init__(self, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs = [Counter(terms(t)) for t in texts]
        self.lengths = np.array([sum(d.values()) for d in self.docs], dtype=np.float64)
        self.avg_length = float(self.lengths.mean()) if len(self.docs) else 0.0
        df: Counter[str] = Counter()
        for doc in self.docs:
            df.update(doc.keys())
        n = len(self.docs)
        self.idf = {term: math.log(1 + (n - count + 0.5) / (count + 0.5)) for term, count in df.items()}

    def scores(self, query: str) -> np.ndarray:
        """One score per text, 0 for texts sharing no term with ``query``."""
        out = np.zeros(len(self.docs), dtype=np.float64)
        if not self.docs:
            return out
        norm = self.k1 * (1 - self.b + self.b * self.lengths / max(self.avg_length, 1e-9))
        for term in set(terms(query)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            tf = np.array([doc.get(term, 0) for doc in self.docs], dtype=np.float64)
            out += idf * tf * (self.k1 + 1) / (tf + norm)
        return out
