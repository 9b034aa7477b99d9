"""The use cases of one memory's past: its history (also once forgotten, however it was deleted), the memory
as it was at an entry of that history, and several entries at once for the web UI's diffs.

A history entry is named by its `version` (the file's blob id, as every tool's `version`) or its `commit`,
or a prefix of at least 7 hex digits of either. The commits come from the revision index, so a request
costs the memory's own revisions, not a walk of the branch.
"""

from __future__ import annotations

from itertools import takewhile
from typing import Final

from memory_mcp.core import markdown
from memory_mcp.core.catalog import Entry
from memory_mcp.core.checks import locate, path_visible
from memory_mcp.core.model import FULL_ACCESS, MAX_LIMIT, Access, Memory, Scope, validate_limit, validate_name
from memory_mcp.core.reading import Reading
from memory_mcp.core.results import Locator
from memory_mcp.core.revision_index import RevisionIndex
from memory_mcp.core.store import Revision, memory_path
from memory_mcp.errors import InvalidInput, NotFound

MIN_PREFIX: Final = 7
HEX: Final = frozenset("0123456789abcdef")


class MemoryHistory(Reading):
    """History on the read side of `MemoryService`, which sets `revisions` as well."""

    revisions: RevisionIndex

    def index_history(self, within: float | None = None, *, paced: bool = False) -> int:
        """Bring the revision index up to the branch tip (a server does it in the background, so the first
        history request does not build it); returns how many commits were indexed. With `within`, gives up
        after that many seconds; `paced`, rests between diffs (see `RevisionIndex.advance`)."""
        return self.revisions.advance(within, paced=paced)

    def history(self, where: Locator, *, limit: int = 20, access: Access = FULL_ACCESS) -> list[Revision]:
        """The last `limit` commits that changed the memory, newest first, following moves by id (within the
        scopes `access` may see) and ending at its creation. A forgotten memory has a history too (its newest
        entry is the deletion), by id or by name and scope, whether a tool or a person deleted it. Raises
        `NotFound` when there is none."""
        limit = validate_limit(limit)
        self.indexer.ensure_fresh()
        entry: Entry | None = None
        gone: str | None = None
        with self.indexer.viewing:
            try:
                entry = locate(self.catalog, where, access)
            except NotFound:
                if not where.id:
                    gone = self._forgotten_path(where, access)  # forgotten, named by scope and name
        if entry is not None:
            revisions = self.revisions.history(entry.path, entry.memory.id, limit)
        elif gone is not None:
            revisions = self.revisions.history(gone, None, limit)
        else:
            revisions = self.revisions.forgotten(where.id or "", limit)
        # a move in from a scope this caller may not see ends what it is shown
        shown = list(takewhile(lambda revision: path_visible(revision.path, access), revisions))
        if shown:
            return shown
        if entry is None and where.id:
            raise NotFound(f"no memory has or had id {where.id!r}", findable=True)
        raise NotFound(f"{where.describe()} has no history", findable=True)

    def _forgotten_path(self, where: Locator, access: Access) -> str:
        """Where a memory named by scope and name, no longer in the catalog, lived (hold `viewing`)."""
        scope = Scope.parse(where.scope)
        path = memory_path(scope, validate_name(where.name or ""))
        if not access.can_read(scope) or self.store.blob_at(self.catalog.commit, path) is not None:
            raise NotFound(f"no memory named {where.name!r} in scope {str(scope)!r}", findable=True)
        return path

    def content_at(
        self, where: Locator, version: str, *, access: Access = FULL_ACCESS
    ) -> tuple[Revision, Memory]:
        """The memory as it was at one entry of its history (see the module docstring for `version`)."""
        key = _entry_key(version)
        for revision in self.history(where, limit=MAX_LIMIT, access=access):
            if revision.named_by(key):
                if revision.blob is None:
                    raise NotFound(
                        f"the memory was deleted in commit {revision.commit[:12]}; pick the entry before it"
                    )
                return revision, markdown.parse(self.store.blob(revision.blob))
        raise NotFound(f"{version!r} is not among the last {MAX_LIMIT} versions of {where.describe()}")

    def versions(
        self,
        where: Locator,
        wanted: list[str],
        *,
        newest: int = 0,
        limit: int = MAX_LIMIT,
        access: Access = FULL_ACCESS,
    ) -> tuple[list[Revision], dict[str, Memory]]:
        """The memory's history (as `history`) and, from it, the memory at each `wanted` entry (a `version` or
        `commit` as in `content_at`, the key it is returned under, lower-cased) and at the `newest` few
        entries (keyed by commit id). A wanted entry that is not in the history or deleted the memory is left
        out. Raises `InvalidInput` for a malformed key, otherwise as `history` does."""
        keys = [_entry_key(key) for key in wanted]
        revisions = self.history(where, limit=limit, access=access)
        picks = [(rev.commit, rev) for rev in revisions[:newest]]
        for key in keys:
            found = next((rev for rev in revisions if rev.named_by(key)), None)
            if found is not None:
                picks.append((key, found))
        return revisions, {
            key: markdown.parse(self.store.blob(rev.blob)) for key, rev in picks if rev.blob is not None
        }


def _entry_key(value: object) -> str:
    key = value.lower() if isinstance(value, str) else ""
    if len(key) < MIN_PREFIX or not HEX.issuperset(key):
        raise InvalidInput(
            f"a version must be a `version` or `commit` from history (or a prefix of at least {MIN_PREFIX} "
            "hex digits of one)"
        )
    return key
