"""A deterministic stand-in for the embedding model: words hashed into a normalised vector.

The test double shipped beside the `EmbeddingModel` port, so the service's rules (no-overwrite,
near-duplicates, conflicts, scopes, moves, pagination) can be tested in milliseconds without a GGUF file.
Texts sharing words point the same way, identical texts have similarity 1, texts with no word in common
are (almost) orthogonal. It has no notion of meaning, so recall quality is tested against the real model.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

import numpy as np

from memory_mcp.core.embedder import ModelInfo
from memory_mcp.errors import Unavailable

DIMENSIONS: Final = 256
_WORD: Final = re.compile(r"\w+")


class HashingEmbedder:
    """Each lower-cased word adds ±1 to one of `dimensions` slots (both chosen by its sha256); one chunk per
    text, so chunking is not exercised here."""

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self.info = ModelInfo(
            path="(hashing)",
            identity=f"hashing-{dimensions}",
            name="hashing",
            dimensions=dimensions,
            context=512,
            pooling="mean",
            query_prefix="",
            document_prefix="",
            threads=1,
        )
        self._closed = False

    @property
    def queue_depth(self) -> int:
        return 0

    def embed_query(self, text: str) -> np.ndarray:
        self._check_open()
        return self._vector(text)

    def embed_documents(self, texts: list[str], *, background: bool = False) -> list[np.ndarray]:
        self._check_open()
        return [self._vector(text)[np.newaxis, :] for text in texts]

    def chunk_count(self, text: str) -> int:
        return 1

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the embedding model has been closed")

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.info.dimensions, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.sha256(word.encode()).digest()
            slot = int.from_bytes(digest[:4], "little") % self.info.dimensions
            vector[slot] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # no words at all: any fixed unit vector will do
            vector[0], norm = 1.0, 1.0
        return vector / norm
