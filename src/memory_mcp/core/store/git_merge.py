"""The repository side of a sync's merge: merge bases, ancestry, the three sides' files and the merge
commit (the merge rules themselves are in `merge`)."""

from __future__ import annotations

import pygit2

from memory_mcp.core.merge import File, NewFile
from memory_mcp.core.store.git_repository import GitRepository, TreeEntry
from memory_mcp.errors import Conflict


class Merging(GitRepository):
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
        entries: dict[str, TreeEntry | None] = {}
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
