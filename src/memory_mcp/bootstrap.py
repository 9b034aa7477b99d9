"""The composition root: settings → the running parts. The only place that wires store, embedder, cache
and service together, for the CLI (synchronously) and for the servers (in the background, so a client's
handshake never waits for the model)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Final, Literal

from memory_mcp.config import Settings
from memory_mcp.core.embedder import MODEL_HELP, Embedder
from memory_mcp.core.embedding_cache import EmbeddingCache
from memory_mcp.core.service import MemoryService, Progress
from memory_mcp.core.store import Author, GitStore
from memory_mcp.errors import MemoryMcpError, Unavailable

log = logging.getLogger(__name__)

CACHE_FILE: Final = "embeddings.sqlite"
PARTS: Final = ("repo", "model", "index")

State = Literal["pending", "ready", "failed"]


def build_store(settings: Settings) -> GitStore:
    return GitStore(settings.repo_path, branch=settings.branch, author=Author(settings.author_name, settings.author_email))


def build_embedder(settings: Settings) -> Embedder:
    if settings.model is None:
        raise Unavailable(f"no embedding model configured. {MODEL_HELP}")
    return Embedder(
        settings.model,
        threads=settings.threads,
        query_prefix=settings.query_prefix,
        document_prefix=settings.document_prefix,
    )


def build_service(settings: Settings, progress: Progress | None = None) -> MemoryService:
    """Everything, synchronously, for the CLI; the index is caught up with the repository on return."""
    service = MemoryService(build_store(settings), build_embedder(settings), _cache(settings))
    service.refresh(progress)
    return service


def _cache(settings: Settings) -> EmbeddingCache:
    return EmbeddingCache(settings.state_dir / CACHE_FILE)


@dataclass
class PartStatus:
    state: State = "pending"
    detail: str = ""
    seconds: float | None = None


@dataclass
class Runtime:
    """A server's parts, started in a background thread; `/readyz` and every tool call consult it."""

    settings: Settings
    parts: dict[str, PartStatus] = field(default_factory=lambda: {name: PartStatus() for name in PARTS})
    _service: MemoryService | None = None
    _error: MemoryMcpError | None = None
    _done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._start, name="memory-mcp-start", daemon=True).start()

    def _start(self) -> None:
        try:
            store = self._step("repo", lambda: build_store(self.settings), lambda s: str(s.root))
            embedder = self._step("model", lambda: build_embedder(self.settings), lambda e: e.info.name)
            service = MemoryService(store, embedder, _cache(self.settings))
            self._step("index", service.refresh, lambda _: f"{len(service.catalog)} memories")
            self._service = service
        except MemoryMcpError as exc:
            self._error = exc
        except Exception as exc:  # noqa: BLE001 - any start-up crash must surface as "not ready", not hang
            log.exception("start-up failed")
            self._error = Unavailable(f"start-up failed: {exc}")
        finally:
            self._done.set()

    def _step(self, part: str, build, describe):
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
        if self._service is not None:
            self._service.embedder.close()
            self._service.cache.close()
