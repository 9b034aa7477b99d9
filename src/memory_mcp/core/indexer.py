"""Keeps the catalog in step with the repository: start-up from the derived store, catch-up with commits
made by anyone (this process, other processes, `git pull`, hand edits), uncommitted work-tree files, vectors
from the cache or the model, and the occasional save of the vector graph.

Two locks: `writing` serialises everything that changes the catalog (catch-up, this process's own writes,
new vectors); `viewing` is held briefly around every read or change of the catalog's structures, so searches
run while a writer embeds or commits, or the graph is saved. Each change of the catalog is one transaction
of the derived store (taken before `viewing`), so the store always holds the state of one head.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Final

import numpy as np

from memory_mcp.core import cancellation, markdown
from memory_mcp.core.catalog import Catalog, Entry
from memory_mcp.core.catalog_store import CatalogStore
from memory_mcp.core.derived_store import DerivedStore
from memory_mcp.core.embedder import EmbeddingModel
from memory_mcp.core.embedding_cache import VectorCache, cache_key
from memory_mcp.core.model import Memory
from memory_mcp.core.store import Change, Store, is_safe_memory_path
from memory_mcp.errors import InvalidInput

log = logging.getLogger(__name__)

EMBED_BATCH: Final = 64
DEFER_CHUNKS: Final = 16
"""A memory of more chunks than this (about 4,000 tokens, 2 s of model time) is committed first, found by
keywords at once, and embedded in the background: one write cannot hold the model, or its caller, for
minutes."""

ABSORB_STEP: Final = 2
"""Pending vectors moved into the graph per hold of `viewing` (a few ms: writers and searches barely wait)."""
ABSORB_SECONDS: Final = 5.0
"""How long one `save_snapshot` spends absorbing pending vectors before it gives up until the next."""

Progress = Callable[[int, int], None]


class Indexer:
    def __init__(
        self,
        store: Store,
        embedder: EmbeddingModel,
        cache: VectorCache,
        derived: DerivedStore | None = None,
        *,
        background_embedding: bool = False,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.cache = cache
        self.catalog = Catalog(embedder.info.dimensions)
        """Empty until `open` loads or builds the real one."""
        self.writing = threading.RLock()
        self.viewing = threading.Lock()
        self.derived = derived or DerivedStore.in_memory()
        self._catalogs = CatalogStore(self.derived, self._model_key, embedder.info.dimensions)
        self._saving = threading.RLock()
        self.backlog = threading.Event()
        """Set when a memory was committed without vectors: wakes the background embedding."""
        self.background_embedding = background_embedding
        """A server's: a memory too large to embed at once (see DEFER_CHUNKS) is indexed without vectors and
        embedded by `fill_vectors` later, whoever wrote it (this process, another one, or a pull). One-shot
        commands embed everything at once, as they have no later."""

    # ------------------------------------------------------------- start-up

    def open(self, progress: Progress | None = None) -> None:
        """Load the stored catalog if there is one, catch up to the branch tip, then index uncommitted files.

        The catalog loads on a thread of its own while this one scans the work tree for those files: the
        scan runs in libgit2 without the GIL (0.2 s at 60,000 files), the load needs the GIL throughout. The
        scan stays on this thread: a finished thread's libgit2 repository, with the git index it read, is
        left to the cyclic collector, which start-up pauses before freezing what is alive (`Supervisor`)."""
        with self.writing, ThreadPoolExecutor(1, thread_name_prefix="memory-mcp-load") as loader:
            stored = loader.submit(self._catalogs.load, self._cached)
            uncommitted = self.store.uncommitted_files()
            loaded = stored.result()
            catalog = loaded.catalog if loaded is not None else self._catalogs.empty()
            with self.viewing:
                self.catalog = catalog
            if loaded is not None:
                self._resync(loaded.dirty_paths)
                log.info(
                    "loaded derived state at %s with %d memories",
                    (self.catalog.commit or "-")[:12],
                    len(self.catalog),
                )
            self.catch_up(progress)
            self._overlay_worktree(uncommitted)

    def close(self) -> None:
        """Save the graph if it changed, then release the derived store."""
        self.save_snapshot(absorb_for=0.0, final=True)
        with self.writing, self.viewing:
            self.derived.close()

    def _resync(self, paths: list[str]) -> None:
        """Paths saved from uncommitted files go back to their committed state before catching up."""
        head = self.catalog.commit
        with self.derived.transaction():
            self._apply([Change(path, None, self.store.blob_at(head, path)) for path in paths])

    def _overlay_worktree(self, uncommitted: list[tuple[str, bytes]]) -> None:
        """Memory files edited or added in the work tree but not committed are searchable too. A file that
        matches the catalog's commit is skipped: it was committed after `uncommitted` was read."""
        head = self.catalog.commit
        for path, data in uncommitted:
            if self.store.blob_id(data) == self.store.blob_at(head, path):
                continue
            try:
                memory = markdown.parse(data)
            except InvalidInput as exc:
                log.warning("skipping unreadable uncommitted file %s: %s", path, exc)
                continue
            vectors = self.vectors_or_later([memory])[0]
            with self._changing():
                self.catalog.put(memory, path, self.store.blob_id(data), vectors, dirty=True)
            if vectors is None:
                self.backlog.set()

    # ------------------------------------------------------------- catch-up

    def ensure_fresh(self) -> None:
        """Before answering a read: pick up commits that moved the branch since the catalog was built."""
        if self.store.head() != self.catalog.commit:
            with self.writing:
                self.catch_up()

    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply every memory file change between the catalog's commit and the branch tip (hold `writing`)."""
        head = self.store.head()
        if head == self.catalog.commit:
            return 0
        changes = self.store.changes(self.catalog.commit, head)
        with self.derived.transaction():  # one, however long: a crash leaves the old head's state whole
            self._apply(changes, progress)
            with self.viewing:
                self.catalog.commit = head
        return len(changes)

    def _apply(self, changes: list[Change], progress: Progress | None = None) -> None:
        incoming: list[tuple[str, str, Memory]] = []
        with self.viewing:
            for change in changes:
                if change.new_blob is None:
                    self.catalog.remove(change.path)
                    self.catalog.clear_problem(change.path)
        for change in changes:
            if change.new_blob is not None:
                memory = self._parse_blob(change.path, change.new_blob)
                if memory is not None:
                    incoming.append((change.path, change.new_blob, memory))
        for start in range(0, len(incoming), EMBED_BATCH):
            batch = incoming[start : start + EMBED_BATCH]
            vectors = self.vectors_or_later([memory for _, _, memory in batch])
            with self.viewing:
                for (path, blob, memory), rows in zip(batch, vectors, strict=True):
                    self.catalog.put(memory, path, blob, rows)
            if any(rows is None for rows in vectors):
                self.backlog.set()  # catch-up (a pull, another process) never waits for a large memory
            if progress:
                progress(start + len(batch), len(incoming))

    def _parse_blob(self, path: str, blob: str) -> Memory | None:
        try:
            if not is_safe_memory_path(path):  # pulled or pushed by hand: it could never be changed
                raise InvalidInput("its path has a part that starts with '.'; rename the file")
            if self.store.blob_size(blob) > markdown.MAX_FILE_BYTES:  # checked before loading it
                raise InvalidInput(f"file is {self.store.blob_size(blob)} bytes, larger than a memory may be")
            return markdown.parse(self.store.blob(blob))
        except InvalidInput as exc:
            log.warning("skipping unreadable memory file %s: %s", path, exc)
            with self.viewing:
                self.catalog.mark_problem(path, str(exc))
            return None

    # ------------------------------------------------------------- own writes

    @contextmanager
    def committing(self) -> Iterator[None]:
        """This process's writer lock, then the repository's OS lock, then catch up: checks see the latest."""
        with self.writing, self.store.write_lock():
            cancellation.check()  # the caller may have gone while this waited for the locks
            self.catch_up()
            yield

    def record_put(
        self,
        commit: str,
        memory: Memory,
        path: str,
        data: bytes,
        vectors: np.ndarray | None,
        gone: str | None = None,
    ) -> Entry:
        """Reflect this process's own commit that wrote `path` (and removed `gone`); hold `committing`.
        Without `vectors`, the memory joins the background embedding's backlog."""
        with self._changing():
            if gone is not None:
                self.catalog.remove(gone)
            entry = self.catalog.put(memory, path, self.store.blob_id(data), vectors)
            self.catalog.commit = commit
        if vectors is None:
            self.backlog.set()
        return entry

    def record_many(self, commit: str, items: list[tuple[Memory, str, bytes, np.ndarray]]) -> list[Entry]:
        """Reflect this process's own commit that wrote all these files; hold `committing`."""
        with self._changing():
            files = [(m, path, self.store.blob_id(data), v) for m, path, data, v in items]
            entries = self.catalog.put_many(files)
            self.catalog.commit = commit
        return entries

    def record_delete(self, commit: str, path: str) -> None:
        with self._changing():
            self.catalog.remove(path)
            self.catalog.commit = commit

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """One change of the catalog: a transaction of the derived store, and the catalog held still."""
        with self.derived.transaction(), self.viewing:
            yield

    # ------------------------------------------------------------- vectors

    def vectors(self, memories: list[Memory], *, background: bool = False) -> list[np.ndarray]:
        """Each memory's chunk vectors (one array per memory, a row per chunk), from the cache where possible.

        "Vectors" means these arrays throughout; the structure that searches them is the catalog's
        `vector_index`. `background` work waits behind every other use of the model."""
        texts = [m.embedding_text() for m in memories]
        keys = self._keys(texts)
        found = self.cache.get_many(keys)
        missing = [i for i, key in enumerate(keys) if key not in found]
        if missing:
            computed = self.embedder.embed_documents([texts[i] for i in missing], background=background)
            fresh = {keys[i]: rows for i, rows in zip(missing, computed, strict=True)}
            self.cache.put_many(fresh)
            found.update(fresh)
        return [found[key] for key in keys]

    def _keys(self, texts: list[str]) -> list[bytes]:
        info = self.embedder.info
        return [cache_key(info.identity, info.document_prefix, text) for text in texts]

    def _cached(self, memories: list[Memory]) -> list[np.ndarray | None]:
        """Each memory's vectors if the cache has them (start-up: the graph lacks what was added since its
        save), without calling the model."""
        keys = self._keys([m.embedding_text() for m in memories])
        found = self.cache.get_many(keys)
        return [found.get(key) for key in keys]

    def vectors_or_later(self, memories: list[Memory]) -> list[np.ndarray | None]:
        """Like `vectors`, but with `background_embedding` None for each memory too large to embed before it
        is committed or indexed (see DEFER_CHUNKS) and not cached: `fill_vectors` embeds it later."""
        if not self.background_embedding:
            return list(self.vectors(memories))
        texts = [m.embedding_text() for m in memories]
        keys = self._keys(texts)
        cached = self.cache.get_many(keys)
        now = [
            i
            for i, (text, key) in enumerate(zip(texts, keys, strict=True))
            if key in cached or self.embedder.chunk_count(text) <= DEFER_CHUNKS
        ]
        out: list[np.ndarray | None] = [None] * len(memories)
        for i, rows in zip(now, self.vectors([memories[i] for i in now]) if now else [], strict=True):
            out[i] = rows
        return out

    @property
    def pending_vectors(self) -> int:
        """Memories still without vectors (after a model change); they are found by keywords only."""
        with self.viewing:
            return len(self.catalog.waiting_for_vectors())

    def fill_vectors(self, progress: Progress | None = None) -> None:
        """Embed every memory that waits for vectors, in batches, behind every other use of the model."""
        with self.viewing:
            waiting = self.catalog.waiting_for_vectors()
        for start in range(0, len(waiting), EMBED_BATCH):
            batch = waiting[start : start + EMBED_BATCH]
            rows = self.vectors([entry.memory for entry in batch], background=True)
            with self.writing, self._changing():
                for entry, vectors in zip(batch, rows, strict=True):
                    if not entry.labels and self.catalog.by_path(entry.path) is entry:
                        self.catalog.attach(entry, vectors)
            if progress:
                progress(start + len(batch), len(waiting))
        self.save_snapshot()

    def rebuild(self, progress: Progress | None = None, *, reembed: bool = False) -> int:
        """Drop the derived state and rebuild it from git; `reembed` also ignores cached vectors."""
        with self._saving, self.writing:
            if reembed:
                self.cache.clear()
            with self.viewing:
                self.catalog = self._catalogs.empty()
            self.catch_up(progress)
            self._overlay_worktree(self.store.uncommitted_files())
            self.save_snapshot()
            return len(self.catalog)

    def tidy(self) -> None:
        """Merge the keyword index's segments (after bulk writes, and at a clean stop), one short step at a
        time so searches are never held up for long. Writers wait for all of it: merging between other
        threads' writes was seen to leave FTS5 reporting a malformed index (not yet understood), so it never
        runs beside them; between those moments FTS5's own automerge keeps the segments few."""
        with self.writing:
            more = True
            while more:
                with self.derived.transaction(), self.viewing:
                    more = self.catalog.lexical.merge_step()

    # ------------------------------------------------------------- the vector graph

    @property
    def _model_key(self) -> str:
        """Stored vectors are valid for the same model file and the same document prefix."""
        info = self.embedder.info
        return f"{info.identity}:{info.document_prefix}"

    def save_snapshot(self, absorb_for: float = ABSORB_SECONDS, *, final: bool = False) -> bool:
        """Save the vector graph if it changed enough since its last save (every other part of the derived
        state is saved as it changes); False when there was nothing to do.

        First moves vectors that wait beside the graph into it, for up to `absorb_for` seconds. Writers never
        wait for the save: while it reads the graph, new vectors wait beside it. `final`: a clean stop, which
        saves any change (the next start then reads nothing from the embedding cache), after merging the keyword
        index (see `tidy`).
        """
        with self._saving:
            index = self.catalog.vector_index
            deadline = time.monotonic() + absorb_for
            while index.pending and time.monotonic() < deadline:
                with self.viewing:
                    index.absorb(ABSORB_STEP)
            with self.viewing:
                if not self._catalogs.graph_due(index, final=final):
                    return False
            if final:
                self.tidy()
            with self.viewing:
                if index.pending or index is not self.catalog.vector_index:
                    return False
                first_missing = self.catalog.counters[1]
                index.freeze()
            saved = False
            try:
                self._catalogs.save_graph(index, first_missing)
                saved = True
            finally:
                with self.viewing:
                    index.thaw(saved=saved)
            return True
