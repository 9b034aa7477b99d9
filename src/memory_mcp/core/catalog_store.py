"""The catalog kept in the derived store, changed in place with every write, and the vector graph's file.

The catalog's tables live in the `DerivedStore`'s database beside the keyword index: `entries` (one row per
indexed file, keyed by its doc number), `problems`, and meta rows (format, model, head, counters, graph).
Each change of the catalog writes its rows in the indexer's transaction, so the tables always describe one
head; a kill -9 leaves the last committed one, and start-up catches up from there.

The HNSW graph cannot change in place: saving it rewrites the whole file (~170 MB at 100k memories). So it
is saved only when it has changed enough that each change costs at most GRAPH_BYTES_PER_CHANGE, and at a
clean stop. The file's meta row names the first label it lacks; vectors with later labels are read from the
embedding cache at start-up (no model calls) and searched exactly until absorbed into the graph.
Any doubt (format, damage, a graph that lacks a label) means rebuilding, never a wrong answer.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np

from memory_mcp.core.catalog import Catalog, Entry
from memory_mcp.core.derived_store import DerivedStore, Error
from memory_mcp.core.lexical_index import LexicalIndex
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.vector_index import VectorIndex
from memory_mcp.files import fsync_path

log = logging.getLogger(__name__)

FORMAT: Final = 4
"""Layout version (4: tables changed in place; 1-3 were snapshot folders, which are rebuilt from git)."""
GRAPH_BYTES_PER_CHANGE: Final = 24 * 1024
"""What a graph save may cost per graph change since the last one (the budget per write is 64 KB)."""
GRACE_SECONDS: Final = 60.0
"""Old graph files outlive their replacement this long, for a second process still loading one."""
CachedVectors = Callable[[list[Memory]], list[np.ndarray | None]]
"""Each memory's chunk vectors from the embedding cache, None where the cache lacks them."""

_ENTRIES: Final = (
    "CREATE TABLE IF NOT EXISTS entries (doc INTEGER PRIMARY KEY, path TEXT NOT NULL, version TEXT NOT NULL, "
    "labels TEXT NOT NULL, dirty INTEGER NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, scope TEXT NOT NULL, "
    "tags TEXT NOT NULL, content TEXT NOT NULL, source TEXT, created TEXT NOT NULL, updated TEXT NOT NULL)"
)
_PROBLEMS: Final = "CREATE TABLE IF NOT EXISTS problems (path TEXT PRIMARY KEY, reason TEXT NOT NULL)"


@dataclass(frozen=True)
class Loaded:
    catalog: Catalog
    dirty_paths: list[str]
    """Entries saved from uncommitted files: the loader re-checks them against git and the work tree."""


class CatalogStore:
    """The catalog's durable copy (the `Journal` its changes are told to) and its graph files."""

    def __init__(self, store: DerivedStore, model: str, dimensions: int) -> None:
        self.store = store
        self.model = model
        self.dimensions = dimensions
        self.folder = store.path.parent if store.path is not None else None
        self._create_tables()

    def _create_tables(self) -> None:
        self.store.db.execute(_ENTRIES)
        self.store.db.execute(_PROBLEMS)

    # ------------------------------------------------------------- the journal

    def put(self, entry: Entry, counters: tuple[int, int]) -> None:
        self.store.db.execute("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", _row(entry))
        self.store.put("counters", counters)

    def remove(self, entry: Entry) -> None:
        self.store.db.execute("DELETE FROM entries WHERE doc = ?", (entry.doc,))

    def problem(self, path: str, reason: str | None) -> None:
        if reason is None:
            self.store.db.execute("DELETE FROM problems WHERE path = ?", (path,))
        else:
            self.store.db.execute("INSERT OR REPLACE INTO problems VALUES (?, ?)", (path, reason))

    def head(self, commit: str | None) -> None:
        self.store.put("head", commit)

    # ------------------------------------------------------------- opening

    def empty(self) -> Catalog:
        """A new, empty catalog over an emptied store (the first start, or a rebuild)."""
        self.store.reset()
        self._create_tables()
        with self.store.transaction():
            for key, value in (("format", FORMAT), ("model", self.model), ("dimensions", self.dimensions)):
                self.store.put(key, value)
        return Catalog(self.dimensions, VectorIndex(self.dimensions), LexicalIndex(self.store), self)

    def load(self, cached: CachedVectors) -> Loaded | None:
        """The stored catalog, or None when there is none or it cannot be trusted."""
        try:
            if self.store.get("format") != FORMAT or self.store.get("dimensions") != self.dimensions:
                return None
            scopes: dict[str, Scope] = {}
            entries = [_entry(row, scopes) for row in self.store.db.execute("SELECT * FROM entries")]
            problems = dict(self.store.db.execute("SELECT path, reason FROM problems"))
            if self.store.get("model") == self.model:
                vectors = self._vector_index(entries, cached)
            else:  # another embedding space: every entry waits for new vectors
                with self.store.transaction():
                    self.store.db.execute("UPDATE entries SET labels = '[]'")
                    self.store.put("model", self.model)
                    self.store.put("graph", None)
                for entry in entries:
                    entry.labels = []
                vectors = VectorIndex(self.dimensions)
            counters = tuple(self.store.get("counters", (1, 1)))
            lexical = LexicalIndex(self.store)
            catalog = Catalog.restore(self.dimensions, vectors, lexical, entries, counters, self)
            catalog._commit = self.store.get("head")
            catalog.problems = problems
            return Loaded(catalog, [entry.path for entry in entries if entry.dirty])
        except (Error, OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
            log.warning("ignoring damaged derived state (it will be rebuilt from git): %s", exc)
            return None

    def _vector_index(self, entries: list[Entry], cached: CachedVectors) -> VectorIndex:
        """The saved graph plus, pending, the vectors added after it was saved (from the embedding cache).
        Without a usable graph file, every vector is pending."""
        name, first_missing = self.store.get("graph"), self.store.get("graph_next_label", 1)
        path = self.folder / name if name and self.folder is not None else None
        if path is None or not path.is_file():
            first_missing = 0
        labelled = [entry for entry in entries if entry.labels]
        waiting = [entry for entry in labelled if entry.labels[0] >= first_missing]
        pending: dict[int, np.ndarray] = {}
        for entry, rows in zip(waiting, cached([entry.memory for entry in waiting]), strict=True):
            if rows is None or len(rows) != len(entry.labels):
                entry.labels = []  # the cache lost them: the entry waits for vectors
            else:
                pending.update(zip(entry.labels, rows, strict=True))
        if path is not None and first_missing:
            in_graph = {label for entry in labelled if entry.labels[0] < first_missing for label in entry.labels}
            try:
                index = VectorIndex.load(str(path), self.dimensions, in_graph, pending)
            except RuntimeError as exc:  # hnswlib's word for a damaged file
                log.warning("the saved vector graph is unreadable: %s", exc)
                index = None
            if index is not None:
                return index
            log.warning("reading every vector from the embedding cache instead of the saved graph")
            with self.store.transaction():
                self.store.put("graph", None)
            return self._vector_index(entries, cached)
        index = VectorIndex(self.dimensions)
        index.hold(pending)
        return index

    # ------------------------------------------------------------- the graph file

    def graph_due(self, index: VectorIndex, *, final: bool = False) -> bool:
        """Whether the graph changed enough since its last save to be worth rewriting (`final`: a clean
        stop, after which nothing would save it: whether it changed at all)."""
        if not self.store.persistent or not index.changes or index.pending:
            return False
        if final:
            return True
        return index.changes * GRAPH_BYTES_PER_CHANGE >= index.file_bytes

    def save_graph(self, index: VectorIndex, first_missing: int) -> None:
        """Write the (frozen) graph to a new file, then name it in the store; `first_missing` is the first
        label not in it. Searches go on meanwhile; writers add to `pending`."""
        assert self.folder is not None
        name = f"graph-{uuid.uuid4().hex}.hnsw"
        temporary = self.folder / f".{name}.tmp"
        try:
            index.save(str(temporary))
            temporary.chmod(0o600)
            fsync_path(temporary)
            temporary.rename(self.folder / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        fsync_path(self.folder)
        with self.store.transaction():
            self.store.put("graph", name)
            self.store.put("graph_next_label", first_missing)
        self._prune(keep=name)

    def _prune(self, keep: str) -> None:
        assert self.folder is not None
        cutoff = time.time() - GRACE_SECONDS
        for path in self.folder.glob("*graph-*.hnsw*"):
            if path.name != keep and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)


def _row(entry: Entry) -> tuple:
    m = entry.memory
    return (
        entry.doc,
        entry.path,
        entry.version,
        json.dumps(entry.labels),
        int(entry.dirty),
        m.id,
        m.name,
        m.scope.path,
        json.dumps(m.tags),
        m.content,
        m.source,
        m.created_at.isoformat(),
        m.updated_at.isoformat(),
    )


def _entry(row: tuple, scopes: dict[str, Scope]) -> Entry:
    """A stored row as an entry; `scopes` shares one `Scope` among the memories of each."""
    doc, path, version, labels, dirty, mid, name, scope, tags, content, source, created, updated = row
    if scope not in scopes:
        scopes[scope] = Scope(scope)
    # By position, in `Memory`'s field order (test_catalog_store checks each field): a frozen dataclass's
    # keyword call costs 1.6× as much, and start-up makes one per memory.
    created_at, updated_at = datetime.fromisoformat(created), datetime.fromisoformat(updated)
    memory = Memory(name, scopes[scope], content, _tags(tags), source, mid, created_at, updated_at)
    return Entry(doc, memory, path, version, _labels(labels), bool(dirty))


def _tags(text: str) -> tuple[str, ...]:
    """`json.loads` of a list of strings; without a backslash (no escapes), splitting is exact and faster."""
    if text == "[]":
        return ()
    if "\\" in text:
        return tuple(json.loads(text))
    return tuple(text[2:-2].split('", "'))


def _labels(text: str) -> list[int]:
    """`json.loads` of a list of ints, 3× faster (start-up parses one per memory, most of one label)."""
    if "," not in text:
        return [int(text[1:-1])] if text != "[]" else []
    return [int(label) for label in text[1:-1].split(",")]
