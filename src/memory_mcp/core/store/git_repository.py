"""The libgit2 repository under a `GitStore`: one object per thread, the branch tip, the OS locks that
serialise writers, and the blobs, trees and commit objects memories are stored as."""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pygit2
from pygit2.enums import FileMode, ObjectType, Option

from memory_mcp.core.layout import GLOBAL_DIR, PROJECTS_DIR, SUFFIX, is_memory_path
from memory_mcp.core.merge import File
from memory_mcp.core.store.git_records import Author, Change
from memory_mcp.core.store.tree_bytes import TreeBytes
from memory_mcp.errors import Conflict
from memory_mcp.files import fsync_path, locked, write_atomic

BULK_FILES: Final = 32
"""Above this many files in one commit, flush the disk once at the end instead of once per file and object."""

LARGE_FOLDER: Final = 1000
"""A folder written with this many entries is written uncompressed, and kept parsed for the next commit.
At 60,000 entries, reading and parsing one takes ~30 ms; deflating its 3.4 MB took ~20 of the ~30 ms its
write took, to halve it at best (the names shrink, the 20-byte ids do not). Packing (`git_packing`) stores
it as a delta of the folder's last tree, far smaller than either."""
KEPT_FOLDERS: Final = 8
KNOWN_CHANGES: Final = 4096
"""Commits made here whose changes are kept, so reading them back (the revision index follows the branch)
needs no diff: libgit2's diff of two 60,000-entry folders takes ~50 ms of a core."""

pygit2.option(Option.ENABLE_FSYNC_GITDIR, 1)

REGULAR: Final = (FileMode.BLOB, FileMode.BLOB_EXECUTABLE)
"""The modes of a regular file; links and submodules count as absent."""

TreeEntry = tuple[pygit2.Oid, int]
"""A tree entry to write: (object id, file mode)."""
RawEntry = tuple[bytes, int]
"""A tree entry as `TreeBytes` holds it: (raw object id, file mode)."""


class GitRepository:
    """Plumbing shared by the store's parts; `GitStore.__init__` sets these attributes."""

    root: Path
    branch: str
    author: Author
    _local: threading.local
    _state: Path
    _folders: dict[str, TreeBytes]
    """Large folders as last written, by tree id; each is taken out while edited, so two threads never share
    one."""
    _known: dict[tuple[str | None, str], list[Change]]
    """The changes of the last KNOWN_CHANGES commits made here, by (parent, commit), oldest first."""
    _known_lock: threading.Lock

    @property
    def _repo(self) -> pygit2.Repository:
        """One libgit2 repository object per thread: libgit2 objects must not be shared across threads."""
        repo = getattr(self._local, "repo", None)
        if repo is None:
            repo = self._local.repo = pygit2.Repository(str(self.root))
        return repo

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

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
            elif entry.filemode in REGULAR and path.endswith(SUFFIX):
                yield path, str(entry.id)

    def changes(self, old: str | None, new: str | None) -> list[Change]:
        """Memory files whose regular-file blob differs between two commits (a link or a folder counts as
        absent), by path. The scope roots are compared apart, so a folder that exists on one side only is walked
        without a diff; two folders are compared by libgit2 (see `_diff`). A commit made here against its
        parent is answered from what its making found."""
        known = self._known_changes(old, new)
        if known is not None:
            return known
        old_tree, new_tree = self._tree(old), self._tree(new)
        out: list[Change] = []
        for top in (GLOBAL_DIR, PROJECTS_DIR):
            before = old_tree[top] if top in old_tree else None
            _compare(before, new_tree[top] if top in new_tree else None, top, out)
        return sorted(out, key=lambda change: change.path)

    def _known_changes(self, old: str | None, new: str | None) -> list[Change] | None:
        """The changes of a commit made here against its parent, as its making found them; None otherwise."""
        if new is None:
            return None
        with self._known_lock:
            known = self._known.get((old, new))
        return None if known is None else list(known)

    def _tree(self, commit: str | None) -> pygit2.Tree:
        if commit is None:
            return self._repo[self._repo.TreeBuilder().write()].peel(pygit2.Tree)
        return self._repo[commit].peel(pygit2.Tree)

    @staticmethod
    def _blob_at(tree: pygit2.Tree, path: str) -> str | None:
        """The blob id of the regular file at `path`, None when there is none (or a link, or a folder)."""
        file = GitRepository._file_at(tree, path)
        regular = file is not None and file.mode in REGULAR
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

    @staticmethod
    def blob_id(data: bytes) -> str:
        """The git blob id `data` gets when committed: a memory's version."""
        return str(pygit2.hash(data))

    def _commit_object(
        self, head: str | None, writes: dict[str, bytes], deletes: list[str], message: str, author: Author
    ) -> tuple[str, list[Change]]:
        """Blobs, trees and the commit object, and the memory files it changes (what a diff of the two trees
        would find, known without one); the branch is not touched yet."""
        root = self._repo[head].peel(pygit2.Commit).tree if head else None
        bulk = len(writes) > BULK_FILES
        if bulk:  # process-wide switch; safe because the caller holds the write lock
            pygit2.option(Option.ENABLE_FSYNC_GITDIR, 0)
        try:
            blobs = {path: (self._repo.create_blob(data), FileMode.BLOB) for path, data in writes.items()}
            changes: dict[str, TreeEntry | None] = {**{p: None for p in deletes}, **blobs}
            before: dict[str, str | None] = {}
            tree_id = self._build_tree(root, changes, before)
            signature = pygit2.Signature(author.name, author.email)
            committer = pygit2.Signature(self.author.name, self.author.email)
            parents = [pygit2.Oid(hex=head)] if head else []
            commit = self._repo.create_commit(None, signature, committer, message, tree_id, parents)
        finally:
            if bulk:
                pygit2.option(Option.ENABLE_FSYNC_GITDIR, 1)
                os.sync()  # every object on disk before the branch points at them
        after = {path: None if entry is None else str(entry[0]) for path, entry in changes.items()}
        found = [
            Change(path, before.get(path), blob)
            for path, blob in sorted(after.items())
            if is_memory_path(path) and before.get(path) != blob
        ]
        self._keep_changes(head, str(commit), found)
        return str(commit), found

    def _keep_changes(self, parent: str | None, commit: str, changes: list[Change]) -> None:
        with self._known_lock:
            self._known[(parent, commit)] = list(changes)
            while len(self._known) > KNOWN_CHANGES:
                del self._known[next(iter(self._known))]

    def _build_tree(
        self,
        tree: pygit2.Tree | None,
        changes: dict[str, TreeEntry | None],
        before: dict[str, str | None] | None = None,
    ) -> pygit2.Oid:
        """A new tree equal to `tree` with `changes` (path → (blob, mode), None = delete) applied; empty
        dirs pruned. A file never replaces a folder, nor a folder a file. `before`, if given, receives the
        blob each changed path held (None: no regular file there)."""
        built = self._rebuild(
            None if tree is None else tree.id, changes, "", {} if before is None else before
        )
        return self._write_tree(TreeBytes()) if built is None else built

    def _rebuild(
        self,
        tree: pygit2.Oid | None,
        changes: dict[str, TreeEntry | None],
        prefix: str,
        before: dict[str, str | None],
    ) -> pygit2.Oid | None:
        """`_build_tree` below `prefix`, None for an empty tree. Only the folders on a changed path are
        rebuilt, each edited as its bytes (`TreeBytes`), and a large folder written is kept parsed for the
        next commit."""
        entries = self._tree_bytes(tree)
        files: dict[str, RawEntry | None] = {}
        nested: dict[str, dict[str, TreeEntry | None]] = {}
        for path, blob in changes.items():
            head, _, rest = path.partition("/")
            if rest:
                nested.setdefault(head, {})[rest] = blob
            else:
                files[head] = None if blob is None else (blob[0].raw, blob[1])
        here = dict(files)
        for name, inside in nested.items():
            here[name] = self._rebuild_folder(entries, name, files, inside, f"{prefix}{name}/", before)
        for name, held in entries.update(here).items():
            if name in files:
                if held is not None and held[1] == FileMode.TREE and files[name] is not None:
                    raise Conflict(f"'{name}' is a folder in the repository where a file is needed")
                before[prefix + name] = _regular_raw(held)
        return self._write_tree(entries) if len(entries) else None

    def _rebuild_folder(
        self,
        entries: TreeBytes,
        name: str,
        files: dict[str, RawEntry | None],
        changes: dict[str, TreeEntry | None],
        prefix: str,
        before: dict[str, str | None],
    ) -> RawEntry | None:
        """The entry for folder `name` of `entries` once `changes` are applied inside it (None: left empty);
        a file there must be deleted in the same commit (`files`)."""
        existing = None if name in files else entries.get(name)
        if files.get(name) is not None or (existing is not None and existing[1] != FileMode.TREE):
            raise Conflict(f"'{name}' is a file in the repository where a folder is needed")
        folder = self._rebuild(
            None if existing is None else pygit2.Oid(raw=existing[0]), changes, prefix, before
        )
        return None if folder is None else (folder.raw, FileMode.TREE)

    def _tree_bytes(self, tree: pygit2.Oid | None) -> TreeBytes:
        """A folder's entries, to be edited: taken out of the kept large folders, or read."""
        if tree is None:
            return TreeBytes()
        kept = self._folders.pop(str(tree), None)
        return kept if kept is not None else TreeBytes(self._repo.odb.read(tree)[1])

    def _write_tree(self, entries: TreeBytes) -> pygit2.Oid:
        if len(entries) < LARGE_FOLDER:
            return self._repo.odb.write(ObjectType.TREE, entries.data)
        tree = self._write_stored_tree(entries.data)
        self._folders[str(tree)] = entries
        for stale in list(self._folders)[:-KEPT_FOLDERS]:
            self._folders.pop(stale, None)
        return tree

    def _write_stored_tree(self, data: bytes) -> pygit2.Oid:
        """Write a loose tree object as zlib's stored blocks, durably. libgit2 cannot: at compression level 0
        it writes the bytes with no zlib stream around them, an object no reader can open."""
        header = b"tree %d\0" % len(data)
        digest = hashlib.sha1(header, usedforsecurity=False)
        digest.update(data)
        name = digest.hexdigest()
        folder = Path(self._repo.path, "objects", name[:2])
        target = folder / name[2:]
        if not target.exists():
            made = not folder.is_dir()
            folder.mkdir(exist_ok=True)
            if made:
                fsync_path(folder.parent)
            stream = zlib.compressobj(0)
            write_atomic(target, stream.compress(header) + stream.compress(data) + stream.flush(), mode=0o444)
        return pygit2.Oid(hex=name)


def _compare(old: pygit2.Object | None, new: pygit2.Object | None, path: str, out: list[Change]) -> None:
    """Append the memory files that differ at and below `path` between two tree entries (None: absent)."""
    old_tree, new_tree = _folder(old), _folder(new)
    if old_tree is not None and new_tree is not None:
        _diff(old_tree, new_tree, path, out)
        return
    if old_tree is not None or new_tree is not None:
        olds = {entry.name: entry for entry in old_tree or ()}
        news = {entry.name: entry for entry in new_tree or ()}
        for name in olds.keys() | news.keys():
            before, after = olds.get(name), news.get(name)
            if before is None or after is None or before.id != after.id or before.filemode != after.filemode:
                _compare(before, after, f"{path}/{name}", out)
    before_blob, after_blob = _regular(old), _regular(new)
    if before_blob != after_blob and is_memory_path(path):
        out.append(Change(path, before_blob, after_blob))


def _diff(old_tree: pygit2.Tree, new_tree: pygit2.Tree, path: str, out: list[Change]) -> None:
    """`_compare` of two folders by libgit2's tree diff: comparing a 10k-entry folder's entries in C took
    ~8 ms where a Python walk of them took ~45 ms."""
    collect_changes(old_tree.diff_to_tree(new_tree), f"{path}/", out)


def collect_changes(diff: pygit2.Diff, prefix: str, out: list[Change]) -> None:
    """Append the memory files a diff changes, its paths taken below `prefix`. A type change comes as a
    deletion and an addition of one path; links and submodules count as absent."""
    sides: dict[str, list[str | None]] = {}
    for delta in diff.deltas:
        for index, file in enumerate((delta.old_file, delta.new_file)):
            side = sides.setdefault(prefix + file.path, [None, None])
            if file.mode in REGULAR:
                side[index] = str(file.id)
    for name, (before, after) in sides.items():
        if before != after and is_memory_path(name):
            out.append(Change(name, before, after))


def _folder(entry: pygit2.Object | None) -> pygit2.Tree | None:
    return entry.peel(pygit2.Tree) if entry is not None and entry.filemode == FileMode.TREE else None


def _regular_raw(entry: RawEntry | None) -> str | None:
    return entry[0].hex() if entry is not None and entry[1] in REGULAR else None


def _regular(entry: pygit2.Object | None) -> str | None:
    return str(entry.id) if entry is not None and entry.filemode in REGULAR else None
