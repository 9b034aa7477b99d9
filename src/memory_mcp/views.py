"""Plain-data views of domain results, shared by the edges (MCP tool results and the CLI's --json)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final, cast

from memory_mcp.core import (
    ChangePage,
    Entry,
    Hit,
    InvalidInput,
    MemoryChange,
    Page,
    Revision,
    Saved,
    SyncReport,
    format_time,
)
from memory_mcp.view_types import (
    Brief,
    Changes,
    ChangeView,
    History,
    HitView,
    ListedMemory,
    MemoryPage,
    MemoryView,
    RevisionView,
    SavedMemory,
    SyncResult,
)

if TYPE_CHECKING:
    from memory_mcp.supervisor import Supervisor

DEFAULT_LIST_FIELDS: Final = ("name", "scope", "tags", "updated_at")

_FIELD: Final[dict[str, Callable[[Entry], Any]]] = {
    "id": lambda entry: entry.memory.id,
    "name": lambda entry: entry.memory.name,
    "scope": lambda entry: str(entry.memory.scope),
    "tags": lambda entry: list(entry.memory.tags),
    "source": lambda entry: entry.memory.source,
    "created_at": lambda entry: format_time(entry.memory.created_at),
    "updated_at": lambda entry: format_time(entry.memory.updated_at),
    "version": lambda entry: entry.version,
    "content_length": lambda entry: len(entry.memory.content),
    "content": lambda entry: entry.memory.content,
}
"""How each of `LIST_FIELDS` is read off an entry: only the fields asked for are worked out (a recall's hits
skip the creation time, the source and the content)."""
LIST_FIELDS: Final = tuple(_FIELD)


def memory(entry: Entry, fields: tuple[str, ...] = LIST_FIELDS) -> dict[str, Any]:
    return {name: _FIELD[name](entry) for name in fields}


def full(entry: Entry) -> MemoryView:
    return cast(MemoryView, memory(entry))


def brief(entry: Entry) -> Brief:
    return cast(Brief, memory(entry, ("id", "name", "scope", "version")))


def saved(result: Saved, action: str) -> SavedMemory:
    out = cast(SavedMemory, {"status": action, "commit": result.commit, **brief(result.entry)})
    if result.similar:
        out["similar"] = [{**brief(s.entry), "similarity": s.similarity} for s in result.similar]
    if result.embedding_later:
        out["indexing"] = "large memory: found by keywords now, by meaning once embedded in the background"
    return out


def history(revisions: list[Revision]) -> History:
    out: History = {"versions": [revision(r) for r in revisions], "count": len(revisions)}
    if revisions and revisions[0].blob is None:
        out["forgotten"] = True
    return out


def hit(found: Hit) -> HitView:
    return {  # type: ignore[typeddict-item]  # the memory fields come from `memory`
        **memory(found.entry, ("id", "name", "scope", "tags", "updated_at", "version", "content_length")),
        "score": found.score,
        "match_type": found.match_type,
        "snippet": found.snippet,
        "truncated": found.truncated,
    }


def page(result: Page, fields: tuple[str, ...]) -> MemoryPage:
    return {
        "memories": [cast(ListedMemory, memory(entry, fields)) for entry in result.entries],
        "count": len(result.entries),
        "next_cursor": result.next_cursor,
    }


def revision(rev: Revision) -> RevisionView:
    return {
        "commit": rev.commit,
        "time": format_time(rev.time),
        "author": rev.author,
        "message": rev.message.splitlines()[0],
        "path": rev.path,
        "version": rev.blob,
        "deleted": rev.blob is None,
    }


def change(found: MemoryChange) -> ChangeView:
    m = found.memory
    out: ChangeView = {
        "kind": found.kind,
        "id": m.id,
        "name": m.name,
        "scope": str(m.scope),
        "time": format_time(found.commit.time),
        "author": found.commit.author,
        "commit": found.commit.commit,
        "version": found.version,
        "snippet": found.snippet,
    }
    if found.moved_from is not None:
        out |= {"from_name": found.moved_from.name, "from_scope": str(found.moved_from.scope)}
    return out


def changes(result: ChangePage) -> Changes:
    return {
        "changes": [change(c) for c in result.changes],
        "count": len(result.changes),
        "next_cursor": result.next_cursor,
        "cursor": result.cursor,
    }


def check_fields(fields: list[str] | None) -> tuple[str, ...]:
    if not fields:
        return DEFAULT_LIST_FIELDS
    unknown = [f for f in fields if f not in LIST_FIELDS]
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {', '.join(map(repr, unknown))}; choose from {', '.join(LIST_FIELDS)}"
        )
    return tuple(dict.fromkeys(fields))


def sync_report(report: SyncReport) -> SyncResult:
    return cast(SyncResult, {**asdict(report), "ok": report.ok})


def sync_summary(report: SyncReport) -> str:
    """One line for the `sync` part of readiness."""
    return (
        f"pulled {report.pulled}, pushed {report.pushed}, {len(report.conflicts)} conflicts, "
        f"{report.ahead} commits waiting to push"
        + (f"; errors: {'; '.join(report.errors)}" if report.errors else "")
    )


def readiness(supervisor: Supervisor) -> dict[str, Any]:
    """`/readyz`'s body: ready or not, and each part's state, detail and start-up seconds."""
    parts: dict[str, Any] = {}
    for name, status in supervisor.parts.items():
        part = {k: _no_paths(v) for k, v in vars(status).items() if v is not None}
        if name == "sync" and supervisor.last_sync is not None:
            part["detail"] = _no_paths(sync_summary(supervisor.last_sync))
        parts[name] = part
    body: dict[str, Any] = {"ready": supervisor.ready, "parts": parts}
    if supervisor.service is not None:
        body["vectors_pending"] = supervisor.service.stats().pending_vectors
        body["problems"] = len(supervisor.service.unreadable())
    return body


_ABSOLUTE_PATH: Final = re.compile(r"(?<![\w.:/])/[^\s'\"]+")


def _no_paths(value: object) -> object:
    """`/readyz` is open to probes without a token: absolute paths in details are replaced."""
    return _ABSOLUTE_PATH.sub("<path>", value) if isinstance(value, str) else value
