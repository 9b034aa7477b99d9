"""Vectors already computed, keyed by (model identity, prefix, text): a restart or another process never
re-embeds text whose vectors are stored. A SQLite file in the cache directory, shared safely by processes."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from memory_mcp.core import derived_store
from memory_mcp.core.derived_store import Error

log = logging.getLogger(__name__)


def cache_key(model_identity: str, prefix: str, text: str) -> bytes:
    digest = hashlib.sha256()
    for part in (model_identity, prefix, text):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.digest()


class VectorCache(Protocol):
    """The port for stored chunk vectors by cache key; `EmbeddingCache` is its adapter."""

    def get_many(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        """The stored arrays among `keys` (missing keys are absent from the answer)."""

    def put_many(self, items: dict[bytes, np.ndarray]) -> None:
        """Store arrays by key; a failure is a later miss, never an error."""

    def clear(self) -> None:
        """Forget every stored array."""

    def close(self) -> None:
        """Release the storage."""


class EmbeddingCache:
    """get/put arrays of chunk vectors; any SQLite failure degrades to a cache miss, never to an error."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._db = self._open(path)

    @staticmethod
    def _open(path: Path | None) -> derived_store.Connection:
        """In small pages, as the derived store: one vector's insert writes ~7 KB to the WAL, against ~14 KB
        in SQLite's default 4 KB pages (bench/RESULTS.md, round 9). An older cache keeps its page size."""
        db = derived_store.connect(path, page_size=derived_store.SMALL_PAGES)
        db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, rows INTEGER, dims INTEGER, data BLOB)"
        )
        return db

    def get_many(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        try:
            with self._lock:
                for start in range(0, len(keys), 500):
                    batch = keys[start : start + 500]
                    marks = ",".join("?" * len(batch))
                    for key, rows, dims, data in self._db.execute(
                        f"SELECT key, rows, dims, data FROM vectors WHERE key IN ({marks})", batch
                    ):
                        found[key] = np.frombuffer(data, dtype=np.float32).reshape(rows, dims)
        except Error as exc:
            log.warning("embedding cache read failed (treated as a miss): %s", exc)
        return found

    def put_many(self, items: dict[bytes, np.ndarray]) -> None:
        if not items:
            return
        rows = [(key, v.shape[0], v.shape[1], v.astype(np.float32).tobytes()) for key, v in items.items()]
        try:
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
        except Error as exc:
            log.warning("embedding cache write failed (vectors will be recomputed later): %s", exc)
            self._rollback()

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM vectors")

    def _rollback(self) -> None:
        try:
            with self._lock:
                self._db.execute("ROLLBACK")
        except Error:
            pass

    def close(self) -> None:
        with self._lock:
            self._db.close()
