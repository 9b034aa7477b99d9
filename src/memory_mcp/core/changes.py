"""What changed since a point: memories created, edited, moved or forgotten, read from git history.

There is no second log. Each page walks the branch's commits newest first (`GitStore.log`) and turns every
commit's file changes into memory changes, attributed to the commit's author. A cursor pins the walk to the
branch tip the first page saw, so pages stay stable while writes go on; the `cursor` of an answer starts
the next call right after that tip, so commits that arrive later (by sync too, whatever their timestamps)
are never missed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from memory_mcp.core.model import Access, Memory, ScopeFilter
from memory_mcp.core.store import Change, Commit, GitStore
from memory_mcp.errors import InvalidInput

Kind = Literal["created", "edited", "moved", "forgotten"]
SNIPPET_CHARS: Final = 240
_HEX = re.compile(r"[0-9a-fA-F]{7,40}")


@dataclass(frozen=True)
class MemoryChange:
    """One change to one memory; `memory` is its new state, or its last content when forgotten."""

    kind: Kind
    memory: Memory
    commit: Commit
    version: str | None
    """The file's blob after the change (None when forgotten)."""
    moved_from: Memory | None = None

    @property
    def snippet(self) -> str:
        return opening(self.memory.content)


@dataclass(frozen=True)
class ChangePage:
    changes: list[MemoryChange]
    next_cursor: str | None
    """More changes of this answer (older ones); None on its last page."""
    cursor: str
    """Pass as `cursor` next time to get only what changed after this answer's tip."""


@dataclass(frozen=True)
class _Span:
    tip: str | None
    since: str | None
    after: datetime | None
    skip: int = 0


Parse = Callable[[str], Memory | None]


def opening(content: str, chars: int = SNIPPET_CHARS) -> str:
    """The start of `content` on one line, cut at a word boundary."""
    flat = " ".join(content.split())
    if len(flat) <= chars:
        return flat
    cut = flat[:chars].rsplit(" ", 1)[0] or flat[:chars]
    return cut + "…"


def feed(
    store: GitStore,
    parse: Parse,
    *,
    since: str | None,
    cursor: str | None,
    scopes: ScopeFilter,
    access: Access,
    limit: int,
) -> ChangePage:
    """A page of the changes the caller may see, newest first (see the module docstring)."""
    if since is not None and cursor is not None:
        raise InvalidInput("give since or cursor, not both")
    span = _decode(store, cursor) if cursor else _span(store, since)
    tip = span.tip or store.head()
    if tip is None:
        return ChangePage([], None, _encode(_Span(None, None, None)))
    resume = _encode(_Span(None, tip, None))
    found: list[MemoryChange] = []
    for change in _visible(store, parse, _Span(tip, span.since, span.after), scopes, access):
        found.append(change)
        if len(found) > span.skip + limit:
            more = _encode(_Span(tip, span.since, span.after, span.skip + limit))
            return ChangePage(found[span.skip : span.skip + limit], more, resume)
    return ChangePage(found[span.skip :], None, resume)


def _span(store: GitStore, since: str | None) -> _Span:
    """`since` as a commit on the branch, or an RFC 3339 time; omitted means the whole history."""
    if since is None or not since.strip():
        return _Span(None, None, None)
    since = since.strip()
    if _HEX.fullmatch(since):
        commit = store.resolve_commit(since)
        if commit is not None:
            return _Span(None, commit, None)
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise InvalidInput(
            f"since {since[:40]!r} is neither a commit of this repository's branch nor a time such as "
            "2026-01-31T12:00:00Z; use the cursor of a previous changes answer to continue from it"
        ) from None
    return _Span(None, None, _utc(moment))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _visible(
    store: GitStore, parse: Parse, span: _Span, scopes: ScopeFilter, access: Access
) -> Iterator[MemoryChange]:
    assert span.tip is not None
    cache: dict[str, Memory | None] = {}

    def memory(blob: str | None) -> Memory | None:
        if blob is None:
            return None
        if blob not in cache:
            cache[blob] = parse(blob)
        return cache[blob]

    def sees(found: Memory | None) -> bool:
        return found is not None and scopes.matches(found.scope) and access.can_read(found.scope)

    for commit, files in store.log(span.tip, since=span.since, after=span.after):
        yield from sorted(_classify(commit, files, memory, sees), key=lambda c: c.memory.key)


def _classify(
    commit: Commit,
    files: list[Change],
    memory: Callable[[str | None], Memory | None],
    sees: Callable[[Memory | None], bool],
) -> Iterator[MemoryChange]:
    """One commit's file changes as memory changes; a file gone and one added with the same id is a move,
    shown as a creation or a deletion to a caller who sees only one of the two scopes."""
    gone: dict[str, Memory] = {}
    for change in files:
        if change.new_blob is None and (old := memory(change.old_blob)) is not None:
            gone[old.id] = old
    for change in files:
        new = memory(change.new_blob)
        if new is None:
            continue
        old = memory(change.old_blob) if change.old_blob else gone.pop(new.id, None)
        moved = change.old_blob is None and old is not None
        if moved and sees(old) and sees(new):
            yield MemoryChange("moved", new, commit, change.new_blob, old)
        elif sees(new):
            kind: Kind = "edited" if change.old_blob is not None else "created"
            yield MemoryChange(kind, new, commit, change.new_blob)
        elif moved and sees(old):
            yield MemoryChange("forgotten", old, commit, None)
    for old in gone.values():
        if sees(old):
            yield MemoryChange("forgotten", old, commit, None)


def _encode(span: _Span) -> str:
    after = span.after.isoformat() if span.after else None
    raw = {"t": span.tip, "s": span.since, "a": after, "n": span.skip}
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(store: GitStore, cursor: str) -> _Span:
    span = _parse_cursor(cursor)
    for commit in (span.tip, span.since):
        if commit is not None and store.resolve_commit(commit) != commit:
            raise InvalidInput(
                "the cursor names a commit this branch no longer has; pass since=<time> instead"
            )
    return span


def _parse_cursor(cursor: str) -> _Span:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        tip, since, after, skip = raw["t"], raw["s"], raw["a"], raw["n"]
        if all(v is None or (isinstance(v, str) and _HEX.fullmatch(v)) for v in (tip, since)) and (
            isinstance(skip, int) and skip >= 0
        ):
            return _Span(tip, since, _utc(datetime.fromisoformat(after)) if after else None, skip)
    except (ValueError, TypeError, KeyError, binascii.Error):
        pass
    raise InvalidInput("cursor is not one returned by changes; omit it, or pass since instead")


@dataclass(frozen=True)
class Touched:
    """A memory that differs between two commits: its state before and after (None = absent)."""

    before: Memory | None
    after: Memory | None

    @property
    def reshapes(self) -> bool:
        """Whether the set of memories changed (created, forgotten, renamed or moved), not only a content."""
        return self.before is None or self.after is None or self.before.key != self.after.key


def touched(store: GitStore, parse: Parse, old: str | None, new: str | None) -> list[Touched]:
    """The memories that differ between two commits, a move (same id, another file) counted once."""
    pairs = [
        (parse(c.old_blob) if c.old_blob else None, parse(c.new_blob) if c.new_blob else None)
        for c in store.changes(old, new)
    ]
    gone = {before.id: before for before, after in pairs if before is not None and after is None}
    out: list[Touched] = []
    for before, after in pairs:
        if before is None and after is not None and after.id in gone:
            out.append(Touched(gone.pop(after.id), after))
        elif after is not None:
            out.append(Touched(before, after))
    return out + [Touched(before, None) for before in gone.values()]
