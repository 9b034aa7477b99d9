"""Which commits changed each memory file: the index behind `history`, so one memory's history costs its own
revisions, not a walk of every commit since it was created.

It follows the branch's first parents (a sync's merge counts as one change, made by whoever merged), as
`git log --first-parent` would. Built from the branch once, on first use or by a server's background loop,
then advanced by the commits that arrived since, each looked at once. When the branch's first-parent line no
longer reaches the indexed tip (a sync fast-forwarded to a remote whose merges put our commits on a side
line), it is rebuilt from that walk.

It lives in memory: a path list and a few small tuples per commit (tens of MB at a million file changes). A
persisted copy would belong with the rest of the derived state, behind the same three methods.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass

from memory_mcp.core.store import Change, Revision, Store


@dataclass(frozen=True)
class _Touch:
    """One commit that changed a file: its position on the first-parent line, and the blob before/after."""

    position: int
    old: str | None
    new: str | None


class RevisionIndex:
    """Per path, the first-parent commits that changed it; per memory id, where and when it was deleted.

    `parse_id(blob)` reads the memory id a stored file holds (None when unreadable): deletions are parsed as
    they are indexed, so a forgotten memory is found by id however it was deleted (by a tool, or by hand)."""

    def __init__(self, source: Store, parse_id: Callable[[str], str | None]) -> None:
        self._source = source
        self._parse_id = parse_id
        self._lock = threading.Lock()
        self._commits: list[str] = []
        """The first-parent line, oldest first: a commit's position is its index here."""
        self._touches: dict[str, list[_Touch]] = {}
        self._deleted: dict[str, list[tuple[int, str]]] = {}
        """memory id → (position, path) of each commit that deleted a file holding it, oldest first."""

    @property
    def tip(self) -> str | None:
        return self._commits[-1] if self._commits else None

    def advance(self) -> int:
        """Index the commits that reached the branch since the last call; returns how many."""
        with self._lock:
            head = self._source.head()
            if head is None or head == self.tip:
                return 0
            arrived = list(self._source.first_parent_changes(head, self.tip))
            if self._commits and arrived[-1][1] != self.tip:
                self._reset()  # the walk reached the root without meeting the tip: a new first-parent line
            for commit, _, changes in reversed(arrived):
                self._add(commit, changes)
            return len(arrived)

    def history(self, path: str, memory_id: str | None, limit: int) -> list[Revision]:
        """The last `limit` commits that changed the memory at `path`, newest first, following moves by id
        back to its creation; without `memory_id` (a forgotten memory known by path), the id its newest
        version holds."""
        self.advance()
        with self._lock:
            return self._walk(path, memory_id, limit, len(self._commits))

    def forgotten(self, memory_id: str, limit: int) -> list[Revision]:
        """The history of a memory that was deleted, from that deletion back; empty if none held this id."""
        self.advance()
        with self._lock:
            deletions = self._deleted.get(memory_id)
            if not deletions:
                return []
            position, path = deletions[-1]
            return self._walk(path, memory_id, limit, position + 1)

    # ------------------------------------------------------------- building

    def _reset(self) -> None:
        self._commits, self._touches, self._deleted = [], {}, {}

    def _add(self, commit: str, changes: list[Change]) -> None:
        position = len(self._commits)
        self._commits.append(commit)
        for change in changes:
            touch = _Touch(position, change.old_blob, change.new_blob)
            self._touches.setdefault(change.path, []).append(touch)
            if change.new_blob is None and change.old_blob is not None:
                memory_id = self._parse_id(change.old_blob)
                if memory_id is not None:
                    self._deleted.setdefault(memory_id, []).append((position, change.path))

    # ------------------------------------------------------------- answering

    def _walk(self, path: str, memory_id: str | None, limit: int, end: int) -> list[Revision]:
        """Revisions newest first from the commits before position `end` (hold the lock)."""
        out: list[Revision] = []
        while True:
            touches = self._touches.get(path, [])
            upto = bisect.bisect_left(touches, end, key=lambda touch: touch.position)
            for touch in reversed(touches[:upto]):
                out.append(self._revision(touch, path))
                if memory_id is None:
                    memory_id = self._parse_id(touch.new or touch.old or "")
                if len(out) >= limit:
                    return out
                if touch.old is None:  # created here: moved from elsewhere in the same commit, or born
                    moved_from = self._moved_from(memory_id, touch.position, path)
                    if moved_from is None:
                        return out
                    path, end = moved_from, touch.position
                    break
            else:
                return out

    def _moved_from(self, memory_id: str | None, position: int, path: str) -> str | None:
        """The path the same commit deleted a file holding `memory_id` from, if any."""
        for where, gone in reversed(self._deleted.get(memory_id or "", [])):
            if where == position and gone != path:
                return gone
            if where < position:
                break
        return None

    def _revision(self, touch: _Touch, path: str) -> Revision:
        info = self._source.commit_info(self._commits[touch.position])
        return Revision(info.commit, info.time, info.message, info.author, path, touch.new)

