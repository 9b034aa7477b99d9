"""A server's life: start-up in the background, the loops that keep it current, readiness, and shutdown.

One named thread per loop:

- `memory-mcp-start` opens (or clones) the repository, integrates the remote, loads the model and the index
  (catching up with every commit since the stored state), then gives vectors to memories a model change left
  without them; a client's handshake never waits for any of it, tool calls wait in `wait`.
- `memory-mcp-snapshot` looks after the vector graph's file right away, then every `SNAPSHOT_INTERVAL`
  seconds (it moves vectors waiting beside the graph into it and saves the graph when it is due; everything
  else in the derived state is saved in place by each write), packs the repository's loose objects once they
  are many, and keeps the revision index (history) current, before packing (which can take minutes) and at
  a clean stop.
- `memory-mcp-sync` (with a remote) pushes soon after writes, pulls periodically and backs off while the
  remote fails.

Both transports start and stop it the same way: `lifespan` is the MCP server's lifespan, which stdio and
streamable HTTP each enter once. Stopping there matters for HTTP: on SIGTERM uvicorn shuts down gracefully,
then raises the signal again, which ends the process before `uvicorn.run` returns to any `finally`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final, Literal, TypeVar

import anyio.to_thread

from memory_mcp.bootstrap import build_embedder, build_store, open_service
from memory_mcp.config import Settings
from memory_mcp.core import MemoryMcpError, MemoryService, Unavailable
from memory_mcp.core.download import ProgressReport
from memory_mcp.core.embedder import EmbeddingModel
from memory_mcp.core.store import Store
from memory_mcp.core.backoff import Backoff
from memory_mcp.core.sync import Syncer, SyncReport
from memory_mcp.metrics import Metrics
from memory_mcp.progress import DownloadMeter

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL: Final = 30.0
"""Seconds between looks at the vector graph (absorbing waiting vectors, saving the file when due)."""
STOP_HISTORY_SECONDS: Final = 2.0
"""How long a clean stop may spend indexing the commits since the last round: this process's own read at
once (a restart then has none to diff: ~50 ms of a core each at 60k memories a folder), others it leaves
to the next start."""
PARTS: Final = ("repo", "model", "index", "sync")

State = Literal["pending", "ready", "rebuilding", "failed"]
T = TypeVar("T")


@dataclass
class PartStatus:
    state: State = "pending"
    detail: str = ""
    seconds: float | None = None


@dataclass
class Supervisor:
    """A server's parts, started in the background; `/readyz`, `/metrics` and every tool call consult it."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    parts: dict[str, PartStatus] = field(default_factory=lambda: {name: PartStatus() for name in PARTS})
    syncer: Syncer | None = None
    last_sync: SyncReport | None = None
    """The latest sync's report, for readiness (the HTTP edge words it)."""
    embedder: EmbeddingModel | None = None
    """A model lent instead of the one `settings` names (the UI bench lends the hashing fake); its caller closes it."""
    opened_at: str | None = None
    """The branch tip the service opened at: where change notifications start from."""
    _service: MemoryService | None = None
    _error: MemoryMcpError | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _sync_wanted: threading.Event = field(default_factory=threading.Event)
    _starting: threading.Lock = field(default_factory=threading.Lock)
    _started: bool = False
    _collector_paused: bool = False

    @contextlib.asynccontextmanager
    async def lifespan(self, _: object = None) -> AsyncIterator[None]:
        """Start on entry, stop (saving the vector graph, freeing the model) on exit: the one start/stop path."""
        self.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(self.close)

    def start(self) -> None:
        """Begin start-up in the background; once only, so a server may begin it before building its edge
        (the lifespan's call is then a no-op)."""
        with self._starting:
            if self._started:
                return
            self._started = True
        # Start-up makes objects that live as long as the process: the catalog, and the modules the edge
        # imports meanwhile. The cyclic collector would only rescan them (0.1 s of start-up's GIL at the
        # full Debian set), so it pauses until the service is open (see `_resume_collector`).
        self._collector_paused = gc.isenabled()
        gc.disable()
        _spawn("memory-mcp-start", self._start)

    def _resume_collector(self) -> None:
        """End start-up's pause of the cyclic collector: what is alive is frozen out of its reach, with the
        imports' garbage cycles (about 900 objects), and it resumes. Also before waiting for a remote: a
        pause is worth nothing then, and each failed attempt leaves garbage cycles."""
        if self._collector_paused:
            self._collector_paused = False
            gc.freeze()
            gc.enable()

    def _start(self) -> None:
        try:
            store, self.syncer = self._step("repo", self._open_repo, lambda _: "open")
            self._first_sync()
            lent = self.embedder
            embedder = self._step(
                "model",
                lambda: lent or build_embedder(self.settings, self.metrics, self._downloading()),
                lambda e: e.info.name,
            )
            service = self._step(
                "index",
                lambda: open_service(
                    self.settings, store, embedder, owns_embedder=lent is None, background_embedding=True
                ),
                lambda s: f"{s.stats().memories} memories",
            )
            self._watch(service)
            self.opened_at = service.repository().head
            self._service = service
        except MemoryMcpError as exc:
            self._error = exc
        except Exception as exc:  # noqa: BLE001 - any start-up crash must surface as "not ready", not hang
            log.exception("start-up failed")
            self._error = Unavailable(f"start-up failed: {exc}")
        finally:
            self._resume_collector()
            self._done.set()
        if self._service is None:
            return
        service = self._service
        if self.syncer is not None:
            _spawn("memory-mcp-sync", self._sync_loop)
        if self._fill_vectors(service, rebuilding=True):
            _spawn("memory-mcp-snapshot", lambda: self._snapshot_loop(service))

    def _downloading(self) -> ProgressReport:
        """Default-model download progress: on stderr, and as the model part's detail in `/readyz`."""
        meter = DownloadMeter()

        def report(done: int, total: int | None) -> None:
            amount = f"{min(100, done * 100 // total)}%" if total else f"{done / 1e6:.1f} MB"
            self.parts["model"].detail = f"downloading {amount}"
            meter(done, total)

        return report

    def _open_repo(self) -> tuple[Store, Syncer | None]:
        """Clone or open; an empty data dir whose remote is unreachable waits for it, with backoff."""
        backoff = Backoff()
        while True:
            try:
                return build_store(self.settings, self._committed)
            except Unavailable as exc:
                if self.settings.remote_url is None or self._stopping.is_set():
                    raise
                self._resume_collector()
                self.parts["repo"].detail = f"waiting for the remote: {exc}"
                self._stopping.wait(backoff.failed())

    def _committed(self, seconds: float) -> None:
        self.metrics.observe_commit(seconds)
        self._sync_wanted.set()

    def _first_sync(self) -> None:
        """Integrate the remote before serving; a remote that is down is reported, not fatal."""
        if self.syncer is None:
            self.parts["sync"].state, self.parts["sync"].detail = "ready", "no remote configured"
            return
        self.sync()

    def _step(self, part: str, build: Callable[[], T], describe: Callable[[T], str]) -> T:
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

    def _watch(self, service: MemoryService) -> None:
        self.metrics.watch(
            memories=lambda: service.stats().memories,
            chunks=lambda: service.stats().chunks,
            queue=lambda: service.stats().queue_depth,
            pending=lambda: service.stats().pending_vectors,
        )

    def _fill_vectors(self, service: MemoryService, *, rebuilding: bool = False) -> bool:
        """Vectors for memories that lack them (after a model change, or large memories committed before
        being embedded; `rebuilding` at start-up); False if stopped meanwhile."""
        status = self.parts["index"]
        if not service.stats().pending_vectors:
            return True
        if rebuilding:
            status.state = "rebuilding"

        def report(done: int, total: int) -> None:
            status.detail = (
                f"embedding in the background (a model change, or large memories): {done}/{total}; "
                "keyword search covers the rest"
            )

        report(0, service.stats().pending_vectors)

        try:
            service.fill_vectors(report)
            status.state, status.detail = "ready", f"{service.stats().memories} memories"
        except MemoryMcpError as exc:  # the model closed under us: shutting down
            log.info("stopped filling vectors: %s", exc)
            return False
        return True

    # ------------------------------------------------------------------ loops

    def _snapshot_loop(self, service: MemoryService) -> None:
        """Look after the graph right away (start-up may have read vectors that wait beside it), then every
        SNAPSHOT_INTERVAL; large memories committed without vectors are embedded as soon as they arrive. The
        revision index is built on the first round and follows the branch after, so history requests seldom
        wait for it."""
        while not self._stopping.is_set():
            if not self._fill_vectors(service):
                return
            try:
                service.save_snapshot()
            except OSError as exc:
                log.warning("could not save the vector graph (will retry): %s", exc)
            try:
                service.index_history(paced=True)
            except MemoryMcpError as exc:  # closed under it: shutting down
                log.info("stopped indexing history: %s", exc)
                return
            try:
                service.pack_objects()
            except (OSError, Unavailable) as exc:
                log.warning("could not pack the repository's loose objects (will retry): %s", exc)
            service.wait_for_backlog(SNAPSHOT_INTERVAL)

    def sync(self, *, pull: bool = True, push: bool = True) -> SyncReport:
        """Sync now (the `sync` tool, and the background loop); the index follows what was pulled."""
        if self.syncer is None:
            raise Unavailable("no git remote is configured (--remote-url / MEMORY_MCP_REMOTE_URL)")
        report = self.syncer.sync(pull=pull, push=push)
        self.metrics.observe_sync(report.ok, report.ahead)
        self.parts["sync"].state = "ready" if report.ok else "failed"
        self.last_sync = report
        if self._service is not None and (report.pulled or report.conflicts):
            self._service.refresh()
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
                report: SyncReport | None = self.sync()
            except MemoryMcpError as exc:
                log.warning("sync failed: %s", exc)
                report = None
            if report is not None and report.ok:
                backoff.succeeded()
                wait = self.settings.pull_interval
            else:
                wait = min(backoff.failed(), self.settings.pull_interval)

    # ------------------------------------------------------------------ readiness

    @property
    def ready(self) -> bool:
        return self._service is not None

    @property
    def service(self) -> MemoryService | None:
        """The service if start-up has finished, without waiting (see `wait`)."""
        return self._service

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
        if self._service is None:
            return
        try:
            self._service.index_history(within=STOP_HISTORY_SECONDS)
        except (MemoryMcpError, OSError) as exc:
            log.warning("could not index the last commits' history before stopping: %s", exc)
        self._service.close()


def _spawn(name: str, target: Callable[[], None]) -> None:
    threading.Thread(target=target, name=name, daemon=True).start()
