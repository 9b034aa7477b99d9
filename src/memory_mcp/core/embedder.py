"""One GGUF embedding model run in-process by llama.cpp: the only module that imports llama_cpp.

It knows the model's identity (file hash), dimensions, pooling and query/document prefixes, splits texts
longer than the context into overlapping chunks by the model's own tokenizer instead of truncating them,
and returns L2-normalised vectors. llama.cpp contexts are not thread-safe, so every call holds one lock;
callers run it off the event loop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from memory_mcp.errors import Unavailable

log = logging.getLogger(__name__)

CHUNK_OVERLAP: Final = 32
"""Tokens shared by neighbouring chunks, so a sentence cut at a boundary is still whole in one of them."""
MAX_CONTEXT: Final = 512
"""Chunk length cap: attention cost grows with the square of it, and most embedding models train at 512."""

# Prefixes the model families were trained with (query, document).
_FAMILY_PREFIXES: Final = (
    ("bge", ("Represent this sentence for searching relevant passages: ", "")),
    ("e5", ("query: ", "passage: ")),
    ("nomic", ("search_query: ", "search_document: ")),
)
_POOLING_NAMES: Final = {0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}

MODEL_HELP: Final = (
    "Provide a GGUF embedding model with --model PATH or the MEMORY_MCP_MODEL environment variable "
    "(for example bge-small-en-v1.5-q8_0.gguf or all-MiniLM-L6-v2-q8_0.gguf)."
)


@dataclass(frozen=True)
class ModelInfo:
    path: str
    identity: str
    """sha256 of the model file: the key under which cached vectors stay valid."""
    name: str
    dimensions: int
    context: int
    pooling: str
    query_prefix: str
    document_prefix: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Embedder:
    """Loads the model once; `embed_documents` and `embed_query` are the whole interface."""

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int | None = None,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
    ) -> None:
        if not model_path.is_file():
            raise Unavailable(f"embedding model not found at {model_path}. {MODEL_HELP}")
        started = time.perf_counter()
        self._llm = _load(model_path, threads)
        self._lock = threading.Lock()
        self.info = self._describe(model_path, query_prefix, document_prefix)
        log.info(
            "loaded embedding model %s (%d dims, %s pooling, context %d) in %.2fs",
            self.info.name, self.info.dimensions, self.info.pooling, self.info.context,
            time.perf_counter() - started,
        )

    def _describe(self, path: Path, query_prefix: str | None, document_prefix: str | None) -> ModelInfo:
        meta = self._llm.metadata
        name = meta.get("general.name") or path.stem
        family_query, family_document = _family_prefixes(f"{name} {path.name}")
        pooling = _POOLING_NAMES.get(int(self._llm.pooling_type()), "unknown")
        return ModelInfo(
            path=str(path),
            identity=file_sha256(path),
            name=name,
            dimensions=int(self._llm.n_embd()),
            context=int(self._llm.n_ctx()),
            pooling=pooling,
            query_prefix=family_query if query_prefix is None else query_prefix,
            document_prefix=family_document if document_prefix is None else document_prefix,
        )

    def close(self) -> None:
        """Free llama.cpp's memory now rather than at interpreter exit (where it can fail)."""
        with self._lock:
            self._llm.close()

    # ------------------------------------------------------------------ public

    def embed_query(self, text: str) -> np.ndarray:
        """One normalised vector for a search query (long queries are averaged over their chunks)."""
        vectors = self._embed_chunks(self._chunk(self.info.query_prefix, text))
        return _normalise(vectors.mean(axis=0, keepdims=True))[0]

    def embed_documents(self, texts: list[str]) -> list[np.ndarray]:
        """For each text, an array of normalised vectors, one per chunk (row 0 is the text's start)."""
        chunked = [self._chunk(self.info.document_prefix, text) for text in texts]
        flat = [chunk for chunks in chunked for chunk in chunks]
        vectors = self._embed_chunks(flat)
        out, start = [], 0
        for chunks in chunked:
            out.append(vectors[start : start + len(chunks)])
            start += len(chunks)
        return out

    # ----------------------------------------------------------------- private

    def _chunk(self, prefix: str, text: str) -> list[str]:
        """The text with its prefix, split into windows that fit the context."""
        with self._lock:
            tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            budget = self.info.context - 2 - len(self._llm.tokenize(prefix.encode(), add_bos=False)) - 8
            if len(tokens) <= budget:
                return [prefix + text]
            step = budget - CHUNK_OVERLAP
            windows = [tokens[i : i + budget] for i in range(0, len(tokens) - CHUNK_OVERLAP, step)]
            return [prefix + self._llm.detokenize(w).decode("utf-8", "replace").strip() for w in windows]

    def _embed_chunks(self, chunks: list[str]) -> np.ndarray:
        if not chunks:
            return np.zeros((0, self.info.dimensions), dtype=np.float32)
        with self._lock:
            raw = self._llm.embed(chunks, normalize=False, truncate=True)
        rows = [np.asarray(r, dtype=np.float32) for r in raw]
        # Pooling "none" yields one vector per token: mean-pool them ourselves.
        rows = [r.mean(axis=0) if r.ndim == 2 else r for r in rows]
        return _normalise(np.vstack(rows))


def _load(model_path: Path, threads: int | None):
    import llama_cpp  # deferred: importing it costs ~0.3 s, and CLI help should not pay it

    def open_model(context: int):
        return llama_cpp.Llama(
            model_path=str(model_path),
            embedding=True,
            verbose=False,
            n_ctx=context,
            n_batch=context,
            n_ubatch=context,
            n_threads=threads or max(1, min(4, os.cpu_count() or 1)),
        )

    try:
        llm = open_model(MAX_CONTEXT)
        meta = llm.metadata
        trained = int(meta.get(f"{meta.get('general.architecture')}.context_length") or MAX_CONTEXT)
        if trained < MAX_CONTEXT:  # rare: a model trained on shorter inputs than our cap
            llm.close()
            llm = open_model(trained)
        return llm
    except (ValueError, RuntimeError, OSError) as exc:
        raise Unavailable(f"could not load embedding model {model_path}: {exc}. {MODEL_HELP}") from exc


def _family_prefixes(description: str) -> tuple[str, str]:
    words = set(re.split(r"[^a-z0-9]+", description.lower()))
    for marker, prefixes in _FAMILY_PREFIXES:
        if marker in words:
            return prefixes
    return ("", "")


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
