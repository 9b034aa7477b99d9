"""The git repository: the only module that imports pygit2 and the source of truth for memories.

It maps (scope, name) to a file path, writes files atomically, commits every change (building the tree
from HEAD's tree, never from the possibly stale on-disk index), serialises writers across processes with an
OS lock, and answers "what changed between two commits" so indexes can catch up. A memory exists once
its commit exists.

It stays one file, over 400 lines, on purpose: it is the one owner of pygit2, so every libgit2 object,
thread rule and crash-safety step of the repository is in one place.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Final, Protocol

import pygit2
from pygit2.enums import FileMode, Option, SortMode

from memory_mcp.core.markdown import MAX_FILE_BYTES
from memory_mcp.core.merge import File, NewFile
from memory_mcp.core.model import Scope
from memory_mcp.errors import Conflict, InvalidInput, Unavailable
from memory_mcp.files import locked, write_atomic

log = logging.getLogger(__name__)

GLOBAL_DIR: Final = "global"
PROJECTS_DIR: Final = "projects"
SUFFIX: Final = ".md"
STATE_DIR: Final = "memory-mcp"
"""Our private folder inside `.git`: the write lock and temporary files (same filesystem as the work tree)."""
STALE_LOCK_WAIT: Final = 2.0
INDEX_REFRESHED: Final = "index-stat-refreshed"
BULK_FILES: Final = 32
"""Above this many files in one commit, flush the disk once at the end instead of once per file and object."""
MOVE_JOURNAL: Final = "move-branch"
"""Names the two commits of a `move_branch` in progress: a leftover one means a crash between moving the
branch and rewriting the work tree, finished when the repository is next opened."""

pygit2.option(Option.ENABLE_FSYNC_GITDIR, 1)

_TreeEntry = tuple[pygit2.Oid, int]
"""A tree entry to write: (object id, file mode)."""


@dataclass(frozen=True)
class Author:
    name: str
    email: str


@dataclass(frozen=True)
class Change:
    """One memory file changed between two commits (`None` blob = absent on that side)."""

    path: str
    old_blob: str | None
    new_blob: str | None


@dataclass(frozen=True)
class Commit:
    """One commit of the repository's history: who made it and when."""

    commit: str
    time: datetime
    author: str
    message: str


@dataclass(frozen=True)
class Revision:
    """One commit that changed a memory, with the file's blob at that commit (its `version`)."""

    commit: str
    time: datetime
    message: str
    author: str
    path: str
    blob: str | None


DELETION_SCAN: Final = 10_000
"""Commits searched for the deletion of a forgotten memory asked for by id."""


def memory_path(scope: Scope, name: str) -> str:
    """The repo-relative file path of a memory: `global/<name>.md` or `projects/<scope>/<name>.md`."""
    parts = (GLOBAL_DIR,) if scope.is_global else (PROJECTS_DIR, *scope.path.split("/"))
    path = PurePosixPath(*parts, *name.split("/"))
    return f"{path}{SUFFIX}"


def is_memory_path(path: str) -> bool:
    return path.endswith(SUFFIX) and path.split("/", 1)[0] in (GLOBAL_DIR, PROJECTS_DIR)


def is_safe_memory_path(path: str) -> bool:
    """A memory path this server may write: relative, no empty or dot-led part (`global/..md` is not)."""
    parts = path.split("/")
    safe_parts = all(part and not part.startswith(".") for part in parts)
    return is_memory_path(path) and not path.startswith("/") and safe_parts


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

    def history(
        self, path: str, memory_id: str | None, parse_id: Callable[[str], str | None], limit: int
    ) -> list[Revision]:
        """The commits that changed one memory, newest first, following moves."""

    def deleted_path(self, memory_id: str, parse_id: Callable[[str], str | None]) -> str | None:
        """Where a forgotten memory was when it was last deleted."""

    def write_lock(self) -> AbstractContextManager[None]:
        """The repository's cross-process write lock."""

    def commit(
        self, writes: dict[str, bytes], deletes: list[str], message: str, author: Author | None = None
    ) -> str:
        """Commit file changes on the branch (hold `write_lock`); returns the commit id."""


class GitStore:
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
        self._git_dir = Path(self._open_or_init().path)
        self._local = threading.local()
        self._state = self._git_dir / STATE_DIR
        self._state.mkdir(mode=0o700, exist_ok=True)
        self._finish_interrupted_move()
        self._refresh_index()

    @property
    def _repo(self) -> pygit2.Repository:
        """One libgit2 repository object per thread: libgit2 objects must not be shared across threads."""
        repo = getattr(self._local, "repo", None)
        if repo is None:
            repo = self._local.repo = pygit2.Repository(str(self.root))
        return repo

    @property
    def repository(self) -> pygit2.Repository:
        """This thread's libgit2 repository, for remote operations (`core.transport`); keep it here."""
        return self._repo

    @property
    def private_dir(self) -> Path:
        """memory-mcp's own folder inside `.git` (locks, journals, scratch files)."""
        return self._state

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    def _open_or_init(self) -> pygit2.Repository:
        if (self.root / ".git").exists():
            repo = pygit2.Repository(str(self.root))
            if repo.is_bare:
                raise Unavailable(f"{self.root} is a bare repository; memory-mcp needs a work tree")
            return repo
        self.root.mkdir(parents=True, exist_ok=True)
        log.info("initialising memory repository at %s (branch %s)", self.root, self.branch)
        return pygit2.init_repository(str(self.root), initial_head=self.branch)

    # ---------------------------------------------------------------- reading

    def head(self) -> str | None:
        """The branch tip's commit id, or None before the first commit."""
        ref = self._repo.references.get(self.ref)
        return None if ref is None else str(ref.resolve().target)

    def files(self, commit: str | None) -> Iterator[tuple[str, str]]:
        """Every memory file at `commit` as (path, blob id)."""
        if commit is None:
            return
        tree = self._repo[commit].peel(pygit2.Tree)
        for top in (GLOBAL_DIR, PROJECTS_DIR):
            if top in tree and tree[top].type_str == "tree":
                yield from self._walk(tree[top].peel(pygit2.Tree), top)

    def _walk(self, tree: pygit2.Tree, prefix: str) -> Iterator[tuple[str, str]]:
        for entry in tree:
            path = f"{prefix}/{entry.name}"
            if entry.filemode == FileMode.TREE:
                yield from self._walk(entry.peel(pygit2.Tree), path)
            elif entry.filemode in (FileMode.BLOB, FileMode.BLOB_EXECUTABLE) and path.endswith(SUFFIX):
                yield path, str(entry.id)

    def changes(self, old: str | None, new: str | None) -> list[Change]:
        """Memory files that differ between two commits."""
        old_tree = self._tree(old)
        new_tree = self._tree(new)
        diff = old_tree.diff_to_tree(new_tree)
        out = []
        for delta in diff.deltas:
            for side in {delta.old_file.path, delta.new_file.path}:
                if not is_memory_path(side):
                    continue
                before = self._blob_at(old_tree, side)
                after = self._blob_at(new_tree, side)
                if before != after:
                    out.append(Change(side, before, after))
        return out

    def _tree(self, commit: str | None) -> pygit2.Tree:
        if commit is None:
            return self._repo[self._repo.TreeBuilder().write()].peel(pygit2.Tree)
        return self._repo[commit].peel(pygit2.Tree)

    @staticmethod
    def _blob_at(tree: pygit2.Tree, path: str) -> str | None:
        """The blob id of the regular file at `path`, None when there is none (or a link, or a folder)."""
        file = GitStore._file_at(tree, path)
        regular = file is not None and file.mode in (FileMode.BLOB, FileMode.BLOB_EXECUTABLE)
        return file.blob if regular else None  # type: ignore[union-attr]

    @staticmethod
    def _file_at(tree: pygit2.Tree, path: str) -> File | None:
        try:
            entry = tree[path]
        except KeyError:
            return None
        return None if entry.filemode == FileMode.TREE else File(str(entry.id), int(entry.filemode))

    def blob(self, blob_id: str) -> bytes:
        return self._repo[blob_id].peel(pygit2.Blob).data

    def blob_size(self, blob_id: str) -> int:
        """A blob's size, read from its header without loading it."""
        return self._repo.odb.read_header(blob_id)[1]

    def blob_at(self, commit: str | None, path: str) -> str | None:
        return None if commit is None else self._blob_at(self._tree(commit), path)

    def uncommitted_files(self) -> list[tuple[str, bytes]]:
        """Memory files whose work-tree bytes differ from the branch tip (edited or added by hand)."""
        head = self.head()
        out = []
        for path in self._repo.status(untracked_files="all"):
            if not is_memory_path(path) or any(p.startswith(".") for p in path.split("/")):
                continue
            data = self._read_file(path)
            if data is not None and self.blob_id(data) != self.blob_at(head, path):
                out.append((path, data))
        return out

    # ---------------------------------------------------------------- history

    def history(self, path: str, memory_id: str | None, parse_id, limit: int) -> list[Revision]:
        """The commits that changed this memory, newest first, following moves by memory id.

        `parse_id(blob_id)` returns the memory id stored in a blob, used to recognise a move; without
        `memory_id` (a forgotten memory known by its path), the id of the newest version found is used.
        """
        head = self.head()
        if head is None:
            return []
        walker = self._repo.walk(head, SortMode.TOPOLOGICAL | SortMode.TIME)
        walker.simplify_first_parent()
        out: list[Revision] = []
        known: tuple[str, str, str | None] | None = None
        """(commit, path, blob) of the last parent looked at: the walk's next commit, so looked up once."""
        for commit in walker:
            tree = commit.tree
            if known is not None and known[:2] == (str(commit.id), path):
                here = known[2]
            else:
                here = self._blob_at(tree, path)
            parent = commit.parents[0] if commit.parents else None
            parent_tree = parent.tree if parent is not None else None
            before = self._blob_at(parent_tree, path) if parent_tree is not None else None
            known = (str(parent.id), path, before) if parent is not None else None
            if here == before:
                continue
            out.append(self._revision(commit, path, here))
            if memory_id is None:
                memory_id = parse_id(here or before)
            if len(out) >= limit:
                break
            if before is None:
                moved_from = self._moved_from(parent_tree, tree, memory_id, parse_id)
                if moved_from is None:
                    break
                path = moved_from
        return out

    def deleted_path(self, memory_id: str, parse_id, max_commits: int = DELETION_SCAN) -> str | None:
        """Where the memory with this id was when it was last deleted, searching the newest `max_commits`
        commits of the branch whose message names the id (as every commit this server makes does), so a
        search costs a string test per commit, not a diff."""
        head = self.head()
        if head is None:
            return None
        walker = self._repo.walk(head, SortMode.TOPOLOGICAL | SortMode.TIME)
        walker.simplify_first_parent()
        for _, commit in zip(range(max_commits), walker, strict=False):
            if not commit.parents:
                return None
            if memory_id not in commit.message:
                continue
            for delta in commit.parents[0].tree.diff_to_tree(commit.tree).deltas:
                gone = delta.old_file.path
                if delta.status == pygit2.enums.DeltaStatus.DELETED and is_memory_path(gone):
                    if parse_id(str(delta.old_file.id)) == memory_id:
                        return gone
        return None

    def log(
        self, tip: str, *, since: str | None = None, after: datetime | None = None
    ) -> Iterator[tuple[Commit, list[Change]]]:
        """Non-merge commits from `tip` back, newest first, each with the memory files it changed.

        `since` excludes that commit and its ancestors (what a reader had seen); `after` skips commits
        older than that time. Merges are skipped: a sync's merge only picks one side's blob of each file,
        so every change appears once, in the commit of the author who made it.
        """
        walker = self._repo.walk(tip, SortMode.TOPOLOGICAL | SortMode.TIME)
        if since is not None:
            walker.hide(pygit2.Oid(hex=since))
        for commit in walker:
            moment = datetime.fromtimestamp(commit.commit_time, UTC)
            if len(commit.parents) > 1 or (after is not None and moment < after):
                continue
            parent = str(commit.parents[0].id) if commit.parents else None
            author = f"{commit.author.name} <{commit.author.email}>"
            info = Commit(str(commit.id), moment, author, commit.message.strip())
            yield info, self.changes(parent, str(commit.id))

    def resolve_commit(self, commit: str) -> str | None:
        """The full id of the branch's commit `commit` names (an id or a unique prefix), else None."""
        try:
            found = self._repo.revparse_single(commit).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError):
            return None
        head = self.head()
        full = str(found.id)
        if head is None or not (full == head or self._repo.descendant_of(head, full)):
            return None
        return full

    def _moved_from(self, parent_tree, tree, memory_id: str, parse_id) -> str | None:
        if parent_tree is None:
            return None
        for delta in parent_tree.diff_to_tree(tree).deltas:
            gone = delta.old_file.path
            if is_memory_path(gone) and self._blob_at(tree, gone) is None:
                if parse_id(str(delta.old_file.id)) == memory_id:
                    return gone
        return None

    @staticmethod
    def _revision(commit: pygit2.Commit, path: str, blob: str | None) -> Revision:
        return Revision(
            commit=str(commit.id),
            time=datetime.fromtimestamp(commit.commit_time, UTC),
            message=commit.message.strip(),
            author=f"{commit.author.name} <{commit.author.email}>",
            path=path,
            blob=blob,
        )

    # ---------------------------------------------------------------- writing

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Hold the repository's OS-level write lock (shared by every process on this repo)."""
        with locked(self._state / "write.lock"):
            yield

    @contextmanager
    def sync_lock(self) -> Iterator[None]:
        """Serialise syncs with the remote across processes; take it before `write_lock()`, not inside."""
        with locked(self._state / "sync.lock"):
            yield

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
        commit = self._commit_object(head, writes, deletes, message, author or self.author)
        self.move_branch(head, commit, message.splitlines()[0])
        if self._on_commit is not None:
            self._on_commit(time.perf_counter() - started)
        return commit

    @staticmethod
    def blob_id(data: bytes) -> str:
        """The git blob id `data` gets when committed: a memory's version."""
        return str(pygit2.hash(data))

    def _commit_object(
        self, head: str | None, writes: dict[str, bytes], deletes: list[str], message: str, author: Author
    ) -> str:
        """Blobs, trees and the commit object; the branch is not touched yet."""
        root = self._repo[head].peel(pygit2.Commit).tree if head else None
        bulk = len(writes) > BULK_FILES
        if bulk:  # process-wide switch; safe because the caller holds the write lock
            pygit2.option(Option.ENABLE_FSYNC_GITDIR, 0)
        try:
            blobs = {path: (self._repo.create_blob(data), FileMode.BLOB) for path, data in writes.items()}
            changes: dict[str, _TreeEntry | None] = {**{p: None for p in deletes}, **blobs}
            tree_id = self._build_tree(root, changes)
            signature = pygit2.Signature(author.name, author.email)
            committer = pygit2.Signature(self.author.name, self.author.email)
            parents = [pygit2.Oid(hex=head)] if head else []
            commit = self._repo.create_commit(None, signature, committer, message, tree_id, parents)
        finally:
            if bulk:
                pygit2.option(Option.ENABLE_FSYNC_GITDIR, 1)
                os.sync()  # every object on disk before the branch points at them
        return str(commit)

    def _build_tree(self, tree: pygit2.Tree | None, changes: dict[str, _TreeEntry | None]) -> pygit2.Oid:
        """A new tree equal to `tree` with `changes` (path → (blob, mode), None = delete) applied; empty
        dirs pruned. A file never replaces a folder, nor a folder a file."""
        builder = self._repo.TreeBuilder(tree) if tree is not None else self._repo.TreeBuilder()
        nested: dict[str, dict[str, _TreeEntry | None]] = {}
        for path, blob in changes.items():
            head, _, rest = path.partition("/")
            existing = builder.get(head)
            if rest:
                nested.setdefault(head, {})[rest] = blob
            elif blob is None:
                if existing is not None:
                    builder.remove(head)
            elif existing is not None and existing.filemode == FileMode.TREE:
                raise Conflict(f"'{head}' is a folder in the repository where a file is needed")
            else:
                builder.insert(head, *blob)
        for name, sub_changes in nested.items():
            existing = builder.get(name)
            if existing is not None and existing.filemode != FileMode.TREE:
                raise Conflict(f"'{name}' is a file in the repository where a folder is needed")
            sub_tree = self._repo[existing.id].peel(pygit2.Tree) if existing is not None else None
            sub_id = self._build_tree(sub_tree, sub_changes)
            if len(self._repo[sub_id].peel(pygit2.Tree)) == 0:
                if existing is not None:
                    builder.remove(name)
            else:
                builder.insert(name, sub_id, FileMode.TREE)
        return builder.write()

    def _clear_stale_lock(self, lock: Path) -> None:
        """A lock file left by a killed writer would block every later commit; we hold the write lock."""
        deadline = time.monotonic() + STALE_LOCK_WAIT
        while lock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if lock.exists():
            log.warning("removing stale lock file %s", lock.name)
            lock.unlink(missing_ok=True)

    # ---------------------------------------------------------------- merging (sync)

    def merge_base(self, one: str, other: str) -> str | None:
        base = self._repo.merge_base(one, other)
        return None if base is None else str(base)

    def contains(self, commit: str, other: str) -> bool:
        """Whether `commit` is `other` or descends from it."""
        return commit == other or self._repo.descendant_of(commit, other)

    def count(self, include: str | None, exclude: str | None) -> int:
        """Commits reachable from `include` but not from `exclude`."""
        if include is None:
            return 0
        if exclude is None:
            return sum(1 for _ in self._repo.walk(include))
        return self._repo.ahead_behind(include, exclude)[0]

    def reference(self, name: str) -> str | None:
        """The commit a reference (such as a remote-tracking branch) points at, None when it is absent."""
        ref = self._repo.references.get(name)
        return None if ref is None else str(ref.resolve().target)

    def merge_inputs(
        self, base: str | None, local: str, remote: str
    ) -> tuple[dict[str, File], dict[str, File], dict[str, File]]:
        """The files of the three commits at every path where they are not all equal (what `merge` needs)."""
        trees = [self._tree(commit) for commit in (base, local, remote)]
        paths: set[str] = set()
        for side in trees[1:]:
            for delta in trees[0].diff_to_tree(side).deltas:
                paths.update((delta.old_file.path, delta.new_file.path))
        base_files, local_files, remote_files = (
            {path: file for path in paths if (file := self._file_at(tree, path)) is not None}
            for tree in trees
        )
        return base_files, local_files, remote_files

    def merge_commit(
        self, local: str, remote: str, changes: dict[str, File | NewFile | None], message: str
    ) -> str:
        """A commit whose parents are both tips and whose tree is `local`'s plus `changes`; the branch is not
        moved (`move_branch` does that)."""
        entries: dict[str, _TreeEntry | None] = {}
        for path, file in changes.items():
            if file is None:
                entries[path] = None
            elif isinstance(file, NewFile):
                entries[path] = (self._repo.create_blob(file.data), file.mode)
            else:
                entries[path] = (pygit2.Oid(hex=file.blob), file.mode)
        try:
            tree = self._build_tree(self._tree(local), entries)
        except Conflict as exc:
            raise Conflict(f"cannot merge: {exc} (a file on one side and a folder on the other)") from None
        author = pygit2.Signature(self.author.name, self.author.email)
        parents = [pygit2.Oid(hex=local), pygit2.Oid(hex=remote)]
        return str(self._repo.create_commit(None, author, author, message, tree, parents))

    def start_history(self, message: str, when: int) -> None:
        """Commit an empty first commit at a fixed time by a fixed author, so that every replica that starts
        from an empty remote makes the very same commit and their histories are related."""
        signature = pygit2.Signature("memory-mcp", "memory-mcp@localhost", when, 0)
        empty = self._repo.TreeBuilder().write()
        root = self._repo.create_commit(None, signature, signature, message, empty, [])
        with self.write_lock():
            if self.head() is None:
                self.move_branch(None, str(root), "sync: start the shared history")

    # ---------------------------------------------------------------- moving the branch (sync)

    def move_branch(self, old: str | None, new: str, message: str) -> list[str]:
        """Point the branch at `new` (which contains `old`) and bring the work tree along; hold `write_lock()`.

        The branch is the durability point; the work tree follows it. A journal naming both commits is
        written first, so a crash in between is finished by the next `GitStore` opened on this repository.
        Returns why files were kept out of the work tree (unsafe paths, files larger than any memory).
        """
        if self.head() != old:
            raise Conflict("the branch moved during the sync; retry it")
        journal = self._state / MOVE_JOURNAL
        write_atomic(journal, f"{old or '-'} {new}\n".encode())
        self._clear_stale_lock(self._git_dir / f"{self.ref}.lock")
        self._repo.create_reference(self.ref, new, force=True, message=message)
        refused = self._follow(old, new)
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

    def _follow(self, old: str | None, new: str) -> list[str]:
        """Rewrite the memory files that changed from `old` to `new`, sparing files edited by hand.

        A file is rewritten only if it holds `old`'s version (or is missing), so running this twice is
        harmless: that is what makes crash recovery a plain re-run. A path that could leave the repository
        (or hide a file) and a file larger than any memory may be are never written; they stay in git only,
        and the reasons are returned.
        """
        changes = self.changes(old, new)
        bulk = len(changes) > BULK_FILES
        in_step: set[str] = set()
        refused: list[str] = []
        for change in changes:
            try:
                self._check_path(change.path)
                current = self._read_file(change.path)
                current_id = None if current is None else self.blob_id(current)
                if current_id == change.new_blob:
                    in_step.add(change.path)
                elif current is not None and current_id != change.old_blob:
                    log.warning(
                        "keeping hand-edited work-tree file %s (the branch has another version)", change.path
                    )
                elif change.new_blob is None:
                    self._delete_file(change.path)
                elif self.blob_size(change.new_blob) > MAX_FILE_BYTES:
                    raise InvalidInput(f"its version is {self.blob_size(change.new_blob)} bytes, too large")
                else:
                    self._write_file(change.path, self.blob(change.new_blob), durable=not bulk)
                    in_step.add(change.path)
            except (InvalidInput, OSError) as exc:
                log.error("not writing work-tree file %r: %s", change.path, exc)
                refused.append(f"{change.path!r} not written to the work tree: {exc}")
        if bulk:
            os.sync()
        self._update_index(changes, in_step)
        return refused

    def _update_index(self, changes: list[Change], in_step: set[str]) -> None:
        """Keep `git status` quiet for humans, touching only the changed entries; best effort.

        Files that hold the branch's version are added from the work tree, so the index records their size
        and times: without them every status (ours at start-up, or a human's) must hash every file.
        """
        try:
            index = self._repo.index
            index.read(False)
            for change in changes:
                if change.new_blob is None:
                    if change.path in index:
                        index.remove(change.path)
                elif change.path in in_step:
                    index.add(change.path)
                else:  # a hand edit stays unstaged
                    index.add(pygit2.IndexEntry(change.path, pygit2.Oid(hex=change.new_blob), FileMode.BLOB))
            index.write()
        except (pygit2.GitError, OSError) as exc:
            log.warning("could not update the git index (the branch is safe): %s", exc)

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
                    if self._holds(entry.path, str(entry.id)):
                        index.add(entry.path)
                index.write()
            except (pygit2.GitError, OSError) as exc:
                log.warning("could not refresh the git index (status stays slow): %s", exc)
                return
            write_atomic(marker, identity.encode(), durable=False)

    # ---------------------------------------------------------------- files

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
        pure = PurePosixPath(path)
        if not is_safe_memory_path(path):
            raise InvalidInput(f"refusing unsafe path {path!r}")
        current = self.root
        for part in pure.parts:
            current = current / part
            try:
                if current.is_symlink():
                    raise InvalidInput(
                        f"refusing to write through symbolic link {current.relative_to(self.root)}"
                    )
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
