"""One GGUF embedding model run in-process by llama.cpp: the only module that imports llama_cpp.

It knows the model's identity (file hash), dimensions, pooling and query/document prefixes, splits texts
longer than the context into overlapping chunks by the model's own tokenizer instead of truncating them,
and returns L2-normalised vectors. llama.cpp contexts are not thread-safe, so one worker thread owns the
model; callers (never the event loop) block on its answer. One thread matters for speed too: llama.cpp's
OpenMP keeps a thread team per calling thread, and two teams on the same cores ran each query at half speed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from memory_mcp.errors import Busy, Unavailable

log = logging.getLogger(__name__)

CHUNK_OVERLAP: Final = 32
"""Tokens shared by neighbouring chunks, so a sentence cut at a boundary is still whole in one of them."""
QUEUE_LIMIT: Final = 256
"""Requests waiting for the model before new ones are refused with `Busy`."""
MAX_BATCH_TEXTS: Final = 256
"""Queries gathered into one model call."""
DOCUMENT_SLICE: Final = 16
"""Document texts per model call (about 0.4 s with MiniLM on 2 cores): a query arriving during a bulk import
waits for one slice, not for the whole import."""
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


EmbedObserver = Callable[[int, float], None]
"""Told (chunks embedded, seconds taken) after every model call: the metrics hook."""


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
    threads: int
    """CPU threads llama.cpp computes embeddings with."""


class EmbeddingModel(Protocol):
    """The port the indexer and the service embed through: `Embedder` (llama.cpp) is the real adapter and
    `memory_mcp.core.hashing_embedder.HashingEmbedder` the deterministic one for tests of the service's rules."""

    info: ModelInfo

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the model."""

    def embed_query(self, text: str) -> np.ndarray:
        """One unit vector for a search query."""

    def embed_documents(self, texts: list[str]) -> list[np.ndarray]:
        """For each text, an array of unit vectors, one per chunk (row 0 is the text's start)."""

    def close(self) -> None:
        """Release the model; later calls raise `Unavailable`."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(eq=False)  # a request is itself, whatever its texts: it is removed from the queue by identity
class _Request:
    """Texts to embed (each with its prefix), answered through `future` with one array per text."""

    items: list[tuple[str, str]]
    future: Future = field(default_factory=Future)
    pooled: bool = False
    """A query: answer with one vector (the mean of its chunks) instead of a list of chunk arrays."""
    done: list[np.ndarray] = field(default_factory=list)
    """Arrays of the items embedded so far (documents are embedded a slice at a time)."""


class Embedder:
    """Loads the model once and owns it from a single worker thread.

    Requests that arrive while the model is busy are embedded together in the worker's next model call
    (batching is where a CPU model gains throughput). Queries go first and documents are embedded a slice at a
    time, so a search is not stuck behind a bulk import. A bounded queue refuses work with `Busy` instead of
    growing without limit.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int | None = None,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        queue_limit: int = QUEUE_LIMIT,
        observer: EmbedObserver | None = None,
    ) -> None:
        if not model_path.is_file():
            raise Unavailable(f"embedding model not found at {model_path}. {MODEL_HELP}")
        started = time.perf_counter()
        self._llm = _load(model_path, threads)
        self.info = self._describe(model_path, query_prefix, document_prefix)
        self._observer = observer
        self._queue_limit = queue_limit
        self._ready = threading.Condition()
        self._queries: deque[_Request] = deque()
        self._documents: deque[_Request] = deque()
        self._closing = False
        self._worker = threading.Thread(target=self._serve, name="embedder", daemon=True)
        self._worker.start()
        log.info(
            "loaded embedding model %s (%d dims, %s pooling, context %d, %d threads) in %.2fs",
            self.info.name,
            self.info.dimensions,
            self.info.pooling,
            self.info.context,
            self.info.threads,
            time.perf_counter() - started,
        )

    def _describe(self, path: Path, query_prefix: str | None, document_prefix: str | None) -> ModelInfo:
        import llama_cpp  # loaded already by `_load`

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
            threads=int(llama_cpp.llama_n_threads_batch(self._llm.ctx)),
        )

    def close(self) -> None:
        """Finish queued work, stop the worker and free llama.cpp's memory now rather than at interpreter exit
        (where it can fail)."""
        if self._worker.is_alive():
            with self._ready:
                self._closing = True
                self._ready.notify()
            self._worker.join()
            self._llm.close()

    @property
    def queue_depth(self) -> int:
        return len(self._queries) + len(self._documents)

    # ------------------------------------------------------------------ public

    def embed_query(self, text: str) -> np.ndarray:
        """One normalised vector for a search query (long queries are averaged over their chunks)."""
        return self._submit(_Request([(self.info.query_prefix, text)], pooled=True)).result()

    def embed_documents(self, texts: list[str]) -> list[np.ndarray]:
        """For each text, an array of normalised vectors, one per chunk (row 0 is the text's start)."""
        if not texts:
            return []
        return self._submit(_Request([(self.info.document_prefix, text) for text in texts])).result()

    # ----------------------------------------------------------------- worker

    def _submit(self, request: _Request) -> Future:
        with self._ready:
            if self._closing or not self._worker.is_alive():
                raise Unavailable("the embedding model has been closed")
            if self.queue_depth >= self._queue_limit:
                raise Busy(
                    f"the embedding queue is full ({self._queue_limit} requests waiting); retry shortly"
                )
            (self._queries if request.pooled else self._documents).append(request)
            self._ready.notify()
        return request.future

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not (self._queries or self._documents or self._closing):
                    self._ready.wait()
                work = self._next_work()
            if not work:
                return
            self._answer(work)

    def _next_work(self) -> list[tuple[_Request, list[tuple[str, str]]]]:
        """Every waiting query, then document texts from the oldest requests up to DOCUMENT_SLICE (hold
        `_ready`). Each pair is a request and the items of it that this model call embeds."""
        work = []
        texts = 0
        while self._queries and texts < MAX_BATCH_TEXTS:
            query = self._queries.popleft()
            work.append((query, query.items))
            texts += len(query.items)
        budget = DOCUMENT_SLICE
        for request in self._documents:
            if budget == 0:
                break
            start = len(request.done)
            items = request.items[start : start + budget]
            work.append((request, items))
            budget -= len(items)
        return work

    def _answer(self, work: list[tuple[_Request, list[tuple[str, str]]]]) -> None:
        started = time.perf_counter()
        try:
            chunked = [[self._chunk(prefix, text) for prefix, text in items] for _, items in work]
            flat = [chunk for per_request in chunked for chunks in per_request for chunk in chunks]
            vectors = self._embed_chunks(flat)
        except Exception as exc:  # noqa: BLE001 - every waiting caller must hear about a model failure
            self._finish([request for request, _ in work], exc)
            return
        start, finished = 0, []
        for (request, _), per_request in zip(work, chunked, strict=True):
            for chunks in per_request:
                request.done.append(vectors[start : start + len(chunks)])
                start += len(chunks)
            if len(request.done) == len(request.items):
                finished.append(request)
        self._finish(finished)
        if self._observer is not None:
            self._observer(len(flat), time.perf_counter() - started)

    def _finish(self, requests: list[_Request], error: Exception | None = None) -> None:
        with self._ready:
            for request in requests:
                if not request.pooled:
                    self._documents.remove(request)
        for request in requests:
            if error is not None:
                request.future.set_exception(error)
            elif request.pooled:
                request.future.set_result(_pool(request.done[0]))
            else:
                request.future.set_result(request.done)

    def _chunk(self, prefix: str, text: str) -> list[str]:
        """The text with its prefix, split into windows that fit the context."""
        budget = self.info.context - 2 - len(prefix.encode()) - 8
        if len(text.encode("utf-8")) <= budget:  # a token is at least one byte: it fits without tokenizing
            return [prefix + text]
        tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) <= budget:
            return [prefix + text]
        step = budget - CHUNK_OVERLAP
        windows = [tokens[i : i + budget] for i in range(0, len(tokens) - CHUNK_OVERLAP, step)]
        return [prefix + self._llm.detokenize(w).decode("utf-8", "replace").strip() for w in windows]

    def _embed_chunks(self, chunks: list[str]) -> np.ndarray:
        raw = self._llm.embed(chunks, normalize=False, truncate=True)
        if self.info.pooling == "none":  # one vector per token: mean-pool them ourselves
            return _normalise(np.vstack([np.asarray(r, dtype=np.float32).mean(axis=0) for r in raw]))
        return _normalise(np.asarray(raw, dtype=np.float32))


def _load(model_path: Path, threads: int | None):
    import llama_cpp  # deferred: importing it costs ~0.3 s, and CLI help should not pay it

    threads = threads or default_threads()

    def open_model(context: int):
        return llama_cpp.Llama(
            model_path=str(model_path),
            embedding=True,
            verbose=False,
            n_ctx=context,
            n_batch=context,
            n_ubatch=context,
            n_threads=threads,
            n_threads_batch=threads,  # what embedding uses; llama-cpp-python's default is every host CPU
            # Measured with MiniLM on 2 cores: 40% more documents per second and 11 MB less memory (no
            # attention matrix is materialised), with the same vectors (cosine > 0.9997).
            flash_attn=True,
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


def default_threads() -> int:
    """The CPUs this process may run on (a container's cpuset, not the host's count), at most 4: beyond that
    a small embedding model gains little and a shared machine loses much."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


def _family_prefixes(description: str) -> tuple[str, str]:
    words = set(re.split(r"[^a-z0-9]+", description.lower()))
    for marker, prefixes in _FAMILY_PREFIXES:
        if marker in words:
            return prefixes
    return ("", "")


def _normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, in place (float32 rows)."""
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


def _pool(chunks: np.ndarray) -> np.ndarray:
    """One unit vector for a query from its chunks' unit vectors (almost always one: it is the answer)."""
    if len(chunks) == 1:
        return chunks[0]
    return _normalise(chunks.mean(axis=0, keepdims=True))[0]
