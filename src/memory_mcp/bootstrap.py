"""The composition root: settings → the running parts. The only place that wires store, embedder, cache,
indexer, service and metrics together, for the CLI (synchronously) and for the servers (in the background,
so a client's handshake never waits for the model)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from memory_mcp.config import Settings
from memory_mcp.core.embedder import MODEL_HELP, Embedder
from memory_mcp.core.embedding_cache import EmbeddingCache
from memory_mcp.core.indexer import Indexer, Progress
from memory_mcp.core.service import MemoryService
from memory_mcp.core.store import Author, GitStore
from memory_mcp.errors import MemoryMcpError, Unavailable
from memory_mcp.metrics import Metrics

log = logging.getLogger(__name__)

CACHE_FILE: Final = "embeddings.sqlite"
SNAPSHOT_DIR: Final = "snapshots"
SNAPSHOT_INTERVAL: Final = 30.0
"""Seconds between snapshot saves while writes happen; a crash loses at most this much catch-up work."""
PARTS: Final = ("repo", "model", "index")

State = Literal["pending", "ready", "rebuilding", "failed"]


def build_service(settings: Settings, progress: Progress | None = None, metrics: Metrics | None = None) -> MemoryService:
    """Everything, synchronously; the index has caught up with the repository on return."""
    indexer = _indexer(settings, _store(settings, metrics), _embedder(settings, metrics))
    indexer.open(progress)
    return MemoryService(indexer)


def _store(settings: Settings, metrics: Metrics | None) -> GitStore:
    return GitStore(
        settings.repo_path, branch=settings.branch, author=Author(settings.author_name, settings.author_email),
        on_commit=metrics.observe_commit if metrics else None,
    )


def _embedder(settings: Settings, metrics: Metrics | None) -> Embedder:
    if settings.model is None:
        raise Unavailable(f"no embedding model configured. {MODEL_HELP}")
    return Embedder(
        settings.model,
        threads=settings.threads,
        query_prefix=settings.query_prefix,
        document_prefix=settings.document_prefix,
        observer=metrics.observe_embedding if metrics else None,
    )


def _indexer(settings: Settings, store: GitStore, embedder: Embedder) -> Indexer:
    state = settings.state_dir
    return Indexer(store, embedder, EmbeddingCache(state / CACHE_FILE), snapshots=state / SNAPSHOT_DIR)


@dataclass
class PartStatus:
    state: State = "pending"
    detail: str = ""
    seconds: float | None = None


@dataclass
class Runtime:
    """A server's parts, started in a background thread; `/readyz`, `/metrics` and every tool call consult it."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    parts: dict[str, PartStatus] = field(default_factory=lambda: {name: PartStatus() for name in PARTS})
    _service: MemoryService | None = None
    _error: MemoryMcpError | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._start, name="memory-mcp-start", daemon=True).start()

    def _start(self) -> None:
        try:
            store = self._step("repo", lambda: _store(self.settings, self.metrics), lambda s: str(s.root))
            embedder = self._step("model", lambda: _embedder(self.settings, self.metrics), lambda e: e.info.name)
            indexer = _indexer(self.settings, store, embedder)
            self._step("index", indexer.open, lambda _: f"{len(indexer.catalog)} memories")
            self._service = MemoryService(indexer)
            self._watch(indexer)
        except MemoryMcpError as exc:
            self._error = exc
        except Exception as exc:  # noqa: BLE001 - any start-up crash must surface as "not ready", not hang
            log.exception("start-up failed")
            self._error = Unavailable(f"start-up failed: {exc}")
        finally:
            self._done.set()
        if self._service is not None:
            self._maintain(self._service.indexer)

    def _step(self, part: str, build: Callable, describe: Callable):
        status = self.parts[part]
        started = time.perf_counter()
        try:
            value = build()
        except Exception as exc:
            status.state, status.detail = "failed", str(exc)
            log.error("%s failed: %s", part, exc)
            raise
        status.state, status.detail = "ready", describe(value)
        status.seconds = round(time.perf_counter() - started, 3)
        return value

    def _watch(self, indexer: Indexer) -> None:
        self.metrics.watch(
            memories=lambda: len(indexer.catalog),
            chunks=lambda: len(indexer.catalog.vectors),
            queue=lambda: indexer.embedder.queue_depth,
            pending=lambda: indexer.pending_vectors,
        )

    def _maintain(self, indexer: Indexer) -> None:
        """After start-up: give vectors to memories that lack them (model changed), then save snapshots."""
        if indexer.pending_vectors:
            status = self.parts["index"]
            status.state = "rebuilding"

            def report(done: int, total: int) -> None:
                status.detail = f"embedding with the new model: {done}/{total}; keyword search covers the rest"

            try:
                indexer.fill_vectors(report)
            except MemoryMcpError as exc:  # the model closed under us: shutting down
                log.info("stopped filling vectors: %s", exc)
                return
            status.state, status.detail = "ready", f"{len(indexer.catalog)} memories"
        while not self._stopping.wait(SNAPSHOT_INTERVAL):
            try:
                indexer.save_snapshot()
            except OSError as exc:
                log.warning("could not save the index snapshot (will retry): %s", exc)

    @property
    def ready(self) -> bool:
        return self._service is not None

    def readiness(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "parts": {name: {k: v for k, v in vars(s).items() if v is not None} for name, s in self.parts.items()},
        }

    def wait(self, timeout: float) -> MemoryService:
        """The service once started; raises `Unavailable` if start-up failed or takes longer than `timeout`."""
        if not self._done.wait(timeout):
            raise Unavailable("memory-mcp is still starting (loading the model and index); retry in a few seconds")
        if self._service is None:
            raise self._error or Unavailable("start-up failed")
        return self._service

    def close(self) -> None:
        self._stopping.set()
        if self._service is not None:
            self._service.close()
