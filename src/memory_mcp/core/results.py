"""What the use cases return: plain, frozen records the edges turn into tool results, JSON or text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memory_mcp.core.catalog import Entry


@dataclass(frozen=True)
class Similar:
    entry: Entry
    similarity: float


@dataclass(frozen=True)
class Saved:
    entry: Entry
    commit: str
    replaced: bool = False
    similar: tuple[Similar, ...] = ()
    embedding_later: bool = False
    """Committed and found by keywords; found by meaning once the background embedding reaches it."""


@dataclass(frozen=True)
class Imported:
    """The result of `save_many`: one commit for the whole batch (None when nothing changed)."""

    commit: str | None
    created: list[Entry]
    replaced: list[Entry]
    unchanged: list[Entry]


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    next_cursor: str | None


@dataclass(frozen=True)
class Stats:
    memories: int
    chunks: int
    """Chunk vectors in the vector index."""
    queue_depth: int
    """Requests waiting for the model."""
    pending_vectors: int
    """Memories waiting for vectors (a model change, or large memories embedded in the background); found by
    keywords only meanwhile."""


@dataclass(frozen=True)
class Reindexed:
    memories: int
    unreadable: dict[str, str]


@dataclass(frozen=True)
class Repository:
    root: Path
    branch: str
    head: str | None
    """None before the first commit."""


@dataclass(frozen=True)
class Locator:
    """Which memory a call means: by id, or by name within a scope (default global)."""

    name: str | None = None
    scope: str | None = None
    id: str | None = None

    def describe(self) -> str:
        return f"id {self.id!r}" if self.id else f"{self.name!r} in scope {self.scope or 'global'!r}"
