"""The use cases that read: read, recall, list, recent, scope counts, changes, briefing, completions (one
memory's past is in `history`). Each catches up with other processes' commits first, then reads the catalog
under the indexer's viewing lock (the model runs before it, with no lock held)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from memory_mcp.core import briefing, changes, markdown
from memory_mcp.core import cursor as cursor_
from memory_mcp.core.catalog import Catalog, Entry
from memory_mcp.core.checks import locate, recall_filter, visible
from memory_mcp.core.embedder import EmbeddingModel
from memory_mcp.core.indexer import Indexer
from memory_mcp.core.model import (
    FULL_ACCESS,
    MAX_LIMIT,
    Access,
    Memory,
    Scope,
    ScopeFilter,
    validate_limit,
    validate_query,
    validate_tags,
)
from memory_mcp.core.results import Locator, Page
from memory_mcp.core.search import Hit, rank
from memory_mcp.core.store import Store
from memory_mcp.errors import InvalidInput, NotFound


class Reading:
    """The read side of `MemoryService`, which sets these attributes."""

    indexer: Indexer
    store: Store
    embedder: EmbeddingModel

    @property
    def catalog(self) -> Catalog:
        return self.indexer.catalog

    def read(self, where: Locator, *, access: Access = FULL_ACCESS) -> Entry:
        """The memory `where` names, as of the branch tip (catching up first). Raises `NotFound` when there is
        none, or when `access` may not see its scope (a hidden memory looks absent), `InvalidInput` for a bad
        name or scope."""
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            return locate(self.catalog, where, access)

    def recall(
        self,
        query: str,
        *,
        scope: str | None = None,
        tags: list[str] | None = None,
        limit: int = 5,
        min_score: float | None = None,
        access: Access = FULL_ACCESS,
    ) -> list[Hit]:
        """Up to `limit` memories best matching `query`, by meaning and by keywords fused, best first.

        `scope` omitted: global memories only; a path: that scope, everything below it, and global; `all`:
        everything. Only memories with every tag in `tags` and a scope `access` may read count, filtered
        before the limit. Hits with a cosine similarity under `min_score` are dropped. Raises `InvalidInput`
        for an empty or too long query, a bad limit, scope or tag, or a `min_score` outside [-1, 1].
        """
        query = validate_query(query)
        limit = validate_limit(limit)
        scopes = ScopeFilter.parse(scope, default_all=False)
        wanted = set(validate_tags(tags))
        if min_score is not None and not -1.0 <= min_score <= 1.0:
            raise InvalidInput("min_score must be between -1 and 1 (a cosine similarity; 0.3-0.5 is typical)")
        # Embedding first, searching after: the model uses every core, and a keyword search run beside it
        # would slow it by more than the search takes.
        vector = self.embedder.embed_query(query)
        allowed = recall_filter(scopes, wanted, access)
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            return rank(self.catalog, query, vector, allowed, limit, min_score)

    def list(
        self,
        *,
        scope: str | None = None,
        tags: list[str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        access: Access = FULL_ACCESS,
    ) -> Page:
        """A page of at most `limit` memories in (scope, name) order, after `cursor` (a `next_cursor` from an
        earlier page); `next_cursor` is None on the last page. An omitted scope or `all` means everything,
        `global` the global memories, a path that subtree only (not global). Raises `InvalidInput` for a cursor
        not made by `list`, a bad limit, scope or tag."""
        limit = validate_limit(limit, maximum=MAX_LIMIT)
        wanted = set(validate_tags(tags))
        keep = _listed(scope, wanted, access)
        after = cursor_.decode(cursor)
        subtree = ScopeFilter.parse(scope, default_all=True).root
        if subtree is not None and not subtree.is_global and (after is None or after < (subtree.path, "")):
            after = (subtree.path, "")  # a subtree is one run of the (scope, name) order: start there
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            page: list[Entry] = []
            for entry in self.catalog.sorted_after(after, wanted):
                if subtree is not None and entry.memory.scope.path > subtree.path + "0":
                    break  # "0" sorts right after "/": nothing beyond can be in the subtree
                if keep(entry):
                    if len(page) == limit:
                        return Page(page, cursor_.encode(page[-1].sort_key))
                    page.append(entry)
            return Page(page, None)

    def recent(
        self,
        *,
        scope: str | None = None,
        tags: list[str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        access: Access = FULL_ACCESS,
    ) -> Page:
        """Like `list`, but newest `updated_at` first (ties by scope and name), with cursors of its own."""
        limit = validate_limit(limit, maximum=MAX_LIMIT)
        wanted = set(validate_tags(tags))
        keep = _listed(scope, wanted, access)
        after = cursor_.decode_recent(cursor)
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            page: list[Entry] = []
            for entry in self.catalog.recent_after(after, wanted):
                if keep(entry):
                    if len(page) == limit:
                        return Page(page, cursor_.encode(page[-1].recency_key))
                    page.append(entry)
            return Page(page, None)

    def scope_counts(self, *, access: Access = FULL_ACCESS) -> dict[Scope, int]:
        """How many memories each scope the caller may see holds (its own, not its sub-scopes')."""
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            counts = self.catalog.scope_counts()
        scopes = {path: Scope(path) for path in counts}
        return {scopes[path]: count for path, count in counts.items() if access.can_read(scopes[path])}

    def changes(
        self,
        *,
        since: str | None = None,
        cursor: str | None = None,
        scope: str | None = None,
        limit: int = 50,
        access: Access = FULL_ACCESS,
    ) -> changes.ChangePage:
        """Memories created, edited, moved or forgotten since a time, a commit or a previous answer's
        cursor, newest first, in the scopes `access` may see (a scope path narrows to that subtree)."""
        limit = validate_limit(limit, maximum=MAX_LIMIT)
        scopes = _subtree(scope)
        return changes.feed(
            self.store,
            self._blob_memory,
            since=since,
            cursor=cursor,
            scopes=scopes,
            access=access,
            limit=limit,
        )

    def briefing(
        self, scope: str | None, *, budget: int = briefing.DEFAULT_BUDGET, access: Access = FULL_ACCESS
    ) -> briefing.Briefing:
        """A session's starting point in `scope` (that scope, below it, and global, as `recall` searches):
        pinned memories, then the most recently updated, within `budget` tokens."""
        budget = briefing.validate_budget(budget)
        allowed = recall_filter(ScopeFilter.parse(scope, default_all=False), set(), access)
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            entries = [e for e in self.catalog.entries() if allowed is None or allowed(e)]
        return briefing.select(entries, budget)

    def handoff(self, scope: str | None, *, access: Access = FULL_ACCESS) -> Entry | None:
        """The scope's session-handoff memory, if an agent has left one."""
        try:
            return self.read(Locator(briefing.HANDOFF_NAME, scope), access=access)
        except NotFound:
            return None

    def touched(self, old: str | None, new: str | None) -> list[changes.Touched]:
        """The memories that differ between two commits (to tell watching clients what changed)."""
        return changes.touched(self.store, self._blob_memory, old, new)

    def suggest(
        self, argument: str, prefix: str, *, scope: str | None = None, access: Access = FULL_ACCESS
    ) -> list[str]:
        """Completions for a scope path or (within `scope`) a memory name that start with `prefix`."""
        if argument == "scope":
            wanted = None
        else:
            try:
                wanted = Scope.parse(scope)
            except InvalidInput:
                return []
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            found = {
                str(e.memory.scope) if wanted is None else e.memory.name
                for e in self.catalog.entries()
                if access.can_read(e.memory.scope) and (wanted is None or e.memory.scope == wanted)
            }
        return sorted(value for value in found if value.startswith(prefix))

    def _blob_memory(self, blob: str) -> Memory | None:
        try:
            return markdown.parse(self.store.blob(blob))
        except InvalidInput:
            return None

    def _blob_memory_id(self, blob: str) -> str | None:
        memory = self._blob_memory(blob)
        return None if memory is None else memory.id


def _subtree(scope: str | None) -> ScopeFilter:
    """Omitted or `all`: everything; a path: that subtree only (global only for `global` itself)."""
    scopes = ScopeFilter.parse(scope, default_all=True)
    return replace(scopes, include_global=scopes.root is None or scopes.root.is_global)


def _listed(scope: str | None, wanted: set[str], access: Access) -> Callable[[Entry], bool]:
    """Which memories a listing (`list`, `recent`) shows: `_subtree(scope)`, visible, with every tag."""
    scopes = _subtree(scope)

    def keep(entry: Entry) -> bool:
        return scopes.matches(entry.memory.scope) and visible(entry, access) and wanted.issubset(entry.memory.tags)

    return keep
