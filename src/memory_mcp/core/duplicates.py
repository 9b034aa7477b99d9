"""Memories that share an id: found, and repaired by giving all but one a fresh id.

A repository written by an older version (whose merges matched files by path, so a move on one replica
plus an edit on another kept both files) can hold one id at several paths, which makes reading by id
ambiguous. The rule: the copy with the newest `updated_at` keeps the id (on a tie, the first path in
order); every other copy keeps its name, scope, content and creation time and gets a new id, in one
commit. Nothing is deleted: forget the copies you do not want afterwards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from memory_mcp.core import markdown
from memory_mcp.core.catalog import Catalog, Entry
from memory_mcp.core.indexer import Indexer
from memory_mcp.core.store import Author


@dataclass(frozen=True)
class Duplicate:
    """One id held by several memories: the one that keeps it, and the others."""

    id: str
    keeps: Entry
    others: tuple[Entry, ...]


@dataclass(frozen=True)
class Repaired:
    commit: str | None
    """None when there was nothing to repair."""
    renamed: tuple[tuple[Entry, str], ...]
    """(the memory as it was, its new id)."""


def find(catalog: Catalog) -> list[Duplicate]:
    """Every id held by more than one memory, in id order."""
    groups: dict[str, list[Entry]] = {}
    for entry in catalog.entries():
        if entry.dirty:  # an uncommitted work-tree file is the owner's to fix
            continue
        groups.setdefault(entry.memory.id, []).append(entry)
    out = []
    for memory_id in sorted(groups):
        entries = groups[memory_id]
        if len(entries) > 1:
            ordered = sorted(entries, key=lambda e: e.path)
            keeps = max(ordered, key=lambda e: e.memory.updated_at)  # max keeps the first of equals
            out.append(Duplicate(memory_id, keeps, tuple(e for e in ordered if e is not keeps)))
    return out


def repair(indexer: Indexer, author: Author) -> Repaired:
    """Give every memory that shares its id (and loses by the rule above) a fresh id, in one commit."""
    with indexer.committing():
        with indexer.viewing:
            duplicates = find(indexer.catalog)
        if not duplicates:
            return Repaired(None, ())
        renamed = [(entry, str(uuid.uuid4())) for d in duplicates for entry in d.others]
        fresh = [(entry.memory.revised(id=new), entry.path) for entry, new in renamed]
        writes = {path: markdown.render(memory) for memory, path in fresh}
        message = f"chore: give {len(renamed)} memories that shared an id a new id\n\n" + "".join(
            f"{entry.path}: {entry.memory.id} -> {new}\n" for entry, new in renamed
        )
        store = indexer.store
        commit = store.commit(writes, [], message, author)
        items = [(memory, path, writes[path]) for memory, path in fresh]
        # The memories that keep their ids are indexed again, so lookups by id find them, not a renamed copy.
        items += [(d.keeps.memory, d.keeps.path, store.blob(d.keeps.version)) for d in duplicates]
        vectors = indexer.vectors([memory for memory, _, _ in items])
        indexer.record_many(commit, [(*item, rows) for item, rows in zip(items, vectors, strict=True)])
    return Repaired(commit, tuple(renamed))

