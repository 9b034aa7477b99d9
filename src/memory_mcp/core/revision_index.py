"""Which commits changed each memory file: the index behind `history`, so one memory's history costs its own
revisions, not a walk of every commit since it was created.

It follows the branch's first parents (a sync's merge counts as one change, made by whoever merged), as
`git log --first-parent` would. It lives in the derived store's database (three tables: the indexed
first-parent line, each file's changes along it, and the deletions by memory id), so a restart resumes
from the stored tip instead of replaying history. Each call indexes only the commits that arrived since;
when the branch's first-parent line no longer reaches the stored tip (a force-push, a reset, a sync that
fast-forwarded to a remote whose merges put our commits on a side line), it is rebuilt from that walk.

Crash safety: commits are written oldest first, BATCH per transaction, and a transaction holds whole commits,
so a kill -9 at any instant leaves a prefix of some first-parent line: either the branch's (the next call
goes on from it) or a replaced one (the next call rebuilds). Never a commit half indexed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from memory_mcp.core.derived_store import Connection, DerivedStore
from memory_mcp.core.store import Change, Revision, Store
from memory_mcp.errors import Unavailable

FORMAT: Final = 1
"""The tables' layout; another value in the meta row means they are dropped and rebuilt from git."""
PACE_FROM: Final = 0.005
"""Seconds a commit's reading takes beyond which a paced advance rests as long (a diff, not a memo's answer)."""
BATCH: Final = 500
"""Commits per transaction while catching up: a long rebuild keeps its progress across a kill."""
_TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS rev_commits (position INTEGER PRIMARY KEY, commit_id TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rev_touches (path TEXT NOT NULL, position INTEGER NOT NULL, old BLOB, "
    "new BLOB, PRIMARY KEY (path, position)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS rev_deletions (memory_id TEXT NOT NULL, position INTEGER NOT NULL, "
    "path TEXT NOT NULL, PRIMARY KEY (memory_id, position, path)) WITHOUT ROWID",
)
_NAMES: Final = ("rev_commits", "rev_touches", "rev_deletions")
_EVERY: Final = 1 << 62
"""A position past any commit: a walk from the tip."""
_Touch = tuple[str, int, bytes | None, bytes | None]
_Rows = tuple[list[tuple[int, str]], list[_Touch], list[tuple[str, int, str]]]
"""A batch's rows: (position, commit), (path, position, old blob, new blob), (memory id, position, path)."""


class RevisionIndex:
    """Per path, the first-parent commits that changed it; per memory id, where and when it was deleted.

    `parse_id(blob)` reads the memory id a stored file holds (None when unreadable): deletions are parsed as
    they are indexed, so a forgotten memory is found by id however it was deleted (by a tool, or by hand).
    Without `derived`, the tables live in a private in-memory database (tests)."""

    def __init__(
        self,
        source: Store,
        parse_id: Callable[[str], str | None],
        derived: DerivedStore | None = None,
        *,
        batch: int = BATCH,
    ) -> None:
        self._source = source
        self._parse_id = parse_id
        self._derived = derived or DerivedStore.in_memory()
        self._batch = batch
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._generation: int | None = None
        """The derived store's `generation` the tables were checked in; another one means they may be gone."""
        self._tip: tuple[int, str] | None = None
        """(position, commit) of the newest indexed commit, as stored."""
        self.walked = 0
        """Commits read from git since this object was made: 0 after a restart that found the index stored."""

    def close(self) -> None:
        """Stop before the derived store closes: an advance in progress ends after the commit it is reading
        or the batch it is writing (what it wrote stays), and every later call raises `Unavailable`."""
        self._closing.set()
        with self._lock:
            pass

    @property
    def tip(self) -> str | None:
        with self._lock:
            self._attach()
            return self._tip[1] if self._tip else None

    def advance(self, within: float | None = None, *, paced: bool = False) -> int:
        """Index the commits that reached the branch since the stored tip; returns how many were read.

        Commits made by this process read at once; others need a diff each (~50-70 ms of one core at 60k
        memories a folder, without the GIL). With `within`, gives up (indexing none, returning 0) if reading
        them takes longer than that many seconds. `paced` (background catch-up) rests after each diff as
        long as it took, leaving the model at least half of that core."""
        deadline = None if within is None else time.monotonic() + within
        with self._lock:
            self._attach()
            head = self._source.head()
            tip = self._tip[1] if self._tip else None
            if head is None or head == tip:
                return 0
            arrived = []
            commits = self._source.first_parent_changes(head, tip)
            while True:
                started = time.monotonic()
                item = next(commits, None)
                took = time.monotonic() - started
                if paced and took > PACE_FROM:
                    self._closing.wait(took)
                self._check_open()
                if item is None:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    return 0
                arrived.append(item)
            self.walked += len(arrived)
            replaced = tip is not None and arrived[-1][1] != tip  # reached the root without meeting the tip
            start = 0 if replaced or self._tip is None else self._tip[0] + 1
            line = list(reversed(arrived))
            for offset in range(0, len(line), self._batch):
                self._check_open()
                rows = self._rows(line[offset : offset + self._batch], start + offset)
                with self._derived.transaction() as db:
                    if replaced and offset == 0:
                        for table in _NAMES:
                            db.execute(f"DELETE FROM {table}")
                    _insert(db, rows)
                self._tip = rows[0][-1]
            return len(arrived)

    def history(self, path: str, memory_id: str | None, limit: int) -> list[Revision]:
        """The last `limit` commits that changed the memory at `path`, newest first, following moves by id
        back to its creation; without `memory_id` (a forgotten memory known by path), the id its newest
        version holds."""
        self.advance()
        with self._lock, self._derived.reading() as db:
            self._check_open()
            return self._walk(db, path, memory_id, limit, _EVERY)

    def forgotten(self, memory_id: str, limit: int) -> list[Revision]:
        """The history of a memory that was deleted, from that deletion back; empty if none held this id."""
        self.advance()
        with self._lock, self._derived.reading() as db:
            self._check_open()
            row = db.execute(
                "SELECT position, path FROM rev_deletions WHERE memory_id = ? ORDER BY position DESC LIMIT 1",
                (memory_id,),
            ).fetchone()
            return [] if row is None else self._walk(db, row[1], memory_id, limit, row[0] + 1)

    # ------------------------------------------------------------- storing

    def _check_open(self) -> None:
        if self._closing.is_set():
            raise Unavailable("the server is shutting down; retry in a moment")

    def _attach(self) -> None:
        """Make sure the tables exist in the store's current database, and read the stored tip (hold the
        lock)."""
        self._check_open()
        if self._generation == self._derived.generation:
            return
        with self._derived.transaction() as db:
            if self._derived.get("revisions_format") != FORMAT:
                for table in _NAMES:
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                self._derived.put("revisions_format", FORMAT)
            for statement in _TABLES:
                db.execute(statement)
            row = db.execute(
                "SELECT position, commit_id FROM rev_commits ORDER BY position DESC LIMIT 1"
            ).fetchone()
        self._tip = None if row is None else (row[0], row[1])
        self._generation = self._derived.generation

    def _rows(self, line: list[tuple[str, str | None, list[Change]]], start: int) -> _Rows:
        """The rows of these commits (oldest first, the first at position `start`), every blob parsed before
        any is written, so a transaction only ever writes whole commits."""
        commits, touches, deletions = [], [], []
        for position, (commit, _, changes) in enumerate(line, start):
            commits.append((position, commit))
            for change in changes:
                touches.append((change.path, position, _raw(change.old_blob), _raw(change.new_blob)))
                if change.new_blob is None and change.old_blob is not None:
                    memory_id = self._parse_id(change.old_blob)
                    if memory_id is not None:
                        deletions.append((memory_id, position, change.path))
        return commits, touches, deletions

    # ------------------------------------------------------------- answering

    def _walk(self, db: Connection, path: str, memory_id: str | None, limit: int, end: int) -> list[Revision]:
        """Revisions newest first from the commits before position `end`."""
        out: list[Revision] = []
        while True:
            rows = db.execute(
                "SELECT position, old, new, commit_id FROM rev_touches JOIN rev_commits USING (position) "
                "WHERE path = ? AND position < ? ORDER BY position DESC LIMIT ?",
                (path, end, limit - len(out)),
            ).fetchall()
            for position, old, new, commit in rows:
                old_blob, new_blob = _hex(old), _hex(new)
                out.append(self._revision(commit, path, new_blob))
                if memory_id is None:
                    memory_id = self._parse_id(new_blob or old_blob or "")
                if len(out) >= limit:
                    return out
                if old_blob is None:  # created here: moved from elsewhere in the same commit, or born
                    moved = db.execute(
                        "SELECT path FROM rev_deletions WHERE memory_id = ? AND position = ? AND path != ? "
                        "LIMIT 1",
                        (memory_id or "", position, path),
                    ).fetchone()
                    if moved is None:
                        return out
                    path, end = moved[0], position
                    break
            else:
                return out

    def _revision(self, commit: str, path: str, blob: str | None) -> Revision:
        info = self._source.commit_info(commit)
        return Revision(info.commit, info.time, info.message, info.author, path, blob)


def _insert(db: Connection, rows: _Rows) -> None:
    commits, touches, deletions = rows
    db.executemany("INSERT INTO rev_commits VALUES (?, ?)", commits)
    db.executemany("INSERT INTO rev_touches VALUES (?, ?, ?, ?)", touches)
    db.executemany("INSERT OR IGNORE INTO rev_deletions VALUES (?, ?, ?)", deletions)


def _raw(blob: str | None) -> bytes | None:
    return None if blob is None else bytes.fromhex(blob)


def _hex(raw: bytes | None) -> str | None:
    return None if raw is None else raw.hex()
