"""Keeps the catalog in step with the repository: start-up from a snapshot, catch-up with commits made by
anyone (this process, other processes, `git pull`, hand edits), uncommitted work-tree files, vectors from
the cache or the model, and snapshot saving.

Two locks: `writing` serialises everything that changes the catalog (catch-up, this process's own writes,
new vectors) and snapshot saving; `viewing` is held briefly around every read or change of the catalog's
structures, so searches run while a writer embeds or commits, or a snapshot is written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import numpy as np

from memory_mcp.core import cancellation, markdown, snapshot
from memory_mcp.core.catalog import Catalog, Entry
from memory_mcp.core.embedder import EmbeddingModel
from memory_mcp.core.embedding_cache import VectorCache, cache_key
from memory_mcp.core.model import Memory
from memory_mcp.core.store import Change, Store, is_safe_memory_path
from memory_mcp.errors import InvalidInput

log = logging.getLogger(__name__)

EMBED_BATCH: Final = 64
DEFER_CHUNKS: Final = 8
"""A memory of more chunks than this (about 2 s of model time) is committed first, found by keywords at
once, and embedded in the background: one write cannot hold the model, or its caller, for minutes."""

Progress = Callable[[int, int], None]


class Indexer:
    def __init__(
        self,
        store: Store,
        embedder: EmbeddingModel,
        cache: VectorCache,
        snapshots: Path | None = None,
        *,
        background_embedding: bool = False,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.cache = cache
        self.catalog = Catalog(embedder.info.dimensions)
        self.writing = threading.RLock()
        self.viewing = threading.Lock()
        self._snapshots = snapshots
        self._unsaved = False
        self.backlog = threading.Event()
        """Set when a memory was committed without vectors: wakes the background embedding."""
        self.background_embedding = background_embedding
        """A server's: a memory too large to embed at once (see DEFER_CHUNKS) is indexed without vectors and
        embedded by `fill_vectors` later, whoever wrote it (this process, another one, or a pull). One-shot
        commands embed everything at once, as they have no later."""

    # ------------------------------------------------------------- start-up

    def open(self, progress: Progress | None = None) -> None:
        """Load the snapshot if there is one, catch up to the branch tip, then index uncommitted files."""
        with self.writing:
            loaded = None
            if self._snapshots is not None:
                loaded = snapshot.load(self._snapshots, self._model_key, self.embedder.info.dimensions)
            if loaded is not None:
                with self.viewing:
                    self.catalog = loaded.catalog
                self._resync(loaded.dirty_paths)
                log.info(
                    "loaded snapshot at %s with %d memories",
                    (self.catalog.commit or "-")[:12],
                    len(self.catalog),
                )
            self._unsaved = loaded is None or loaded.outdated
            self.catch_up(progress)
            self._overlay_worktree()

    def _resync(self, paths: list[str]) -> None:
        """Paths saved from uncommitted files go back to their committed state before catching up."""
        head = self.catalog.commit
        self._apply([Change(path, None, self.store.blob_at(head, path)) for path in paths])

    def _overlay_worktree(self) -> None:
        """Memory files edited or added in the work tree but not committed are searchable too."""
        for path, data in self.store.uncommitted_files():
            try:
                memory = markdown.parse(data)
            except InvalidInput as exc:
                log.warning("skipping unreadable uncommitted file %s: %s", path, exc)
                continue
            vectors = self.vectors_or_later([memory])[0]
            with self.viewing:
                self.catalog.put(memory, path, self.store.blob_id(data), vectors, dirty=True)
            self._unsaved = True
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
        self._apply(changes, progress)
        with self.viewing:
            self.catalog.commit = head
        self._unsaved = True
        return len(changes)

    def _apply(self, changes: list[Change], progress: Progress | None = None) -> None:
        incoming: list[tuple[str, str, Memory]] = []
        with self.viewing:
            for change in changes:
                if change.new_blob is None:
                    self.catalog.remove(change.path)
                    self.catalog.problems.pop(change.path, None)
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
        with self.viewing:
            if gone is not None:
                self.catalog.remove(gone)
            entry = self.catalog.put(memory, path, self.store.blob_id(data), vectors)
            self.catalog.commit = commit
        self._unsaved = True
        if vectors is None:
            self.backlog.set()
        return entry

    def record_many(self, commit: str, items: list[tuple[Memory, str, bytes, np.ndarray]]) -> list[Entry]:
        """Reflect this process's own commit that wrote all these files; hold `committing`."""
        with self.viewing:
            entries = [self.catalog.put(m, path, self.store.blob_id(data), v) for m, path, data, v in items]
            self.catalog.commit = commit
        self._unsaved = True
        return entries

    def record_delete(self, commit: str, path: str) -> None:
        with self.viewing:
            self.catalog.remove(path)
            self.catalog.commit = commit
        self._unsaved = True

    # ------------------------------------------------------------- vectors

    def vectors(self, memories: list[Memory], *, background: bool = False) -> list[np.ndarray]:
        """Each memory's chunk vectors (one array per memory, a row per chunk), from the cache where possible.

        "Vectors" means these arrays throughout; the structure that searches them is the catalog's
        `vector_index`. `background` work waits behind every other use of the model."""
        info = self.embedder.info
        texts = [m.embedding_text() for m in memories]
        keys = [cache_key(info.identity, info.document_prefix, text) for text in texts]
        found = self.cache.get_many(keys)
        missing = [i for i, key in enumerate(keys) if key not in found]
        if missing:
            computed = self.embedder.embed_documents([texts[i] for i in missing], background=background)
            fresh = {keys[i]: rows for i, rows in zip(missing, computed, strict=True)}
            self.cache.put_many(fresh)
            found.update(fresh)
        return [found[key] for key in keys]

    def vectors_or_later(self, memories: list[Memory]) -> list[np.ndarray | None]:
        """Like `vectors`, but with `background_embedding` None for each memory too large to embed before it
        is committed or indexed (see DEFER_CHUNKS) and not cached: `fill_vectors` embeds it later."""
        if not self.background_embedding:
            return list(self.vectors(memories))
        info = self.embedder.info
        texts = [m.embedding_text() for m in memories]
        keys = [cache_key(info.identity, info.document_prefix, text) for text in texts]
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
            with self.writing, self.viewing:
                for entry, vectors in zip(batch, rows, strict=True):
                    if not entry.labels and self.catalog.by_path(entry.path) is entry:
                        self.catalog.attach(entry, vectors)
            self._unsaved = True
            if progress:
                progress(start + len(batch), len(waiting))
        self.save_snapshot()

    def rebuild(self, progress: Progress | None = None, *, reembed: bool = False) -> int:
        """Drop the derived state and rebuild it from git; `reembed` also ignores cached vectors."""
        with self.writing:
            if reembed:
                self.cache.clear()
            with self.viewing:
                self.catalog = Catalog(self.embedder.info.dimensions)
            self.catch_up(progress)
            self._overlay_worktree()
            self.save_snapshot()
            return len(self.catalog)

    def tidy(self) -> None:
        """Merge the keyword index's segments (after bulk writes, before saving), one short step at a time
        so searches are never held up for long."""
        with self.writing:
            more = True
            while more:
                with self.viewing:
                    more = self.catalog.lexical.merge_step()

    # ------------------------------------------------------------- snapshots

    @property
    def _model_key(self) -> str:
        """Saved vectors are valid for the same model file and the same document prefix."""
        info = self.embedder.info
        return f"{info.identity}:{info.document_prefix}"

    def save_snapshot(self) -> bool:
        """Persist the catalog if it changed since the last save; False when there was nothing to do.

        Searches go on throughout; writers wait only while the save reads the catalog (see `snapshot.save`).
        """
        if self._snapshots is None or not self._unsaved:
            return False
        try:
            snapshot.save(self.catalog, self._snapshots, self._model_key, self._held_for_saving())
        except BaseException:
            self._unsaved = True  # what was read as saved was not: the next save tries again
            raise
        return True

    @contextmanager
    def _held_for_saving(self) -> Iterator[None]:
        """Writers held off (every change to the catalog holds `writing`) while a save reads the catalog."""
        with self.writing:
            self.tidy()
            yield
            self._unsaved = False  # changes from here on belong to the next save
