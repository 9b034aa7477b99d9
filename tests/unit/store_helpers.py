"""Memories written straight into a real test repository: a memory file's bytes, and a commit of such files
under the store's write lock (the store's and the revision index's tests share these)."""

from __future__ import annotations

from datetime import UTC, datetime

from memory_mcp.core import markdown
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.store import GitStore


def doc(name: str, content: str, memory_id: str, scope: Scope = Scope()) -> bytes:
    """A memory file with a fixed id and fixed times, so the same arguments give the same bytes."""
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    return markdown.render(
        Memory(name=name, scope=scope, content=content, id=memory_id, created_at=moment, updated_at=moment)
    )


def commit(
    store: GitStore, writes: dict[str, bytes] | None = None, deletes: list[str] | None = None, msg: str = "m"
) -> str:
    """One commit of these writes and deletes, taken the way the service takes it; returns its id."""
    with store.write_lock():
        return store.commit(writes or {}, deletes or [], msg)
