"""What an agent is told beyond the data: next steps and errors in tool terms (`edit`, `replace=true`,
`history` with `version`). The CLI words its own for people; the shared views name no tool or command."""

from __future__ import annotations

from memory_mcp import views
from memory_mcp.core import AlreadyExists, MemoryMcpError, NotFound, Revision, Saved
from memory_mcp.view_types import History, SavedMemory


def saved(result: Saved, action: str) -> SavedMemory:
    """A write's result, with the next step in tool terms when near-duplicates exist."""
    out = views.saved(result, action)
    if "similar" in out:
        out["hint"] = "similar memories exist; consider merging them with edit, or forget the duplicate"
    return out


def history(revisions: list[Revision]) -> History:
    """A memory's history, saying in tool terms how to bring back a forgotten one."""
    out = views.history(revisions)
    if out.get("forgotten"):
        out["hint"] = (
            "this memory was forgotten; to restore it, call history with version set to the entry before "
            "the deletion, then remember its name, scope, tags and content again"
        )
    return out


def error_text(exc: MemoryMcpError) -> str:
    """The tool error an agent sees: the kind, the service's message, and the next step in tool terms."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, AlreadyExists) and exc.replaceable:
        text += "; use edit to change it, remember with replace=true to overwrite it, or choose another name"
    elif isinstance(exc, NotFound) and exc.findable:
        text += "; use list or recall to find memories"
    return text
