"""The composition root: settings → the running parts. The only place that wires store, embedder, cache,
indexer, service and metrics together, for the CLI (synchronously) and for the servers (in the background,
so a client's handshake never waits for the model)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from memory_mcp.auth import resolve_github_token
from memory_mcp.config import Settings
from memory_mcp.core.embedder import MODEL_HELP, Embedder
from memory_mcp.core.embedding_cache import EmbeddingCache
from memory_mcp.core.indexer import Indexer, Progress
from memory_mcp.core.service import MemoryService
from memory_mcp.core.store import Author, GitStore
from memory_mcp.core.backoff import Backoff
from memory_mcp.core.sync import Syncer, SyncReport, clone_or_open
from memory_mcp.core.transport import Credentials
from memory_mcp.errors import MemoryMcpError, Unavailable
from memory_mcp.metrics import Metrics

log = logging.getLogger(__name__)

CACHE_FILE: Final = "embeddings.sqlite"
SNAPSHOT_DIR: Final = "snapshots"
SNAPSHOT_INTERVAL: Final = 30.0
"""Seconds between snapshot saves while writes happen; a crash loses at most this much catch-up work."""
PARTS: Final = ("repo", "model", "index", "sync")

State = Literal["pending", "ready", "rebuilding", "failed"]


def build_service(settings: Settings, progress: Progress | None = None) -> MemoryService:
    """Everything, synchronously; the index has caught up with the repository on return."""
    return build_replica(settings, progress)[0]


def build_replica(
    settings: Settings, progress: Progress | None = None
) -> tuple[MemoryService, Syncer | None]:
    """The service and the syncer of its repository (None without a remote), synchronously."""
    store, syncer = build_store(settings)
    indexer = _indexer(settings, store, _embedder(settings, None))
    _open(indexer, progress)
    return MemoryService(indexer), syncer


def _open(indexer: Indexer, progress: Progress | None = None) -> None:
    indexer.open(progress)
    # The catalog lives as long as the process: exempt it from the cyclic collector, whose every full
    # collection rescanned it (0.3 s at 100k memories: a pause for whichever request set it off).
    gc.freeze()


def build_store(
    settings: Settings, on_commit: Callable[[float], None] | None = None
) -> tuple[GitStore, Syncer | None]:
    """The repository, cloned from or attached to the remote when one is configured."""
    author = Author(settings.author_name, settings.author_email)
    if settings.remote_url is None:
        return GitStore(settings.repo_path, branch=settings.branch, author=author, on_commit=on_commit), None
    credentials = Credentials(
        token_provider=_git_token, ssh_key=settings.ssh_key, known_hosts=settings.ssh_known_hosts
    )
    return clone_or_open(
        settings.repo_path,
        remote_url=settings.remote_url,
        branch=settings.branch,
        author=author,
        credentials=credentials,
        on_commit=on_commit,
    )


def _git_token() -> str | None:
    resolved = resolve_github_token()
    return resolved.token.reveal() if resolved else None


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
    _sync_wanted: threading.Event = field(default_factory=threading.Event)
    syncer: Syncer | None = None

    def start(self) -> None:
        threading.Thread(target=self._start, name="memory-mcp-start", daemon=True).start()

    def _start(self) -> None:
        try:
            store, self.syncer = self._step("repo", self._open_repo, lambda pair: str(pair[0].root))
            self._first_sync()
            embedder = self._step(
                "model", lambda: _embedder(self.settings, self.metrics), lambda e: e.info.name
            )
            indexer = _indexer(self.settings, store, embedder)
            self._step("index", lambda: _open(indexer), lambda _: f"{len(indexer.catalog)} memories")
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
            if self.syncer is not None:
                threading.Thread(target=self._sync_loop, name="memory-mcp-sync", daemon=True).start()
            self._maintain(self._service.indexer)

    def _open_repo(self) -> tuple[GitStore, Syncer | None]:
        """Clone or open; an empty data dir whose remote is unreachable waits for it, with backoff."""
        backoff = Backoff()
        while True:
            try:
                return build_store(self.settings, self._committed)
            except Unavailable as exc:
                if self.settings.remote_url is None or self._stopping.is_set():
                    raise
                self.parts["repo"].detail = f"waiting for the remote: {exc}"
                self._stopping.wait(backoff.failed())

    def _committed(self, seconds: float) -> None:
        self.metrics.observe_commit(seconds)
        self._sync_wanted.set()

    def _first_sync(self) -> None:
        """Integrate the remote before serving; a remote that is down is reported, not fatal."""
        status = self.parts["sync"]
        if self.syncer is None:
            status.state, status.detail = "ready", "no remote configured"
            return
        self.sync()

    def sync(self, *, pull: bool = True, push: bool = True) -> SyncReport:
        """Sync now (the `sync` tool, and the background loop); the index follows what was pulled."""
        if self.syncer is None:
            raise Unavailable("no git remote is configured (--remote-url / MEMORY_MCP_REMOTE_URL)")
        report = self.syncer.sync(pull=pull, push=push)
        self.metrics.observe_sync(report.ok, report.ahead)
        status = self.parts["sync"]
        status.state = "ready" if report.ok else "failed"
        status.detail = (
            f"pulled {report.pulled}, pushed {report.pushed}, {len(report.conflicts)} conflicts, "
            f"{report.ahead} commits waiting to push"
            + (f"; errors: {'; '.join(report.errors)}" if report.errors else "")
        )
        if self._service is not None and (report.pulled or report.conflicts):
            self._service.indexer.ensure_fresh()
        return report

    def _sync_loop(self) -> None:
        """Push soon after writes (debounced), pull periodically, back off while the remote fails."""
        backoff = Backoff()
        wait = self.settings.pull_interval
        while not self._stopping.is_set():
            if self._sync_wanted.wait(wait):
                self._stopping.wait(self.settings.push_delay)  # gather a burst of writes into one push
                self._sync_wanted.clear()
            if self._stopping.is_set():
                return
            try:
                report = self.sync()
            except MemoryMcpError as exc:
                log.warning("sync failed: %s", exc)
                report = None
            if report is not None and report.ok:
                backoff.succeeded()
                wait = self.settings.pull_interval
            else:
                wait = min(backoff.failed(), self.settings.pull_interval)

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
                status.detail = (
                    f"embedding with the new model: {done}/{total}; keyword search covers the rest"
                )

            try:
                indexer.fill_vectors(report)
            except MemoryMcpError as exc:  # the model closed under us: shutting down
                log.info("stopped filling vectors: %s", exc)
                return
            status.state, status.detail = "ready", f"{len(indexer.catalog)} memories"
        while True:  # first save right away: start-up may have caught up with many commits
            try:
                indexer.save_snapshot()
            except OSError as exc:
                log.warning("could not save the index snapshot (will retry): %s", exc)
            if self._stopping.wait(SNAPSHOT_INTERVAL):
                return

    @property
    def ready(self) -> bool:
        return self._service is not None

    @property
    def service(self) -> MemoryService | None:
        """The service if start-up has finished, without waiting (see `wait`)."""
        return self._service

    def readiness(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "parts": {
                name: {k: v for k, v in vars(s).items() if v is not None} for name, s in self.parts.items()
            },
        }

    def wait(self, timeout: float) -> MemoryService:
        """The service once started; raises `Unavailable` if start-up failed or takes longer than `timeout`."""
        if not self._done.wait(timeout):
            raise Unavailable(
                "memory-mcp is still starting (loading the model and index); retry in a few seconds"
            )
        if self._service is None:
            raise self._error or Unavailable("start-up failed")
        return self._service

    def close(self) -> None:
        self._stopping.set()
        if self._service is not None:
            self._service.close()
