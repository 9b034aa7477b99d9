"""The memory service: the one object every edge (MCP tools, HTTP, web UI, CLI) calls, from worker threads
(its methods block). Its use cases are in `reading`, `history` and `writing`, which it combines; here are its
construction and upkeep (statistics, catching up, background embedding, rebuilds, repairs). What the use
cases return is in `results`, the preconditions they check in `checks`, list cursors in `cursor`.
"""

from __future__ import annotations

from memory_mcp.core import duplicates
from memory_mcp.core.duplicates import Duplicate, Repaired
from memory_mcp.core.indexer import Indexer, Progress
from memory_mcp.core.results import (
    Imported,
    Locator,
    Page,
    Reindexed,
    Repository,
    Saved,
    Similar,
    Stats,
)
from memory_mcp.core.revision_index import RevisionIndex
from memory_mcp.core.writing import Writing

__all__ = [
    "Imported",
    "Locator",
    "MemoryService",
    "Page",
    "Reindexed",
    "Repository",
    "Saved",
    "Similar",
    "Stats",
]
"""The service and the results it speaks in (defined in `results`)."""


class MemoryService(Writing):
    """The use cases over one repository: `Reading`'s and `Writing`'s, plus upkeep."""

    def __init__(self, indexer: Indexer, *, owns_embedder: bool = True) -> None:
        """Whether large memories are embedded after their commit is the indexer's `background_embedding`."""
        self.indexer = indexer
        self.store = indexer.store
        self.embedder = indexer.embedder
        self.revisions = RevisionIndex(self.store, self._blob_memory_id, indexer.derived)
        self._owns_embedder = owns_embedder

    def close(self) -> None:
        """Stop the revision index, then the model unless it was lent (refusing its queued work, so nothing
        waits for it), save derived state if it changed, release the cache; wakes the background embedding
        to see the stop."""
        self.revisions.close()
        if self._owns_embedder:
            self.embedder.close()
        self.indexer.close()
        self.indexer.backlog.set()
        self.indexer.cache.close()

    # ------------------------------------------------------------- upkeep

    def stats(self) -> Stats:
        """Sizes for metrics, read without waiting for writers."""
        return Stats(
            memories=len(self.catalog),
            chunks=len(self.catalog.vector_index),
            queue_depth=self.embedder.queue_depth,
            pending_vectors=self.indexer.pending_vectors,
        )

    def refresh(self) -> None:
        """Catch up with commits that moved the branch behind this process's back (a pull, another process)."""
        self.indexer.ensure_fresh()

    def fill_vectors(self, progress: Progress | None = None) -> int:
        """Embed the memories waiting for vectors (after a model change, or large memories committed before
        being embedded), behind every other use of the model; keyword search finds them meanwhile. Returns
        how many waited. Raises `Unavailable` if the model is closed under it (shutting down)."""
        waiting = self.indexer.pending_vectors
        if waiting:
            self.indexer.fill_vectors(progress)
        return waiting

    def wait_for_backlog(self, timeout: float) -> None:
        """Until a memory is committed without vectors (or the service closes), at most `timeout` seconds."""
        self.indexer.backlog.wait(timeout)
        self.indexer.backlog.clear()

    def save_snapshot(self) -> bool:
        """Persist the derived state if it changed since the last save; False when there was nothing to do."""
        return self.indexer.save_snapshot()

    def pack_objects(self) -> int:
        """Pack the repository's loose objects once they are many (see `Store.pack_objects`)."""
        return self.store.pack_objects()

    def reindex(self, progress: Progress | None = None, *, reembed: bool = False) -> Reindexed:
        """Drop the derived state and rebuild it from git; `reembed` also ignores cached vectors."""
        count = self.indexer.rebuild(progress, reembed=reembed)
        return Reindexed(count, self.unreadable())

    def unreadable(self) -> dict[str, str]:
        """Memory files that could not be parsed (writes never overwrite them), or that clash with another file
        or lie outside their scope's folder (see `Catalog.anomalies` for which one wins), path → reason."""
        with self.indexer.viewing:
            return dict(sorted({**self.catalog.anomalies, **self.catalog.problems}.items()))

    def duplicate_ids(self) -> list[Duplicate]:
        """Ids that several memories share (older versions' merges could leave them), each with the memory
        that keeps the id under `repair_duplicate_ids`' rule; empty for a healthy repository."""
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            return duplicates.find(self.catalog)

    def repair_duplicate_ids(self, *, actor: str | None = None) -> Repaired:
        """Give every memory that shares its id, except the newest (`updated_at`; on a tie the first path),
        a fresh id, in one commit; nothing is deleted. `commit` is None when there was nothing to repair."""
        return duplicates.repair(self.indexer, self._author(actor))

    def repository(self) -> Repository:
        """Where the memories live and which commit the service reflects."""
        return Repository(self.store.root, self.store.branch, self.store.head())
