"""The git repository, the source of truth for memories: the `Store` port and its adapter, `GitStore`.

It maps (scope, name) to a file path (`layout`), writes files atomically, commits every change (building the
tree from HEAD's tree, never from the possibly stale on-disk index), serialises writers across processes with
an OS lock, and answers "what changed between two commits" so indexes can catch up. A memory exists once its
commit exists. pygit2 stays behind this facade: its parts are the plumbing (`git_repository`), history
(`git_history`), the work tree and index (`work_tree`) and a sync's merge commits (`git_merge`); only plain
records (`git_records`) leave them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final, Protocol

import pygit2

from memory_mcp.core.store.git_history import History
from memory_mcp.core.store.git_merge import Merging
from memory_mcp.core.store.git_packing import Packing
from memory_mcp.core.store.git_records import Author, Change, Commit
from memory_mcp.core.store.work_tree import WorkTree
from memory_mcp.errors import Unavailable

log = logging.getLogger(__name__)

STATE_DIR: Final = "memory-mcp"
"""Our private folder inside `.git`: the write lock and temporary files (same filesystem as the work tree)."""


class Store(Protocol):
    """The port the indexer and the service write and read memories through; `GitStore` is its adapter."""

    root: Path
    branch: str
    author: Author

    def head(self) -> str | None:
        """The branch tip's commit id, or None before the first commit."""

    def changes(self, old: str | None, new: str | None) -> list[Change]:
        """Memory files that differ between two commits."""

    def blob(self, blob_id: str) -> bytes:
        """A stored file's bytes by blob id."""

    def blob_size(self, blob_id: str) -> int:
        """A stored file's size, without loading it."""

    def blob_at(self, commit: str | None, path: str) -> str | None:
        """The blob id of `path` at `commit` (None: absent)."""

    def blob_id(self, data: bytes) -> str:
        """The blob id `data` gets when committed: a memory's version."""

    def uncommitted_files(self) -> list[tuple[str, bytes]]:
        """Memory files whose work-tree bytes differ from the branch tip."""

    def first_parent_changes(
        self, tip: str, stop: str | None
    ) -> Iterator[tuple[str, str | None, list[Change]]]:
        """From `tip` back along first parents: (commit, first parent, memory files changed); ends before
        `stop`, or with the root."""

    def commit_info(self, commit: str) -> Commit:
        """Who made one commit, when, and its message."""

    def write_lock(self) -> AbstractContextManager[None]:
        """The repository's cross-process write lock."""

    def commit(
        self, writes: dict[str, bytes], deletes: list[str], message: str, author: Author | None = None
    ) -> str:
        """Commit file changes on the branch (hold `write_lock`); returns the commit id."""

    def pack_objects(self) -> int:
        """Pack the loose objects commits left, once they are many; how many were packed."""


class GitStore(History, WorkTree, Merging, Packing):
    """A memory repository on disk. Reads may run in any thread; callers serialise writes (`write_lock`)."""

    def __init__(
        self,
        root: Path,
        *,
        branch: str = "main",
        author: Author,
        on_commit: Callable[[float], None] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.branch = branch
        self.author = author
        self._on_commit = on_commit
        repo = self._open_or_init()
        self._git_dir = Path(repo.path)
        self._local = threading.local()
        self._local.repo = repo  # this thread's from now on: dropped, it would be garbage for the collector
        self._folders = {}
        self._known = {}
        self._known_lock = threading.Lock()
        self._state = self._git_dir / STATE_DIR
        self._state.mkdir(mode=0o700, exist_ok=True)
        self._clear_stale_index_lock()
        self._finish_interrupted_move()
        self._refresh_index()
        self._catch_up_index()

    @property
    def repository(self) -> pygit2.Repository:
        """This thread's libgit2 repository, for remote operations (`transport`); keep it here."""
        return self._repo

    @property
    def private_dir(self) -> Path:
        """memory-mcp's own folder inside `.git` (locks, journals, scratch files)."""
        return self._state

    def _open_or_init(self) -> pygit2.Repository:
        if (self.root / ".git").exists():
            repo = pygit2.Repository(str(self.root))
            if repo.is_bare:
                raise Unavailable(f"{self.root} is a bare repository; memory-mcp needs a work tree")
            return repo
        self.root.mkdir(parents=True, exist_ok=True)
        log.info("initialising memory repository at %s (branch %s)", self.root, self.branch)
        return pygit2.init_repository(str(self.root), initial_head=self.branch)

    def commit(
        self, writes: dict[str, bytes], deletes: list[str], message: str, author: Author | None = None
    ) -> str:
        """Commit these file changes on the branch, then bring the work tree along; hold `write_lock()`.

        The commit is built from HEAD's tree plus these changes (never from the work tree or the possibly
        stale index), and the work tree is updated only once the branch points at it (`move_branch`): a
        crash leaves either no trace or a journal the next start finishes, never an uncommitted file.
        """
        for path in (*writes, *deletes):
            self._check_path(path)
        head = self.head()
        started = time.perf_counter()
        commit, changes = self._commit_object(head, writes, deletes, message, author or self.author)
        self.move_branch(head, commit, message.splitlines()[0], changes)
        if self._on_commit is not None:
            self._on_commit(time.perf_counter() - started)
        return commit

    def start_history(self, message: str, when: int) -> None:
        """Commit an empty first commit at a fixed time by a fixed author, so that every replica that starts
        from an empty remote makes the very same commit and their histories are related."""
        signature = pygit2.Signature("memory-mcp", "memory-mcp@localhost", when, 0)
        empty = self._repo.TreeBuilder().write()
        root = self._repo.create_commit(None, signature, signature, message, empty, [])
        with self.write_lock():
            if self.head() is None:
                self.move_branch(None, str(root), "sync: start the shared history")
