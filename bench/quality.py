"""Retrieval quality: the server's recall beside three baselines on the same texts and the same embeddings.

- BM25: a plain implementation here (Okapi, k1 1.2, b 0.75, lower-cased alphanumeric words), independent of
  the server's keyword index;
- vector-only: exact cosine between the query vector and each memory's best chunk, over every memory;
- RRF: reciprocal rank fusion (k 60) of the two rankings' top `FUSION_DEPTH`; `rrf_40` fuses only their top
  40, as many candidates as the server's recall takes for 10 hits (a diagnostic, not a baseline).

R@k is the share of queries with a relevant memory among the first k, MRR@10 the mean of 1/rank of the first
relevant one within 10 (0 when none). A query's relevant memories are those whose record had that query.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import numpy as np

K1, B = 1.2, 0.75
RRF_K = 60
FUSION_DEPTH = 100
TOP = 10
WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


class BM25:
    """Okapi BM25 over `texts` with an inverted index of numpy arrays."""

    def __init__(self, texts: Sequence[str]) -> None:
        postings: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        lengths = []
        for doc, text in enumerate(texts):
            counts = Counter(words(text))
            lengths.append(sum(counts.values()))
            for word, count in counts.items():
                postings[word][0].append(doc)
                postings[word][1].append(count)
        self.size = len(texts)
        length = np.array(lengths, dtype=np.float64)
        self._norm = K1 * (1 - B + B * length / max(length.mean(), 1e-9))
        self._postings = {w: (np.array(d), np.array(c, dtype=np.float64)) for w, (d, c) in postings.items()}

    def idf(self, word: str) -> float:
        df = len(self._postings[word][0]) if word in self._postings else 0
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> np.ndarray:
        total = np.zeros(self.size)
        for word in set(words(query)):
            if word in self._postings:
                docs, tf = self._postings[word]
                total[docs] += self.idf(word) * tf * (K1 + 1) / (tf + self._norm[docs])
        return total

    def ranking(self, query: str, depth: int = FUSION_DEPTH) -> list[int]:
        """Documents with a positive score, best first (ties by position)."""
        scores = self.scores(query)
        return [int(d) for d in _top(scores, depth) if scores[d] > 0]


class Cosine:
    """Exact search over every chunk vector; a memory scores its best chunk."""

    def __init__(self, vectors: Sequence[np.ndarray]) -> None:
        rows = np.vstack([np.atleast_2d(v) for v in vectors]).astype(np.float32)
        self._rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        self._owner = np.repeat(np.arange(len(vectors)), [np.atleast_2d(v).shape[0] for v in vectors])
        self.size = len(vectors)

    def scores(self, query_vector: np.ndarray) -> np.ndarray:
        query = query_vector.astype(np.float32) / max(float(np.linalg.norm(query_vector)), 1e-12)
        best = np.full(self.size, -np.inf, dtype=np.float32)
        np.maximum.at(best, self._owner, self._rows @ query)
        return best

    def ranking(self, query_vector: np.ndarray, depth: int = FUSION_DEPTH) -> list[int]:
        return [int(d) for d in _top(self.scores(query_vector), depth)]


def _top(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the `depth` highest scores, best first, ties broken by the lower index."""
    depth = min(depth, len(scores))
    if depth == 0:
        return np.array([], dtype=int)
    part = np.argpartition(-scores, depth - 1)[:depth]
    return part[np.lexsort((part, -scores[part]))]


def rrf(*rankings: list[int], k: int = RRF_K) -> list[int]:
    fused: dict[int, float] = defaultdict(float)
    for ranking in rankings:
        for position, doc in enumerate(ranking):
            fused[doc] += 1.0 / (k + position + 1)
    return sorted(fused, key=lambda doc: (-fused[doc], doc))


def metrics(rankings: Sequence[Sequence[int]], relevant: Sequence[set[int]]) -> dict[str, float]:
    """R@1, R@5 and MRR@10 of `rankings` (one per query) against each query's relevant documents."""
    found_at: list[int | None] = []
    for ranking, wanted in zip(rankings, relevant, strict=True):
        found_at.append(next((i + 1 for i, doc in enumerate(ranking[:TOP]) if doc in wanted), None))
    count = max(len(found_at), 1)
    return {
        "r_at_1": round(sum(1 for r in found_at if r == 1) / count, 3),
        "r_at_5": round(sum(1 for r in found_at if r is not None and r <= 5) / count, 3),
        "mrr_at_10": round(sum(1 / r for r in found_at if r is not None) / count, 3),
    }


def evaluate(
    texts: Sequence[str],
    vectors: Sequence[np.ndarray],
    queries: Sequence[str],
    query_vectors: Sequence[np.ndarray],
    relevant: Sequence[set[int]],
    recall: Callable[[str], list[int]],
) -> dict[str, dict[str, float]]:
    """Each method's metrics over `queries`; `recall` is the server's answer (documents, best first)."""
    bm25, cosine = BM25(texts), Cosine(vectors)
    lexical = [bm25.ranking(q) for q in queries]
    semantic = [cosine.ranking(v) for v in query_vectors]
    return {
        "recall": metrics([recall(q) for q in queries], relevant),
        "bm25": metrics(lexical, relevant),
        "vector": metrics(semantic, relevant),
        "rrf": metrics([rrf(a, b) for a, b in zip(lexical, semantic, strict=True)], relevant),
        "rrf_40": metrics([rrf(a[:40], b[:40]) for a, b in zip(lexical, semantic, strict=True)], relevant),
    }


def beats_baselines(scores: dict[str, dict[str, float]]) -> dict[str, bool]:
    """Whether recall beats the best baseline on R@5 and on MRR@10 (the issue's quality targets)."""
    baselines = [scores[m] for m in ("bm25", "vector", "rrf")]
    return {m: scores["recall"][m] > max(b[m] for b in baselines) for m in ("r_at_5", "mrr_at_10")}
