"""Approximate nearest-neighbour search over chunk vectors: the only module that imports hnswlib.

The graph is saved to a file rarely (saving rewrites all of it) and the vectors added since are searched
exactly beside it, as `pending`: after a restart they come from the embedding cache, and while a save reads
the graph new vectors wait there too, so a save never holds a writer. `absorb` moves them into the graph a
few at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import hnswlib
import numpy as np

from memory_mcp.forked import run_forked

INITIAL_CAPACITY: Final = 1024
M: Final = 16
EF_CONSTRUCTION: Final = 200
MIN_EF: Final = 64
BYTES_BESIDE_VECTOR: Final = 200
"""Links and label of one element in the graph file, beside its vector."""
FORK_FROM_BYTES = 4 * 2**20
"""A graph this large (2,400 vectors of 384 dimensions) is written by a forked child (`VectorIndex.save`)."""
SAVE_TIMEOUT: Final = 600.0
"""Seconds a forked save may take (160 MB took under a second here) before it is killed, failing the save."""


class VectorIndex:
    """Cosine-space HNSW graph keyed by integer labels, plus pending vectors searched exactly; deleted slots
    are reused by later inserts. Callers serialise changes (the indexer's `viewing` lock); `save` may run
    beside searches while the index is frozen."""

    def __init__(self, dimensions: int, capacity: int = INITIAL_CAPACITY) -> None:
        self.dimensions = dimensions
        self._index = hnswlib.Index(space="cosine", dim=dimensions)
        self._index.init_index(
            max_elements=max(capacity, 16), ef_construction=EF_CONSTRUCTION, M=M, allow_replace_deleted=True
        )
        self._labels: set[int] = set()
        self.pending: dict[int, np.ndarray] = {}
        """Live labels whose vectors are not in the graph yet, searched exactly."""
        self._matrix: tuple[list[int], np.ndarray] | None = None
        self._frozen = False
        self._deferred: list[int] = []
        """Labels removed while frozen: marked deleted in the graph once the save is done."""
        self.changes = 0
        """Labels added to or removed from the graph since it was last saved."""
        self._copies = _Copies(dimensions)

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def file_bytes(self) -> int:
        """About what `save` writes while nothing is pending: each vector, its links and its label."""
        return len(self) * (4 * self.dimensions + BYTES_BESIDE_VECTOR)

    @classmethod
    def load(
        cls, path: str, dimensions: int, in_graph: set[int], pending: dict[int, np.ndarray]
    ) -> VectorIndex | None:
        """Reopen a saved graph: `in_graph` are the live labels it must hold, `pending` the live vectors added
        after it was saved. Labels it holds that are no longer live are deleted. None when the file lacks a
        label it should hold (the caller then treats every vector as pending)."""
        index = cls.__new__(cls)
        index.dimensions = dimensions
        index._index = hnswlib.Index(space="cosine", dim=dimensions)
        index._index.load_index(path, allow_replace_deleted=True)
        saved = set(index._index.get_ids_list())
        if not in_graph <= saved:
            return None
        for label in saved - in_graph:
            try:
                index._index.mark_deleted(label)
            except RuntimeError:  # deleted before the save
                pass
        index._labels = set(in_graph)
        index.pending, index._matrix, index._frozen, index._deferred, index.changes = {}, None, False, [], 0
        index._copies = _Copies(dimensions)
        index.hold(pending)
        return index

    def hold(self, pending: dict[int, np.ndarray]) -> None:
        """Take vectors as pending: searched exactly until `absorb` moves them into the graph."""
        if pending:
            labels = list(pending)
            self.pending.update(zip(labels, unit_rows(np.stack([pending[label] for label in labels])), strict=True))
            self._labels.update(labels)
            self._matrix = None

    def save(self, path: str) -> None:
        """Write the graph (hold `frozen`, or keep every other change away): pending vectors are not in it.

        hnswlib holds the GIL for the whole write, stalling every thread (0.7 s at 100k vectors), so a forked
        child writes all but a small graph. The fork has a stall of its own, which grows with the process's
        memory: in a service of 10k memories, 5-12 ms against a write's 8-53 ms (`bench/stall.py --service`);
        below FORK_FROM_BYTES a write costs about what a fork does."""
        if self.file_bytes >= FORK_FROM_BYTES:
            run_forked(lambda: self._index.save_index(path), timeout=SAVE_TIMEOUT)
        else:
            self._index.save_index(path)

    def freeze(self) -> None:
        """From now on adds wait in `pending` and removals are deferred, so `save` reads a still graph."""
        self._frozen = True

    def thaw(self, *, saved: bool) -> None:
        """End `freeze`; `saved`: the graph as frozen is on disk, so only later changes count."""
        self._frozen = False
        for label in self._deferred:
            self._index.mark_deleted(label)
        self.changes = len(self._deferred) + (0 if saved else self.changes)
        self._deferred = []

    def add(self, labels: list[int], vectors: np.ndarray) -> None:
        if not labels:
            return
        if self._frozen:
            self.hold(dict(zip(labels, vectors, strict=True)))
            return
        self._insert(labels, vectors)
        self._labels.update(labels)

    def _insert(self, labels: list[int], vectors: np.ndarray) -> None:
        needed = self._index.get_current_count() + len(labels)
        if needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, self._index.get_max_elements() * 2))
        self._index.add_items(vectors, np.asarray(labels, dtype=np.uint64), replace_deleted=True)
        for label in labels:
            self._copies.drop(label)
        self.changes += len(labels)

    def remove(self, labels: list[int]) -> None:
        for label in labels:
            if label not in self._labels:
                continue
            self._labels.discard(label)
            self._copies.drop(label)
            if self.pending.pop(label, None) is not None:
                self._matrix = None
            elif self._frozen:
                self._deferred.append(label)
            else:
                self._index.mark_deleted(label)
                self.changes += 1

    def absorb(self, limit: int) -> int:
        """Move up to `limit` pending vectors into the graph (not while frozen); how many still wait."""
        if self._frozen or not self.pending:
            return len(self.pending)
        labels = list(self.pending)[:limit]
        self._insert(labels, np.stack([self.pending.pop(label) for label in labels]))
        self._matrix = None
        return len(self.pending)

    def vectors(self, labels: list[int]) -> np.ndarray:
        """The live `labels`' (unit) vectors: pending ones, or the graph's from their copies."""
        missing = [label for label in labels if label not in self.pending and not self._copies.has(label)]
        if missing:
            self._copies.put(missing, np.asarray(self._index.get_items(missing), dtype=np.float32))
        pending, copied = self.pending, self._copies
        return np.stack([pending[label] if label in pending else copied.get(label) for label in labels])

    def search(
        self, vector: np.ndarray, k: int, allowed: Callable[[int], bool] | None = None
    ) -> list[tuple[int, float]]:
        """Up to `k` (label, cosine similarity) pairs, best first, among labels that pass `allowed`."""
        k = min(k, len(self._labels))
        if k == 0:
            return []
        hits = self._graph_search(vector, min(k, len(self._labels) - len(self.pending)), allowed)
        if hits is None:  # fewer than k labels pass the filter: few enough to compare exactly
            return self._exact(vector, k, allowed)
        if self.pending:
            hits = sorted(hits + self._pending_search(vector, k, allowed), key=lambda hit: -hit[1])[:k]
        return hits

    def _graph_search(
        self, vector: np.ndarray, k: int, allowed: Callable[[int], bool] | None
    ) -> list[tuple[int, float]] | None:
        if k <= 0:
            return []
        if self._deferred:  # removed, still in the graph until the save is done
            gone, wanted = set(self._deferred), allowed
            allowed = lambda label: label not in gone and (wanted is None or wanted(label))  # noqa: E731
        self._index.set_ef(max(MIN_EF, 2 * k))
        try:
            labels, distances = self._index.knn_query(vector, k=k, filter=allowed, num_threads=1)
        except RuntimeError:
            return None
        return [(int(label), 1.0 - float(d)) for label, d in zip(labels[0], distances[0], strict=True)]

    def _pending_search(
        self, vector: np.ndarray, k: int, allowed: Callable[[int], bool] | None
    ) -> list[tuple[int, float]]:
        if self._matrix is None:
            self._matrix = (list(self.pending), np.stack(list(self.pending.values())))
        labels, matrix = self._matrix
        similarities = matrix @ vector
        best = np.argsort(-similarities)
        hits = []
        for i in best:
            if allowed is None or allowed(labels[i]):
                hits.append((labels[i], float(similarities[i])))
                if len(hits) == k:
                    break
        return hits

    def _exact(
        self, vector: np.ndarray, k: int, allowed: Callable[[int], bool] | None
    ) -> list[tuple[int, float]]:
        return self.nearest(vector, k, [label for label in self._labels if allowed is None or allowed(label)])

    def nearest(self, vector: np.ndarray, k: int, labels: list[int]) -> list[tuple[int, float]]:
        """The `k` (label, cosine similarity) pairs among live `labels` nearest to `vector`, best first,
        compared exactly: for few labels cheaper than a graph search that must visit far to find them."""
        if not labels or k <= 0:
            return []
        similarities = self.vectors(labels) @ vector
        best = np.argsort(-similarities, kind="stable")[:k]
        return [(labels[i], float(similarities[i])) for i in best]


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, as the graph stores them (cosine space), so exact and graph scores agree."""
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms)


class _Copies:
    """The graph's vectors again, as rows of one array: the graph hands out stored vectors at ~23 µs each,
    too slow to compare a query with a few thousand (46 ms for 2,000; 0.5 ms from here). Filled on first use
    only (4 bytes per dimension per chunk), so memory grows with the vectors that rare-tag recalls and
    similarity checks read, not with the graph: a copy of every vector would cost ~150 MB at 100k chunks."""

    def __init__(self, dimensions: int) -> None:
        self._rows: dict[int, int] = {}
        self._free: list[int] = []
        self._matrix = np.empty((0, dimensions), dtype=np.float32)

    def has(self, label: int) -> bool:
        return label in self._rows

    def get(self, label: int) -> np.ndarray:
        return self._matrix[self._rows[label]]

    def put(self, labels: list[int], vectors: np.ndarray) -> None:
        for label, vector in zip(labels, unit_rows(vectors), strict=True):
            row = self._rows.get(label)
            if row is None:
                row = self._rows[label] = self._free.pop() if self._free else self._grown()
            self._matrix[row] = vector

    def drop(self, label: int) -> None:
        row = self._rows.pop(label, None)
        if row is not None:
            self._free.append(row)

    def _grown(self) -> int:
        """A new row at the end, doubling the array when full."""
        used = len(self._rows) + len(self._free)
        if used == len(self._matrix):
            bigger = np.empty((max(16, 2 * used), self._matrix.shape[1]), dtype=np.float32)
            bigger[:used] = self._matrix
            self._matrix = bigger
        return used
