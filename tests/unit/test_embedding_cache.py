"""The embedding cache's file: vectors round-trip by key, a missing key is a miss, and a new file is made in
small pages, which cut what one remember writes to it by a third (bench/RESULTS.md, round 9)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from memory_mcp.core.derived_store import SMALL_PAGES
from memory_mcp.core.embedding_cache import EmbeddingCache, cache_key


def test_vectors_round_trip_by_key_in_a_file_of_small_pages(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.sqlite"
    cache = EmbeddingCache(path)
    stored = np.arange(2 * 384, dtype=np.float32).reshape(2, 384)
    key, other = cache_key("model", "", "a text"), cache_key("model", "", "another text")
    cache.put_many({key: stored})
    found = cache.get_many([key, other])
    cache.close()
    assert list(found) == [key] and np.array_equal(found[key], stored)
    assert sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0] == SMALL_PAGES
