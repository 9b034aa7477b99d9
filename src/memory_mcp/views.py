"""Plain-data views of domain results, shared by the edges (MCP tool results and the CLI's --json)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final

from memory_mcp.core import Entry, Hit, InvalidInput, Page, Revision, Saved, SyncReport, format_time

if TYPE_CHECKING:
    from memory_mcp.supervisor import Supervisor

LIST_FIELDS: Final = (
    "id",
    "name",
    "scope",
    "tags",
    "source",
    "created_at",
    "updated_at",
    "version",
    "content_length",
    "content",
)
DEFAULT_LIST_FIELDS: Final = ("name", "scope", "tags", "updated_at")


def memory(entry: Entry, fields: tuple[str, ...] = LIST_FIELDS) -> dict[str, Any]:
    m = entry.memory
    every: dict[str, Any] = {
        "id": m.id,
        "name": m.name,
        "scope": str(m.scope),
        "tags": list(m.tags),
        "source": m.source,
        "created_at": format_time(m.created_at),
        "updated_at": format_time(m.updated_at),
        "version": entry.version,
        "content_length": len(m.content),
        "content": m.content,
    }
    return {name: every[name] for name in fields}


def brief(entry: Entry) -> dict[str, Any]:
    return memory(entry, ("id", "name", "scope", "version"))


def saved(result: Saved, action: str) -> dict[str, Any]:
    out: dict[str, Any] = {"status": action, "commit": result.commit, **brief(result.entry)}
    if result.similar:
        out["similar"] = [{**brief(s.entry), "similarity": s.similarity} for s in result.similar]
        out["hint"] = "similar memories exist; consider merging them with edit, or forget the duplicate"
    return out


def hit(found: Hit) -> dict[str, Any]:
    return {
        **memory(found.entry, ("id", "name", "scope", "tags", "updated_at", "version", "content_length")),
        "score": found.score,
        "match_type": found.match_type,
        "snippet": found.snippet,
        "truncated": found.truncated,
    }


def page(result: Page, fields: tuple[str, ...]) -> dict[str, Any]:
    return {
        "memories": [memory(entry, fields) for entry in result.entries],
        "count": len(result.entries),
        "next_cursor": result.next_cursor,
    }


def revision(rev: Revision) -> dict[str, Any]:
    return {
        "commit": rev.commit,
        "time": format_time(rev.time),
        "author": rev.author,
        "message": rev.message.splitlines()[0],
        "path": rev.path,
        "version": rev.blob,
        "deleted": rev.blob is None,
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


def sync_report(report: SyncReport) -> dict[str, Any]:
    return {**asdict(report), "ok": report.ok}


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
        part = {k: v for k, v in vars(status).items() if v is not None}
        if name == "sync" and supervisor.last_sync is not None:
            part["detail"] = sync_summary(supervisor.last_sync)
        parts[name] = part
    return {"ready": supervisor.ready, "parts": parts}
