"""Durable derived state: one SQLite database, changed in place, whose tables all reflect one git head.

The only module that imports sqlite3. It offers the database connections the others need (the embedding
cache's file, the derived state's file, an in-memory one for tests and second processes) and a
`DerivedStore`: WAL mode, one transaction per change of the derived state, and a `meta` table whose `head`
row says which commit the tables reflect. A kill -9 leaves the last committed transaction, never a mix.

One process owns the file at a time (an OS lock held for the process's life). Another process started on the
same cache directory loads a copy into memory and keeps it to itself, so two processes never interleave
their changes (their document numbers would collide).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from memory_mcp.files import try_hold

log = logging.getLogger(__name__)

Error = sqlite3.Error
"""What a failing database raises: callers that degrade (the embedding cache) catch this, not sqlite3's."""
Connection = sqlite3.Connection
CACHE_PAGES_KB: Final = 8192
"""The page cache each connection keeps (8 MB): the keyword index's hot pages; the OS caches the rest."""
SMALL_PAGES: Final = 1024
"""The page size of the derived store and the embedding cache. A write changes a handful of scattered pages
(the new row, the keyword index's new segment and its bookkeeping, the head), each written to the WAL and
again at a checkpoint: with 1 KB pages that measured 13.6 KB per write against 36.2 KB with 4 KB pages, and
searches were no slower."""


def connect(path: Path | None, *, readonly: bool = False, page_size: int | None = None) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread (callers lock).

    A file is opened in WAL mode with `synchronous=NORMAL`: a committed transaction survives a killed
    process (it may not survive power loss, which costs a rebuild of derived data, nothing more)."""
    if path is None:
        return sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
        if page_size is not None:  # takes effect when the file is new, and is kept after
            db.execute(f"PRAGMA page_size={page_size}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        os.chmod(path, 0o600)
    db.execute(f"PRAGMA cache_size=-{CACHE_PAGES_KB}")
    return db


class DerivedStore:
    """A database of derived tables keyed to a git head; `transaction` makes each change atomic with it.

    Tables are created by their owners (`execute` DDL with IF NOT EXISTS). `persistent` is False for an
    in-memory store (tests, or a second process on the same cache directory): the same code runs on it and
    nothing reaches disk.
    """

    def __init__(self, db: sqlite3.Connection, path: Path | None, lock_fd: int | None) -> None:
        self.db = db
        self.path = path
        self._lock_fd = lock_fd
        self._mutex = threading.RLock()
        self._depth = 0
        self.generation = 0
        """How many times `reset` emptied the store: an owner that outlives a reset (the revision index)
        recreates its tables when this moved."""
        self.damaged = False
        """A change failed inside SQLite (a full disk, a damaged file): the file is deleted on `close`, so the
        next start rebuilds from git and the embedding cache rather than trusting it."""
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    @classmethod
    def in_memory(cls) -> DerivedStore:
        return cls(connect(None), None, None)

    @classmethod
    def open(cls, path: Path) -> DerivedStore:
        """The store at `path`, owned by this process; if another process owns it, a private in-memory copy.

        A file SQLite cannot read is derived data gone bad: it is deleted and the store starts empty (the
        caller rebuilds from git and the embedding cache)."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_fd = try_hold(path.with_suffix(".lock"))
        if lock_fd is None:
            return cls._copy_of(path)
        try:
            return cls(_checked(path), path, lock_fd)
        except Error as exc:
            log.warning("derived state at %s is unreadable (it will be rebuilt from git): %s", path, exc)
            _delete(path)
            return cls(connect(path, page_size=SMALL_PAGES), path, lock_fd)

    @classmethod
    def _copy_of(cls, path: Path) -> DerivedStore:
        """Another process owns the file: read its last committed state into memory (WAL readers see one)."""
        log.info("derived state at %s belongs to another process; this one keeps a private copy", path)
        memory = connect(None)
        try:
            source = connect(path, readonly=True)
            try:
                source.backup(memory)
            finally:
                source.close()
        except Error as exc:
            log.warning("could not copy the derived state (it will be rebuilt from git): %s", exc)
            memory = connect(None)
        return cls(memory, None, None)

    @property
    def persistent(self) -> bool:
        return self.path is not None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change; nested blocks join the outermost, which commits.

        It commits when the block raises, too: the tables mirror a structure in memory that keeps whatever
        the block changed before the error (a catch-up that stopped half-way is finished by the next one).
        """
        with self._mutex:
            self._depth += 1
            if self._depth == 1:
                self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except Error:
                self.damaged = True
                raise
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._commit()

    def _commit(self) -> None:
        try:
            self.db.execute("COMMIT")
        except Error:
            self.damaged = True
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The database held still for a few reads: no other thread's transaction or `reset` runs meanwhile
        (they share one connection, so a read beside an open transaction would see its uncommitted rows)."""
        with self._mutex:
            yield self.db

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def reset(self) -> None:
        """Start over empty (a format or model change, a rebuild): the owners recreate their tables."""
        with self._mutex:
            self.db.close()
            if self.path is not None:
                _delete(self.path)
            self.db = connect(self.path, page_size=SMALL_PAGES)
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.generation += 1

    def close(self) -> None:
        with self._mutex:
            self.db.close()
            if self.damaged and self.path is not None:
                log.warning("deleting the derived state after a failed change; the next start rebuilds it")
                _delete(self.path)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def _checked(path: Path) -> sqlite3.Connection:
    """Open the file and read its schema, so a damaged header fails here rather than at the first write."""
    db = connect(path, page_size=SMALL_PAGES)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except Error:
        db.close()
        raise
    return db


def _delete(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
