"""A memory's history: walking the branch for the commits that changed it (following moves by id), for
where a forgotten memory was deleted, and for the changes since a reader last looked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Final

import pygit2
from pygit2.enums import SortMode

from memory_mcp.core.git_records import Change, Commit, Revision
from memory_mcp.core.git_repository import GitRepository
from memory_mcp.core.layout import is_memory_path

DELETION_SCAN: Final = 10_000
"""Commits searched for the deletion of a forgotten memory asked for by id."""


class History(GitRepository):
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
