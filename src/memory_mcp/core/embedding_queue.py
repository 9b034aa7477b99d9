"""The embedder's queue: which waiting chunks the next model call embeds.

Every model call is bounded by tokens, not texts: queries go first, then documents a few chunks at a time,
then background work (large memories embedded after their commit), so a search waits for at most one bounded
call, however large the documents. A request whose caller cancelled is dropped. A bounded queue refuses work
with `Busy` instead of growing without limit. Any thread submits; the embedder's one worker takes. The model
itself is `embedder`'s; this is only the policy of what it runs next.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from memory_mcp.errors import Busy, Unavailable

QUEUE_LIMIT: Final = 256
"""Requests waiting for the model before new ones are refused with `Busy`."""
MAX_BATCH_TEXTS: Final = 256
"""Query chunks gathered into one model call."""
DOCUMENT_TOKENS: Final = 2048
"""Document tokens per model call (eight full chunks; about 0.4 s with MiniLM on 2 cores): a query arriving
during document work waits for one such call, not for the documents."""
KINDS: Final = ("query", "document", "background")


@dataclass(eq=False)  # a request is itself, whatever its texts: it is removed from the queue by identity
class Request:
    """Texts to embed, already cut into chunks; answered through `future` with one array per text."""

    chunks: list[str]
    """Every chunk of every text, with its prefix, in order."""
    tokens: list[int]
    """Tokens per chunk: what a model call costs."""
    counts: list[int]
    """Chunks per text."""
    kind: str = "document"
    """`query` (answered with one pooled vector), `document`, or `background` (after every other kind)."""
    cancel: threading.Event | None = None
    future: Future = field(default_factory=Future)
    rows: list[np.ndarray] = field(default_factory=list)
    """Vectors of the chunks embedded so far (documents are embedded a few chunks per model call)."""
    taken: int = 0
    """Chunks handed to the model so far."""

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


Slice = tuple[Request, int, int]
"""A request and the range of its chunks that one model call embeds."""


class EmbeddingQueue:
    """Requests waiting for the model, one queue per kind, under one condition the worker waits on."""

    def __init__(self, limit: int = QUEUE_LIMIT) -> None:
        self._limit = limit
        self._ready = threading.Condition()
        self._queues: dict[str, deque[Request]] = {kind: deque() for kind in KINDS}
        self._closing = False

    @property
    def depth(self) -> int:
        """Requests waiting (a document being embedded counts until its last chunk is done)."""
        return sum(len(queue) for queue in self._queues.values())

    def submit(self, request: Request) -> Future:
        """Queue a request; its future gets the answer. Refused once closed, or when the queue is full."""
        with self._ready:
            if self._closing:
                raise Unavailable("the embedding model has been closed")
            if self.depth >= self._limit:
                raise Busy(f"the embedding queue is full ({self._limit} requests waiting); retry shortly")
            self._queues[request.kind].append(request)
            self._ready.notify()
        return request.future

    def take(self) -> tuple[list[Slice], list[Request]] | None:
        """Wait for work: the next model call's chunks and the cancelled requests taken out meanwhile (the
        caller fails those); None once the queue is closed."""
        with self._ready:
            while not (self.depth or self._closing):
                self._ready.wait()
            if self._closing:
                return None
            return self._next_work()

    def finish(self, requests: list[Request]) -> None:
        """Take answered (or failed) requests out of their queues."""
        with self._ready:
            for request in requests:
                queue = self._queues[request.kind]
                if request in queue:
                    queue.remove(request)

    def close(self) -> list[Request]:
        """Refuse further work and wake the worker; returns the requests that were waiting (to be failed)."""
        with self._ready:
            self._closing = True
            dropped = [request for queue in self._queues.values() for request in queue]
            for queue in self._queues.values():
                queue.clear()
            self._ready.notify()
        return dropped

    def _next_work(self) -> tuple[list[Slice], list[Request]]:
        """The chunks of the next model call (hold `_ready`): every waiting query; or, with none waiting,
        chunks from the oldest documents, then background work, up to DOCUMENT_TOKENS (at least one chunk).
        Also the cancelled requests, taken out of the queues."""
        work: list[Slice] = []
        dropped = [r for queue in self._queues.values() for r in queue if r.cancelled]
        for request in dropped:
            self._queues[request.kind].remove(request)
        queries = self._queues["query"]
        texts = 0
        while queries and texts < MAX_BATCH_TEXTS:
            query = queries.popleft()
            work.append((query, 0, len(query.chunks)))
            texts += len(query.chunks)
        if work:  # a call of queries alone is the shortest: documents wait for the next one
            return work, dropped
        budget = DOCUMENT_TOKENS
        for kind in ("document", "background"):
            for request in self._queues[kind]:
                start = end = request.taken
                first = not work  # the call's first chunk goes whatever its size
                while end < len(request.chunks) and (request.tokens[end] <= budget or first and end == start):
                    budget -= request.tokens[end]
                    end += 1
                if end > start:
                    work.append((request, start, end))
                    request.taken = end
                if end < len(request.chunks):
                    return work, dropped
        return work, dropped


def fail(requests: list[Request], error: Exception) -> None:
    """Answer each request not yet answered with `error`."""
    for request in requests:
        if not request.future.done():
            request.future.set_exception(error)
