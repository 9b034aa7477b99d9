"""The branch's history: its first-parent line with each commit's changed memory files (what the revision
index is built from), commit details, and the changes since a reader last looked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pygit2
from pygit2.enums import SortMode

from memory_mcp.core.store.git_records import Change, Commit
from memory_mcp.core.store.git_repository import GitRepository, collect_changes
from memory_mcp.core.store.released_diff import diff_trees


class History(GitRepository):
    def first_parent_changes(
        self, tip: str, stop: str | None
    ) -> Iterator[tuple[str, str | None, list[Change]]]:
        """From `tip` back along first parents, newest first: (commit, its first parent, the memory files it
        changed against that parent); ends with the commit whose parent is `stop`, or with the root. This is
        the line `git log --first-parent` shows: a sync's merge is one change, made by whoever merged."""
        commit = self._repo[tip].peel(pygit2.Commit)
        while True:
            parent = commit.parents[0] if commit.parents else None
            parent_id = None if parent is None else str(parent.id)
            yield str(commit.id), parent_id, self._commit_changes(parent_id, commit)
            if parent is None or parent_id == stop:
                return
            commit = parent

    def _commit_changes(self, parent: str | None, commit: pygit2.Commit) -> list[Change]:
        """`changes(parent, commit)`; for a commit made elsewhere, one diff of the two root trees with the GIL
        released (`released_diff`), as the revision index reads one for each such commit in the background."""
        known = self._known_changes(parent, str(commit.id))
        if known is not None:
            return known
        out: list[Change] = []
        collect_changes(diff_trees(self._repo, self._tree(parent), commit.peel(pygit2.Tree)), "", out)
        return sorted(out, key=lambda change: change.path)

    def commit_info(self, commit: str) -> Commit:
        """Who made one commit, when, and its message."""
        found = self._repo[commit].peel(pygit2.Commit)
        moment = datetime.fromtimestamp(found.commit_time, UTC)
        author = f"{found.author.name} <{found.author.email}>"
        return Commit(str(found.id), moment, author, found.message.strip())

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
            yield self.commit_info(str(commit.id)), self.changes(parent, str(commit.id))

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
