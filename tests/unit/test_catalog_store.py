"""The catalog's durable copy gives back each entry exactly as it was put."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from memory_mcp.core.catalog import Entry
from memory_mcp.core.catalog_store import CatalogStore
from memory_mcp.core.derived_store import DerivedStore
from memory_mcp.core.model import Memory, Scope


def _memory(name: str, scope: Scope, **fields) -> Memory:
    return Memory(name=name, scope=scope, content=f"What {name} says.", **fields)


def test_a_loaded_entry_equals_the_one_put() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    updated = datetime(2026, 11, 30, 23, 59, 58, 999000, tzinfo=UTC)
    entries = [
        Entry(1, _memory("plain", Scope()), "global/plain.md", "a" * 40, [1]),
        Entry(
            2,
            _memory(
                "deep/name",
                Scope("org/team"),
                tags=("one", 'with "quotes" and \\ backslash', "ünïcode"),
                source="https://example.com/x",
                id="fixed-id",
                created_at=created,
                updated_at=updated,
            ),
            "projects/org/team/deep/name.md",
            "b" * 40,
            [2, 3, 4],
            dirty=True,
        ),
        Entry(
            3, _memory("waiting", Scope("org/team"), tags=("solo",)), "projects/org/team/waiting.md", "c" * 40
        ),
        Entry(4, _memory("misplaced", Scope()), "global/elsewhere.md", "d" * 40, [5]),
    ]
    derived = DerivedStore.in_memory()
    catalogs = CatalogStore(derived, "model", 3)
    catalogs.empty()
    with derived.transaction():
        for entry in entries:
            catalogs.put(entry, (5, 6))

    def cached(memories: list[Memory]) -> list[np.ndarray | None]:
        labels = {entry.memory.id: entry.labels for entry in entries}
        return [np.ones((len(labels[memory.id]), 3), dtype=np.float32) for memory in memories]

    loaded = catalogs.load(cached)
    assert loaded is not None
    for entry in entries:
        assert loaded.catalog.by_path(entry.path) == entry
    assert loaded.dirty_paths == ["projects/org/team/deep/name.md"]
