"""The bench's one window into the server's insides: the vectors it holds for the memories, its query
embedding, its two candidate rankings, the file a memory is stored as, its vector graph's two ways to be
saved, its chunk length, and the lock that pauses its packing.

The quality baselines must run over the very vectors the server holds (embedding a corpus again would double
a 10k import), the diagnosis must see each ranking before fusion, the yardstick commit must write the very
bytes the server writes, and a save's stall is measured on the server's own graph. Everything else in
bench/ goes through the core's declared API (`memory_mcp.core`); tests/test_architecture.py holds it to
that.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Final

import numpy as np

from memory_mcp.core import Memory, MemoryService, search, vector_index
from memory_mcp.core.embedder import MAX_CONTEXT
from memory_mcp.core.layout import memory_path
from memory_mcp.core.markdown import render
from memory_mcp.core.store import STATE_DIR
from memory_mcp.core.vector_index import VectorIndex, unit_rows
from memory_mcp.files import locked
from memory_mcp.forked import run_forked

CHUNK_TOKENS: Final = MAX_CONTEXT
"""The longest text, in tokens, the server embeds as one chunk."""


def packing_paused(repository: Path) -> AbstractContextManager[None]:
    """Hold the store's packing lock (the server skips a packing while it is held): a packing removes the
    loose objects it packed, so a copy of `.git` taken meanwhile would miss some."""
    return locked(repository / ".git" / STATE_DIR / "pack.lock")


def memory_vectors(service: MemoryService, memories: list[Memory]) -> Any:
    """One vector per memory, as the server embedded it (read back from its embedding cache)."""
    return service.indexer.vectors(memories)


def query_vector(service: MemoryService, query: str) -> Any:
    return service.embedder.embed_query(query)


def candidates(service: MemoryService, query: str, vector: Any, depth: int) -> tuple[list[str], list[str]]:
    """The names of the server's vector (graph search) and keyword (FTS5) candidates, best first."""
    catalog = service.indexer.catalog

    def names(docs: Any) -> list[str]:
        return [entry.memory.name for doc in docs if (entry := catalog.by_doc(doc)) is not None]

    with service.indexer.viewing:
        return (
            names(search._semantic(catalog, vector, None, depth)),
            names(search._keyword(catalog, query, None, depth)),
        )


def fused_depth(limit: int) -> int:
    """How deep the server reads each ranking for `limit` hits."""
    return search.depth(limit)


def stored_file(memory: Memory) -> tuple[str, bytes]:
    """The path and bytes of the file the server stores `memory` as."""
    return memory_path(memory.scope, memory.name), render(memory)


def random_graph(vectors: int, dimensions: int, seed: int = 1) -> VectorIndex:
    """A vector graph of the server's parameters holding `vectors` random unit vectors."""
    index, rng = VectorIndex(dimensions, capacity=vectors), np.random.default_rng(seed)
    for start in range(0, vectors, 5000):
        rows = unit_rows(rng.standard_normal((min(5000, vectors - start), dimensions)).astype(np.float32))
        index.add(list(range(start, start + len(rows))), rows)
    return index


def save_in_process(index: VectorIndex, path: str) -> None:
    """hnswlib's own save, in this process (the GIL held throughout)."""
    index._index.save_index(path)


def save_forked(index: VectorIndex, path: str) -> None:
    """The same save from a forked child, as `VectorIndex.save` does for a large graph."""
    run_forked(lambda: save_in_process(index, path), timeout=vector_index.SAVE_TIMEOUT)


def save_service_graph(service: MemoryService, *, forked: bool) -> bool:
    """The service's own graph save (absorbing, freezing, renaming, recording), made due now, with the
    graph written from a forked child or in this process whatever its size."""
    index, threshold = service.indexer.catalog.vector_index, vector_index.FORK_FROM_BYTES
    vector_index.FORK_FROM_BYTES = 0 if forked else 1 << 62
    index.changes = max(index.changes, 1 << 62)
    try:
        return service.indexer.save_snapshot()
    finally:
        vector_index.FORK_FROM_BYTES = threshold
