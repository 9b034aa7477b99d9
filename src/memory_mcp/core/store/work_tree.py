"""The work tree and git index follow the branch: moving the branch with a crash journal, rewriting the
changed files (sparing hand edits, refusing unsafe paths), and keeping `git status` fast and quiet."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path, PurePosixPath
from stat import S_ISLNK
from typing import Final

import pygit2
from pygit2.enums import DiffOption, FileMode

from memory_mcp.core.layout import is_memory_path, is_safe_memory_path
from memory_mcp.core.markdown import MAX_FILE_BYTES
from memory_mcp.core.store.git_records import Change
from memory_mcp.core.store.git_repository import BULK_FILES, GitRepository
from memory_mcp.errors import Conflict, InvalidInput
from memory_mcp.files import write_atomic

log = logging.getLogger(__name__)

STALE_LOCK_WAIT: Final = 2.0
INDEX_REFRESHED: Final = "index-stat-refreshed"
INDEX_AT: Final = "index-at"
"""Names the commit the git index last matched, while the index lags the branch (see `_update_index`)."""
INDEX_INTERVAL: Final = 2.0
"""Seconds between two writes of a large git index."""
LAZY_INDEX_BYTES: Final = 256 * 1024
"""An index this large (about 2,700 memories) is written lazily; a smaller one takes under 2 ms to write."""
_WORK_TREE_DIFF: Final = DiffOption.INCLUDE_UNTRACKED | DiffOption.RECURSE_UNTRACKED_DIRS
MOVE_JOURNAL: Final = "move-branch"
"""Names the two commits of a `move_branch` in progress: a leftover one means a crash between moving the
branch and rewriting the work tree, finished when the repository is next opened."""


class WorkTree(GitRepository):
    _git_dir: Path
    _index_due: float = 0.0
    """When the git index may next be written (`time.monotonic()`); see `_update_index`."""
    _index_timer: threading.Timer | None = None

    def uncommitted_files(self) -> list[tuple[str, bytes]]:
        """Memory files whose work-tree bytes differ from the branch tip (edited or added by hand)."""
        head = self.head()
        out = []
        for path in sorted(self._unlike_tip_or_index(head)):
            if not is_memory_path(path) or any(p.startswith(".") for p in path.split("/")):
                continue
            data = self._read_file(path)
            if data is not None and self.blob_id(data) != self.blob_at(head, path):
                out.append((path, data))
        return out

    def _unlike_tip_or_index(self, head: str | None) -> set[str]:
        """The paths `git status` lists (tip against index, index against work tree, untracked files), from
        libgit2's two diffs: they run without the GIL, where pygit2's `status` holds it (0.2 s at 60,000
        files, in which every other thread of start-up waits)."""
        index = self._repo.index
        index.read(False)  # as status does: pick up another process's write of the index file
        paths = {delta.new_file.path for delta in index.diff_to_workdir(_WORK_TREE_DIFF).deltas}
        if head is None:
            paths.update(entry.path for entry in index)
        else:
            tip = self._repo[head].peel(pygit2.Tree)
            paths.update(delta.new_file.path for delta in index.diff_to_tree(tip).deltas)
        return paths

    def move_branch(
        self, old: str | None, new: str, message: str, changes: list[Change] | None = None
    ) -> list[str]:
        """Point the branch at `new` (which contains `old`) and bring the work tree along; hold `write_lock()`.

        The branch is the durability point; the work tree follows it. A journal naming both commits is
        written first, so a crash in between is finished by the next `GitStore` opened on this repository.
        `changes` are the memory files that differ between the two, when the caller knows them (a commit it
        just made): else the trees are diffed. Returns why files were kept out of the work tree (unsafe
        paths, files larger than any memory).
        """
        if self.head() != old:
            raise Conflict("the branch moved during the sync; retry it")
        journal = self._state / MOVE_JOURNAL
        write_atomic(journal, f"{old or '-'} {new}\n".encode())
        self._clear_stale_lock(self._git_dir / f"{self.ref}.lock")
        self._repo.create_reference(self.ref, new, force=True, message=message)
        refused = self._follow(old, new, changes)
        journal.unlink()
        return refused

    def _finish_interrupted_move(self) -> None:
        """Rewrite the work-tree files a killed `move_branch` left behind (no-op without a journal)."""
        journal = self._state / MOVE_JOURNAL
        if not journal.exists():
            return
        with self.write_lock():  # the mover holds it while its journal exists: getting it means it died
            try:
                old, new = journal.read_text().split()
            except FileNotFoundError:
                return
            head = self.head()
            if head is not None and (head == new or self._repo.descendant_of(head, new)):
                log.warning("finishing an interrupted sync: updating work-tree files to %s", new[:12])
                self._follow(None if old == "-" else old, new)
            journal.unlink()

    def _follow(self, old: str | None, new: str, changes: list[Change] | None = None) -> list[str]:
        """Rewrite the memory files that changed from `old` to `new`, sparing files edited by hand.

        A file is rewritten only if it holds `old`'s version (or is missing), so running this twice is
        harmless: that is what makes crash recovery a plain re-run. A path that could leave the repository
        (or hide a file) and a file larger than any memory may be are never written; they stay in git only,
        and the reasons are returned.
        """
        if changes is None:
            changes = self.changes(old, new)
        bulk = len(changes) > BULK_FILES
        refused: list[str] = []
        in_step: dict[str, os.stat_result] = {}
        """Files that hold the branch's version, with their stat data for the index: taken before the bytes
        are read, or, for a file written here, right after writing it (as `git checkout` does)."""
        for change in changes:
            try:
                self._check_path(change.path)
                status = _lstat(self.root / change.path)
                current = self._read_file(change.path)
                current_id = None if current is None else self.blob_id(current)
                if current_id == change.new_blob:
                    if status is not None and current is not None:
                        in_step[change.path] = status
                    continue
                if current is not None and current_id != change.old_blob:
                    log.warning(
                        "keeping hand-edited work-tree file %s (the branch has another version)", change.path
                    )
                elif change.new_blob is None:
                    self._delete_file(change.path)
                elif self.blob_size(change.new_blob) > MAX_FILE_BYTES:
                    raise InvalidInput(f"its version is {self.blob_size(change.new_blob)} bytes, too large")
                else:
                    self._write_file(change.path, self.blob(change.new_blob), durable=not bulk)
                    if (status := _lstat(self.root / change.path)) is not None:
                        in_step[change.path] = status
            except (InvalidInput, OSError) as exc:
                log.error("not writing work-tree file %r: %s", change.path, exc)
                refused.append(f"{change.path!r} not written to the work tree: {exc}")
        if bulk:
            os.sync()
        self._update_index(old, new, changes, in_step)
        return refused

    def _update_index(
        self, old: str | None, new: str, changes: list[Change], in_step: dict[str, os.stat_result]
    ) -> None:
        """Keep `git status` fast and quiet for humans: best effort, and for a large index at most once per
        INDEX_INTERVAL.

        Writing the index rewrites every entry (9.5 MB and 0.1 s at 100,000 memories), so a move within the
        interval only leaves a marker naming the commit the index last matched (its first lag); the next
        write, here or at the next start, catches up with every change since. Files that hold the branch's
        version are recorded with their size and times: without them every status (ours at start-up, or a
        human's) must hash every file.
        """
        marker = self._state / INDEX_AT
        lagging = marker.exists()
        if time.monotonic() < self._index_due and self._index_bytes() >= LAZY_INDEX_BYTES:
            self._lag(old, lagging)
            return
        if lagging:
            changes, in_step = self.changes(_commit_or_none(marker.read_text()), new), {}
        self._index_due = time.monotonic() + INDEX_INTERVAL
        if self._write_index(changes, in_step):
            marker.unlink(missing_ok=True)
        else:  # locked by a person's git command, say: the next write (or start) catches up from here
            self._lag(old, lagging)

    def _lag(self, old: str | None, lagging: bool) -> None:
        """Mark the index as matching `old` (unless it lags already) and have it written later."""
        if not lagging:
            write_atomic(self._state / INDEX_AT, (old or "-").encode(), durable=False)
        self._index_later()

    def _index_bytes(self) -> int:
        try:
            return (self._git_dir / "index").stat().st_size
        except FileNotFoundError:
            return 0

    def _index_later(self) -> None:
        """Write the lagging index when the interval ends, unless a move does it first (hold `write_lock()`)."""
        if self._index_timer is None:
            wait = max(0.0, self._index_due - time.monotonic())
            self._index_timer = threading.Timer(wait, self._write_lagging_index)
            self._index_timer.daemon = True
            self._index_timer.start()

    def _write_lagging_index(self) -> None:
        with self.write_lock():
            self._index_timer = None
            head = self.head()
            if head is None or not (self._state / INDEX_AT).exists():
                return
            if time.monotonic() < self._index_due:  # written meanwhile, and lagging again since
                self._index_later()
                return
            self._update_index(None, head, [], {})

    def _catch_up_index(self) -> None:
        """At start-up: bring an index a killed or stopped server left behind the branch up to date."""
        marker = self._state / INDEX_AT
        head = self.head()
        if not marker.exists() or head is None:
            return
        with self.write_lock():
            self._index_due = 0.0
            self._update_index(None, head, [], {})

    def _write_index(self, changes: list[Change], in_step: dict[str, os.stat_result]) -> bool:
        """Apply `changes` to the index and write it; a file is recorded with its stat data only if it holds
        the branch's version (`in_step` knows some already; a hand edit stays unstaged). False if it could not
        be written.

        Entries are made here, not by libgit2's add-by-path, which took ~0.5-1 ms per file (filters, hashing
        through the object database): a 2,000-memory import spent 1-2 s of each commit in it."""
        try:
            index = self._repo.index
            index.read(False)
            for change in changes:
                if change.new_blob is None:
                    if change.path in index:
                        index.remove(change.path)
                else:
                    status = in_step.get(change.path) or self._stat_if_holds(change.path, change.new_blob)
                    index.add(_Entry(change.path, change.new_blob, status))
            index.write()
        except (pygit2.GitError, OSError) as exc:
            log.warning("could not update the git index (the branch is safe; retrying later): %s", exc)
            return False
        return True

    def _stat_if_holds(self, path: str, blob: str) -> os.stat_result | None:
        """The file's stat data if it holds `blob`. Taken before its bytes are read, as git does: a file that
        changes after the stat no longer matches it, so status hashes it again rather than trusting it."""
        status = _lstat(self.root / path)
        return status if status is not None and self._holds(path, blob) else None

    def _clear_stale_index_lock(self) -> None:
        """At start-up: an `index.lock` a killed writer left would refuse every later index write."""
        lock = self._git_dir / "index.lock"
        if lock.exists():
            with self.write_lock():
                self._clear_stale_lock(lock)

    def _refresh_index(self) -> None:
        """Record file sizes, times and inodes for index entries whose own are missing (written by earlier
        versions) or stale (the repository was copied or restored from a backup), so status stops hashing
        every file: libgit2 never writes back what it learns. Done once per copy (the marker holds the work
        tree's inode, which a remount keeps and a copy changes); entries whose file differs are left alone."""
        marker = self._state / INDEX_REFRESHED
        identity = str(self.root.stat().st_ino)
        if marker.exists() and marker.read_text() == identity:
            return
        with self.write_lock():
            try:
                index = self._repo.index
                index.read(False)
                for entry in list(index):
                    status = self._stat_if_holds(entry.path, str(entry.id))
                    if status is not None:
                        index.add(_Entry(entry.path, str(entry.id), status))
                index.write()
            except (pygit2.GitError, OSError) as exc:
                log.warning("could not refresh the git index (status stays slow): %s", exc)
                return
            write_atomic(marker, identity.encode(), durable=False)

    def _holds(self, path: str, blob: str) -> bool:
        """Whether `path` is a safe memory path whose work-tree file holds exactly `blob`."""
        try:
            self._check_path(path)
        except InvalidInput:
            return False
        data = self._read_file(path)
        return data is not None and self.blob_id(data) == blob

    def _read_file(self, path: str) -> bytes | None:
        """A work-tree file's bytes; None when it is missing or any part of its path is a symbolic link
        (each folder is opened relative to the one before, refusing links, so a scope folder replaced by a
        link to somewhere else is never read through)."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        *folders, name = path.split("/")
        try:
            fd = os.open(self.root, flags | os.O_DIRECTORY)
        except OSError:
            return None
        try:
            for folder in folders:
                inner = os.open(folder, flags | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = inner
            file_fd = os.open(name, flags, dir_fd=fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        with os.fdopen(file_fd, "rb") as handle:
            return handle.read()

    def _check_path(self, path: str) -> None:
        """Refuse anything that could leave the repo or reach `.git`: absolute paths, dot-parts, symlinks on the way."""
        if not is_safe_memory_path(path):
            raise InvalidInput(f"refusing unsafe path {path!r}")
        current = str(self.root)
        parts = PurePosixPath(path).parts
        for depth, part in enumerate(parts, 1):
            current = f"{current}/{part}"
            try:
                if S_ISLNK(os.lstat(current).st_mode):
                    raise InvalidInput(f"refusing to write through symbolic link {'/'.join(parts[:depth])}")
            except (FileNotFoundError, NotADirectoryError):
                return  # nothing below a missing part exists, links included
            except OSError as exc:
                raise InvalidInput(f"cannot inspect {path!r}: {exc.strerror}") from exc

    def _write_file(self, path: str, data: bytes, *, durable: bool = True) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        # The temporary lives in .git, so a crash never leaves stray files among the memories.
        write_atomic(target, data, mode=0o644, scratch=self._state, durable=durable)

    def _delete_file(self, path: str) -> None:
        target = self.root / path
        target.unlink(missing_ok=True)
        parent = target.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def _clear_stale_lock(self, lock: Path) -> None:
        """A lock file left by a killed writer would block every later commit; we hold the write lock."""
        deadline = time.monotonic() + STALE_LOCK_WAIT
        while lock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if lock.exists():
            log.warning("removing stale lock file %s", lock.name)
            lock.unlink(missing_ok=True)


class _Entry(pygit2.IndexEntry):
    """An index entry for a regular file, with its stat data when given, as `git add` records it. pygit2's
    entries carry only path, id and mode, so the C form it builds for libgit2 is completed here (libgit2
    copies every field). Git keeps these fields as 32-bit numbers."""

    def __init__(self, path: str, blob: str, status: os.stat_result | None) -> None:
        super().__init__(path, pygit2.Oid(hex=blob), FileMode.BLOB)
        self._status = status

    def _to_c(self):  # type: ignore[no-untyped-def]
        centry, path = super()._to_c()
        status = self._status
        if status is not None:
            for field, ns in ((centry.ctime, status.st_ctime_ns), (centry.mtime, status.st_mtime_ns)):
                field.seconds, field.nanoseconds = (ns // 1_000_000_000) & _INT32, ns % 1_000_000_000
            centry.dev, centry.ino = status.st_dev & _UINT32, status.st_ino & _UINT32
            centry.uid, centry.gid = status.st_uid & _UINT32, status.st_gid & _UINT32
            centry.file_size = status.st_size & _UINT32
        return centry, path


_INT32: Final = 0x7FFFFFFF
_UINT32: Final = 0xFFFFFFFF


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _commit_or_none(text: str) -> str | None:
    text = text.strip()
    return None if text in ("", "-") else text
