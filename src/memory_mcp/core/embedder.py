"""One GGUF embedding model run in-process by llama.cpp: the only module that imports llama_cpp.

It knows the model's identity (file hash), dimensions, pooling and query/document prefixes, splits texts
longer than the context into overlapping chunks by the model's own tokenizer instead of truncating them,
and returns L2-normalised vectors. One worker thread makes every model call (a llama.cpp context is not
thread-safe); callers (never the event loop) block on the answer, and what the worker runs next (queries
first, documents in token-bounded calls) is `embedding_queue`'s policy. Only the worker calls, because
llama.cpp's OpenMP keeps a thread team per calling thread: while a second thread that has called the model
lives, every call is about 2.5× slower (a query 1.8 → 4.6 ms on a 2-core VM, bench/RESULTS.md "Round 12";
libgomp spins far less once it manages more threads than there are CPUs). The hand-over costs ~0.4 ms.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from memory_mcp.core import cancellation
from memory_mcp.core.embedding_queue import (
    QUEUE_LIMIT,
    EmbeddingQueue,
    Request,
    Slice,
    fail,
)
from memory_mcp.errors import Cancelled, Unavailable
from memory_mcp.files import file_sha256

log = logging.getLogger(__name__)

CHUNK_OVERLAP: Final = 32
"""Tokens shared by neighbouring chunks, so a sentence cut at a boundary is still whole in one of them."""
CLOSE_WAIT: Final = 3.0
"""Seconds `close` waits for the model call under way (about 0.4 s normally) before giving up on it."""
MAX_CONTEXT: Final = 256
"""Chunk length cap, in tokens. llama.cpp keeps an output buffer of (vocabulary + dimensions) floats for every
token of its longest call, for logits an embedding model never writes: with MiniLM's 30,522-word vocabulary,
60 MiB of the process at 512 tokens, 30 MiB at 256 (`bench/RESULTS.md`, round 15). Two chunks of 256 embed
as fast as one of 512, and MiniLM itself was trained on 128 and is run at 256 by sentence-transformers.
Vectors stored under another cap stay valid (same model, same space): a change of it re-embeds nothing."""

# Prefixes the model families were trained with (query, document).
_FAMILY_PREFIXES: Final = (
    ("bge", ("Represent this sentence for searching relevant passages: ", "")),
    ("e5", ("query: ", "passage: ")),
    ("nomic", ("search_query: ", "search_document: ")),
)
_POOLING_NAMES: Final = {0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}
UNRELATED: Final = (
    "The train to the airport leaves every twenty minutes.",
    "Photosynthesis turns sunlight into chemical energy.",
    "Her grandmother knitted a red wool scarf.",
    "The quarterly tax return is due in April.",
    "Volcanoes release ash and sulphur dioxide.",
    "He tuned the guitar before the concert.",
    "Bake the bread at 220 degrees for half an hour.",
    "The database index speeds up lookups by key.",
)
"""Sentences about unrelated things: their mean similarity is where this model's scale starts."""

MODEL_HELP: Final = (
    "Provide a GGUF embedding model with --model PATH or the MEMORY_MCP_MODEL environment variable "
    "(for example bge-small-en-v1.5-q8_0.gguf or all-MiniLM-L6-v2-q8_0.gguf), or leave both unset for the "
    "pinned default."
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
    unrelated_similarity: float = 0.0
    """Mean cosine between unrelated documents (`UNRELATED`), measured at load: models differ widely (MiniLM
    about 0.03, BGE about 0.5), so similarity thresholds are placed relative to it."""


class EmbeddingModel(Protocol):
    """The port the indexer and the service embed through: `Embedder` (llama.cpp) is the real adapter and
    `memory_mcp.core.hashing_embedder.HashingEmbedder` the deterministic one for tests of the service's rules."""

    info: ModelInfo

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the model."""

    def embed_query(self, text: str) -> np.ndarray:
        """One unit vector for a search query."""

    def embed_documents(self, texts: list[str], *, background: bool = False) -> list[np.ndarray]:
        """For each text, an array of unit vectors, one per chunk (row 0 is the text's start); `background`
        work waits behind every other."""

    def chunk_count(self, text: str) -> int:
        """How many chunks (model inputs) a document text becomes: the cost of embedding it."""

    def close(self) -> None:
        """Release the model; later calls raise `Unavailable`."""


class Embedder:
    """Loads the model once and owns it from a single worker thread.

    Requests that arrive while the model is busy are embedded together in the worker's next model call
    (batching is where a CPU model gains throughput); `EmbeddingQueue` decides which, so a search waits for
    at most one bounded call however large the documents, cancelled requests are dropped and a full queue
    refuses work with `Busy`.
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
        self._observer: EmbedObserver | None = None
        self._queue = EmbeddingQueue(queue_limit)
        self._vocabulary = threading.Condition()
        """Guards `_closing` and `_tokenizing` (callers tokenize on their own threads)."""
        self._tokenizing = 0
        self._closing = False
        self._worker = threading.Thread(target=self._serve, name="embedder", daemon=True)
        self._worker.start()
        try:
            self.info = replace(self.info, unrelated_similarity=self._unrelated_similarity())
        except BaseException:
            self.close()  # the worker and the model would outlive a failed start
            raise
        self._observer = observer  # from here on: the start's own call is no embedding work to report
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

    def _unrelated_similarity(self) -> float:
        """The mean cosine similarity of unrelated texts (one model call on the worker, a few ms)."""
        vectors = np.vstack([rows[0] for rows in self.embed_documents(list(UNRELATED))])
        similarities = vectors @ vectors.T
        off_diagonal = similarities[~np.eye(len(UNRELATED), dtype=bool)]
        return round(float(off_diagonal.mean()), 4)

    def close(self) -> None:
        """Refuse new and queued work, finish the model call and the tokenizations under way (each bounded),
        stop the worker and free llama.cpp's memory now rather than at interpreter exit (which can fail)."""
        with self._vocabulary:
            if self._closing:
                return
            self._closing = True
        fail(self._queue.close(), Unavailable("the server is shutting down; retry once it is back"))
        self._worker.join(CLOSE_WAIT)
        with self._vocabulary:
            idle = self._vocabulary.wait_for(lambda: not self._tokenizing, CLOSE_WAIT)
        # a model call on a starved CPU: let the process end without it
        if not idle or self._worker.is_alive():
            log.warning("the embedding model is still busy; stopping without waiting for it")
            return
        self._llm.close()

    @property
    def queue_depth(self) -> int:
        return self._queue.depth

    # ------------------------------------------------------------------ public

    def embed_query(self, text: str) -> np.ndarray:
        """One normalised vector for a search query (long queries are averaged over their chunks)."""
        return self._submit(self._request(self.info.query_prefix, [text], "query")).result()

    def embed_documents(self, texts: list[str], *, background: bool = False) -> list[np.ndarray]:
        """For each text, an array of normalised vectors, one per chunk (row 0 is the text's start).

        `background` work waits behind every query and foreground document."""
        if not texts:
            return []
        kind = "background" if background else "document"
        return self._submit(self._request(self.info.document_prefix, texts, kind)).result()

    def chunk_count(self, text: str) -> int:
        """How many chunks (model inputs) a document text becomes: the cost of embedding it."""
        with self._tokenizer():
            return len(self._chunk(self.info.document_prefix, text))

    # ----------------------------------------------------------------- worker

    def _request(self, prefix: str, texts: list[str], kind: str) -> Request:
        """Chunked in the caller's thread: tokenizing reads only the vocabulary, never the model's context."""
        with self._tokenizer():
            per_text = [self._chunk(prefix, text) for text in texts]
        chunks = [chunk for pieces in per_text for chunk, _ in pieces]
        tokens = [count for pieces in per_text for _, count in pieces]
        return Request(chunks, tokens, [len(p) for p in per_text], kind, cancellation.current())

    def _check_open(self) -> None:
        if self._closing:
            raise Unavailable("the embedding model has been closed")

    @contextmanager
    def _tokenizer(self) -> Iterator[None]:
        """Held while a caller's thread tokenizes: `close` frees the model only once none does (a tokenizer
        used after its model was freed crashed the process), and refuses new ones from its start."""
        with self._vocabulary:
            self._check_open()
            self._tokenizing += 1
        try:
            yield
        finally:
            with self._vocabulary:
                self._tokenizing -= 1
                self._vocabulary.notify_all()

    def _submit(self, request: Request) -> Future:
        self._check_open()
        return self._queue.submit(request)

    def _serve(self) -> None:
        while (taken := self._queue.take()) is not None:
            work, dropped = taken
            fail(dropped, Cancelled("the request was cancelled or its client went away"))
            if work:
                self._answer(work)

    def _answer(self, work: list[Slice]) -> None:
        started = time.perf_counter()
        flat = [chunk for request, start, end in work for chunk in request.chunks[start:end]]
        try:
            vectors = self._embed_chunks(flat)
        except Exception as exc:  # noqa: BLE001 - every waiting caller must hear about a model failure
            requests = list(dict.fromkeys(request for request, _, _ in work))
            self._queue.finish(requests)
            fail(requests, exc)
            return
        position, finished = 0, []
        for request, start, end in work:
            request.rows.append(vectors[position : position + end - start])
            position += end - start
            if end == len(request.chunks):
                finished.append(request)
        self._queue.finish(finished)
        for request in finished:
            if not request.future.done():  # a shutdown may have refused it meanwhile
                request.future.set_result(_result(request))
        if self._observer is not None:
            self._observer(len(flat), time.perf_counter() - started)

    def _chunk(self, prefix: str, text: str) -> list[tuple[str, int]]:
        """The text with its prefix, split into windows that fit the context, each with its token count."""
        budget = self.info.context - 2 - len(prefix.encode()) - 8
        tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) <= budget:
            return [(prefix + text, len(tokens) + 2)]
        step = budget - CHUNK_OVERLAP
        windows = [tokens[i : i + budget] for i in range(0, len(tokens) - CHUNK_OVERLAP, step)]
        return [
            (prefix + self._llm.detokenize(w).decode("utf-8", "replace").strip(), len(w) + 2) for w in windows
        ]

    def _embed_chunks(self, chunks: list[str]) -> np.ndarray:
        raw = self._llm.embed(chunks, normalize=False, truncate=True)
        if self.info.pooling == "none":  # one vector per token: mean-pool them ourselves
            return _normalise(np.vstack([np.asarray(r, dtype=np.float32).mean(axis=0) for r in raw]))
        return _normalise(np.asarray(raw, dtype=np.float32))


def _result(request: Request) -> np.ndarray | list[np.ndarray]:
    rows = np.vstack(request.rows)
    if request.kind == "query":
        return _pool(rows)
    bounds = np.cumsum(request.counts)[:-1]
    return list(np.split(rows, bounds))


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
