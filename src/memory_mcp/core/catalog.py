"""The derived state of one repository commit: memory records, the vector index and the lexical index,
always changed together so they never disagree. Rebuildable from git at any time.

Every change is also told to a `Journal` (the derived store's catalog tables), so the durable copy follows
the one in memory change by change instead of being rewritten whole."""

from __future__ import annotations

import bisect
import operator
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np

from memory_mcp.core.lexical_index import LexicalIndex
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.store import memory_path
from memory_mcp.core.vector_index import VectorIndex

FEW_TAGGED: Final = 2_000
"""A listing filtered by tags whose rarest tag has at most this many memories sorts just those (a few ms)
instead of walking the whole order past every memory the filter rejects."""


@dataclass(slots=True)
class Entry:
    """A memory as indexed: where its file is, its version (the file's git blob id) and its chunk labels."""

    doc: int
    memory: Memory
    path: str
    version: str
    labels: list[int] = field(default_factory=list)
    """Chunk labels in the vector index; empty while the entry waits for vectors (after a model change)."""
    dirty: bool = False
    """Read from an uncommitted work-tree file rather than from the branch tip."""

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.memory.scope.path, self.memory.name)

    @property
    def recency_key(self) -> tuple[float, str, str]:
        """Newest `updated_at` first, then (scope, name): a total order, so a cursor resumes exactly."""
        return (-self.memory.updated_at.timestamp(), *self.sort_key)


class Journal(Protocol):
    """Where a catalog's changes are kept durably (`catalog_store.CatalogStore` is the adapter); the caller
    groups the calls into transactions."""

    def put(self, entry: Entry, counters: tuple[int, int]) -> None:
        """An entry was added or changed (its labels); `counters` are the catalog's next doc and label."""

    def remove(self, entry: Entry) -> None:
        """An entry left."""

    def problem(self, path: str, reason: str | None) -> None:
        """A file became unreadable (`reason`) or stopped being a problem (None)."""

    def head(self, commit: str | None) -> None:
        """The catalog now reflects `commit`."""


class Catalog:
    """Lookups by id, (scope, name), path, and chunk label; the two indexes; the commit they reflect."""

    def __init__(
        self,
        dimensions: int,
        vector_index: VectorIndex | None = None,
        lexical: LexicalIndex | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.vector_index = vector_index or VectorIndex(dimensions)
        self.lexical = lexical or LexicalIndex()
        self.journal = journal
        self._commit: str | None = None
        self.problems: dict[str, str] = {}
        """Memory files that could not be read, path → reason; they are never overwritten."""
        self.anomalies: dict[str, str] = {}
        """Readable files that clash with another (same id, or same scope and name) or lie outside their
        scope's folder, path → reason. Until repaired, the file at its scope and name's own path wins a
        clash, then the path that sorts first; the loser is reachable by path only (list, recall)."""
        self._by_path: dict[str, Entry] = {}
        self._by_id: dict[str, Entry] = {}
        self._by_key: dict[tuple[Scope, str], Entry] = {}
        self._label_entry: dict[int, Entry] = {}
        self._by_doc: dict[int, Entry] = {}
        self._by_tag: dict[str, dict[str, Entry]] = {}
        """tag → path → entry, for listings and recalls filtered by a tag few memories carry."""
        self._next_doc = 1
        self._next_label = 1
        self._sorted: list[Entry] | None = None
        """Entries by `sort_key`, sorted on first use after a change: the entries alone, with no key beside
        each (a (key, entry) pair per memory cost 7 MB at 60,000), their keys made again by each bisection."""
        self._recent: list[Entry] | None = None
        """The same by `recency_key`."""
        self._counts: Counter[str] = Counter()
        """Memories per scope path, kept up to date by every change (each recall with a scope filter reads it)."""

    def __len__(self) -> int:
        return len(self._by_path)

    @property
    def commit(self) -> str | None:
        return self._commit

    @commit.setter
    def commit(self, commit: str | None) -> None:
        self._commit = commit
        if self.journal is not None:
            self.journal.head(commit)

    # ---------------------------------------------------------------- lookups

    def by_path(self, path: str) -> Entry | None:
        return self._by_path.get(path)

    def by_id(self, memory_id: str) -> Entry | None:
        return self._by_id.get(memory_id)

    def by_key(self, scope: Scope, name: str) -> Entry | None:
        return self._by_key.get((scope, name))

    def by_label(self, label: int) -> Entry | None:
        return self._label_entry.get(label)

    @property
    def label_lookup(self) -> Callable[[int], Entry | None]:
        """`by_label` as the dictionary's own lookup: for a callback run per visited graph node, one call less."""
        return self._label_entry.get

    def by_doc(self, doc: int) -> Entry | None:
        return self._by_doc.get(doc)

    def entries(self) -> Iterator[Entry]:
        return iter(self._by_path.values())

    def sorted_after(self, key: tuple[str, str] | None, tags: set[str] = frozenset()) -> Iterator[Entry]:
        """Entries in (scope, name) order, starting after `key`; with `tags`, perhaps only the entries that
        carry them all (see FEW_TAGGED), else all."""
        tagged = self.tagged(tags, FEW_TAGGED)
        if tagged is not None:
            return _after(sorted(tagged, key=_by_name), key, _by_name)
        if self._sorted is None:
            self._sorted = sorted(self._by_path.values(), key=_by_name)
        return _after(self._sorted, key, _by_name)

    def scope_counts(self) -> dict[str, int]:
        """Memories per scope path ('' = global)."""
        return dict(self._counts)

    def recent_after(
        self, key: tuple[float, str, str] | None, tags: set[str] = frozenset()
    ) -> Iterator[Entry]:
        """Entries newest first (`Entry.recency_key`), starting after `key`; sorted once per change. `tags`
        as for `sorted_after`."""
        tagged = self.tagged(tags, FEW_TAGGED)
        if tagged is not None:
            return _after(sorted(tagged, key=_by_recency), key, _by_recency)
        if self._recent is None:
            self._recent = sorted(self._by_path.values(), key=_by_recency)
        return _after(self._recent, key, _by_recency)

    def tagged(self, tags: set[str] | frozenset[str], most: int) -> list[Entry] | None:
        """The entries that carry every tag in `tags`, when the rarest of them is carried by at most `most`
        memories; else (or without tags) None."""
        if not tags:
            return None
        holders = min((self._by_tag.get(tag, {}) for tag in tags), key=len)
        if len(holders) > most:
            return None
        return [entry for entry in holders.values() if tags.issubset(entry.memory.tags)]

    # ---------------------------------------------------------------- changes

    def put(
        self, memory: Memory, path: str, version: str, vectors: np.ndarray | None, *, dirty: bool = False
    ) -> Entry:
        """Index a memory file (replacing whatever was indexed at that path); `vectors` None = later."""
        return self.put_many([(memory, path, version, vectors)], dirty=dirty)[0]

    def put_many(
        self, files: list[tuple[Memory, str, str, np.ndarray | None]], *, dirty: bool = False
    ) -> list[Entry]:
        """`put` for many files at distinct paths, their vectors added to the graph in one call: hnswlib
        spreads one call's insertions over the cores (a bulk import's 2,000 memories took 1.6 ms each one
        at a time)."""
        if len({path for _, path, _, _ in files}) != len(files):
            raise ValueError("put_many needs distinct paths")
        entries, labels, rows = [], [], []
        for memory, path, version, vectors in files:
            self.remove(path)
            self.clear_problem(path)
            entry = Entry(self._next_doc, memory, path, version, dirty=dirty)
            self._next_doc += 1
            self.lexical.put(entry.doc, *_lexical_fields(memory))
            self._link(entry)
            self._counts[memory.scope.path] += 1
            if vectors is not None:
                self._label(entry, len(vectors))
                labels += entry.labels
                rows.append(vectors)
            if self.journal is not None:
                self.journal.put(entry, self.counters)
            entries.append(entry)
        if rows:
            self.vector_index.add(labels, np.concatenate(rows))
        return entries

    def attach(self, entry: Entry, vectors: np.ndarray) -> None:
        """Give an entry its chunk vectors."""
        self._attach(entry, vectors)
        if self.journal is not None:
            self.journal.put(entry, self.counters)

    def _attach(self, entry: Entry, vectors: np.ndarray) -> None:
        self._label(entry, len(vectors))
        self.vector_index.add(entry.labels, vectors)

    def _label(self, entry: Entry, chunks: int) -> None:
        """Give an entry the next `chunks` labels (its vectors join the graph under them)."""
        entry.labels = list(range(self._next_label, self._next_label + chunks))
        self._next_label += chunks
        for label in entry.labels:
            self._label_entry[label] = entry

    def waiting_for_vectors(self) -> list[Entry]:
        return [entry for entry in self._by_path.values() if not entry.labels]

    def _link(self, entry: Entry) -> None:
        path, memory = entry.path, entry.memory
        self._by_path[path] = entry
        self._by_doc[entry.doc] = entry
        for tag in memory.tags:
            self._by_tag.setdefault(tag, {})[path] = entry
        if path != _own_path(memory):
            self._note_misplaced(entry)
        self._claim(self._by_id, memory.id, entry, f"id {memory.id!r}")
        self._claim(self._by_key, memory.key, entry, f"name {memory.name!r} in scope {str(memory.scope)!r}")
        self._sorted = self._recent = None

    def _note_misplaced(self, entry: Entry) -> None:
        memory = entry.memory
        self.anomalies[entry.path] = (
            f"claims scope {str(memory.scope)!r} and name {memory.name!r}, whose file would be "
            f"{_own_path(memory)}; move it there or fix its frontmatter"
        )

    def _claim(self, lookup: dict, key: object, entry: Entry, what: str) -> None:
        """Give `key` to `entry` unless another file holds it and wins (see `anomalies`)."""
        other = lookup.get(key)
        if other is None or other is entry:
            lookup[key] = entry
            return
        winner, loser = sorted((other, entry), key=_precedence)
        lookup[key] = winner
        self.anomalies[loser.path] = (
            f"{what} is also used by {winner.path}, which wins; give this file its own"
        )

    def _relink(self) -> None:
        """After a file left, one it shadowed takes its id or name back (rare: only with anomalies)."""
        for path in list(self.anomalies):
            del self.anomalies[path]
            self._link(self._by_path[path])

    def remove(self, path: str) -> Entry | None:
        entry = self._by_path.pop(path, None)
        if entry is None:
            return None
        self.vector_index.remove(entry.labels)
        self.lexical.remove(entry.doc, *_lexical_fields(entry.memory))
        del self._by_doc[entry.doc]
        self._uncount(entry.memory.scope.path)
        for tag in entry.memory.tags:
            holders = self._by_tag[tag]
            del holders[path]
            if not holders:
                del self._by_tag[tag]
        for label in entry.labels:
            self._label_entry.pop(label, None)
        if self._by_id.get(entry.memory.id) is entry:
            del self._by_id[entry.memory.id]
        if self._by_key.get(entry.memory.key) is entry:
            del self._by_key[entry.memory.key]
        self.anomalies.pop(path, None)
        if self.anomalies:
            self._relink()
        self._sorted = self._recent = None
        if self.journal is not None:
            self.journal.remove(entry)
        return entry

    def _uncount(self, scope: str) -> None:
        self._counts[scope] -= 1
        if not self._counts[scope]:
            del self._counts[scope]

    def mark_problem(self, path: str, reason: str) -> None:
        self.remove(path)
        self.problems[path] = reason
        if self.journal is not None:
            self.journal.problem(path, reason)

    def clear_problem(self, path: str) -> None:
        if self.problems.pop(path, None) is not None and self.journal is not None:
            self.journal.problem(path, None)

    # ---------------------------------------------------------------- restoring

    @property
    def counters(self) -> tuple[int, int]:
        return (self._next_doc, self._next_label)

    @classmethod
    def restore(
        cls,
        dimensions: int,
        vector_index: VectorIndex,
        lexical: LexicalIndex,
        entries: list[Entry],
        counters: tuple[int, int],
        journal: Journal | None = None,
    ) -> Catalog:
        """Rebuild the lookups around saved indexes (entries without labels wait for vectors)."""
        catalog = cls(dimensions, vector_index, lexical, journal)
        catalog._next_doc, catalog._next_label = counters
        if not catalog._link_all(entries):
            for entry in entries:
                catalog._link(entry)
        catalog._label_entry = {label: entry for entry in entries for label in entry.labels}
        catalog._counts.update(entry.memory.scope.path for entry in entries)
        return catalog

    def _link_all(self, entries: list[Entry]) -> bool:
        """`_link` of every entry at once, in comprehensions (start-up links every memory: 0.24 → 0.15 s at
        60,530); False, linking nothing, when two entries share an id or a (scope, name), whose winner
        `_claim` decides one by one."""
        by_id = {entry.memory.id: entry for entry in entries}
        by_key = {entry.memory.key: entry for entry in entries}
        if len(by_id) != len(entries) or len(by_key) != len(entries):
            return False
        self._by_id, self._by_key = by_id, by_key
        self._by_path = {entry.path: entry for entry in entries}
        self._by_doc = {entry.doc: entry for entry in entries}
        for entry in entries:
            for tag in entry.memory.tags:
                self._by_tag.setdefault(tag, {})[entry.path] = entry
            if entry.path != _own_path(entry.memory):
                self._note_misplaced(entry)
        return True


def _after(entries: list[Entry], key: tuple | None, order: Callable[[Entry], tuple]) -> Iterator[Entry]:
    """The entries of a list sorted by `order`, starting after `key`."""
    start = 0 if key is None else bisect.bisect_right(entries, key, key=order)
    return (entries[i] for i in range(start, len(entries)))


_by_name = operator.attrgetter("sort_key")
_by_recency = operator.attrgetter("recency_key")


def _precedence(entry: Entry) -> tuple[bool, str]:
    """The file at its own scope and name's path first, then by path."""
    return (entry.path != _own_path(entry.memory), entry.path)


def _own_path(memory: Memory) -> str:
    return memory_path(memory.scope, memory.name)


def _lexical_fields(memory: Memory) -> tuple[str, str, str]:
    """What the keyword index holds of a memory (name, tags, content); one derivation for adding and
    removing, as the contentless index needs."""
    return memory.name.replace("/", " "), " ".join(memory.tags), memory.content
