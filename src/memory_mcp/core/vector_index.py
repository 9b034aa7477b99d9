"""Approximate nearest-neighbour search over chunk vectors: the only module that imports hnswlib."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import hnswlib
import numpy as np

INITIAL_CAPACITY: Final = 1024
M: Final = 16
EF_CONSTRUCTION: Final = 200
MIN_EF: Final = 64


class VectorIndex:
    """Cosine-space HNSW graph keyed by integer labels; deleted slots are reused by later inserts."""

    def __init__(self, dimensions: int, capacity: int = INITIAL_CAPACITY) -> None:
        self.dimensions = dimensions
        self._index = hnswlib.Index(space="cosine", dim=dimensions)
        self._index.init_index(
            max_elements=max(capacity, 16), ef_construction=EF_CONSTRUCTION, M=M, allow_replace_deleted=True
        )
        self._labels: set[int] = set()

    def __len__(self) -> int:
        return len(self._labels)

    def save(self, path: str) -> None:
        self._index.save_index(path)

    @classmethod
    def load(cls, path: str, dimensions: int, labels: set[int]) -> VectorIndex:
        """Reopen a saved graph; `labels` are the live ones (deleted slots stay marked in the file)."""
        index = cls.__new__(cls)
        index.dimensions = dimensions
        index._index = hnswlib.Index(space="cosine", dim=dimensions)
        index._index.load_index(path, allow_replace_deleted=True)
        index._labels = set(labels)
        return index

    def add(self, labels: list[int], vectors: np.ndarray) -> None:
        if not labels:
            return
        needed = self._index.get_current_count() + len(labels)
        if needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, self._index.get_max_elements() * 2))
        self._index.add_items(vectors, np.asarray(labels, dtype=np.uint64), replace_deleted=True)
        self._labels.update(labels)

    def remove(self, labels: list[int]) -> None:
        for label in labels:
            if label in self._labels:
                self._index.mark_deleted(label)
                self._labels.discard(label)

    def vectors(self, labels: list[int]) -> np.ndarray:
        return np.asarray(self._index.get_items(labels), dtype=np.float32)

    def search(
        self, vector: np.ndarray, k: int, allowed: Callable[[int], bool] | None = None
    ) -> list[tuple[int, float]]:
        """Up to `k` (label, cosine similarity) pairs, best first, among labels that pass `allowed`."""
        k = min(k, len(self._labels))
        if k == 0:
            return []
        self._index.set_ef(max(MIN_EF, 2 * k))
        try:
            labels, distances = self._index.knn_query(vector, k=k, filter=allowed, num_threads=1)
        except RuntimeError:  # fewer than k labels pass the filter: few enough to compare exactly
            return self._exact(vector, k, allowed)
        return [(int(label), 1.0 - float(d)) for label, d in zip(labels[0], distances[0], strict=True)]

    def _exact(
        self, vector: np.ndarray, k: int, allowed: Callable[[int], bool] | None
    ) -> list[tuple[int, float]]:
        candidates = [label for label in self._labels if allowed is None or allowed(label)]
        if not candidates:
            return []
        similarities = self.vectors(candidates) @ vector
        best = np.argsort(-similarities)[:k]
        return [(candidates[i], float(similarities[i])) for i in best]
