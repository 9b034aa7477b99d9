"""The use cases: remember, recall, read, edit, restore, forget, list, recent, scope_counts, move, history.

Ordering is the whole point of this module. Text is embedded with no lock held; then, under the indexer's
writer lock and the repository's OS lock, the catalog catches up with whatever other processes committed,
the preconditions are checked against that fresh state, the change is committed, and the catalog follows.
Every edge (MCP tools, CLI) calls these methods from worker threads: they block.

It stays one file, over 400 lines, because it is one concern: the use cases read best with every lock's
extent in view. What they return is in `results`, the preconditions they check in `checks`, list cursors in
`cursor`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from memory_mcp.core import briefing, changes, duplicates, markdown
from memory_mcp.core import cursor as cursor_
from memory_mcp.core.catalog import Catalog, Entry
from memory_mcp.core.checks import (
    check_free,
    check_planned,
    check_target,
    check_version,
    locate,
    path_visible,
    recall_filter,
    validate_memory,
    visible,
)
from memory_mcp.core.duplicates import Duplicate, Repaired
from memory_mcp.core.indexer import EMBED_BATCH, Indexer, Progress
from memory_mcp.core.model import (
    FULL_ACCESS,
    MAX_LIMIT,
    Access,
    Memory,
    Scope,
    ScopeFilter,
    validate_content,
    validate_limit,
    validate_name,
    validate_query,
    validate_source,
    validate_tags,
)
from memory_mcp.core.results import (
    Imported,
    Locator,
    Page,
    Reindexed,
    Repository,
    Saved,
    Similar,
    Stats,
)
from memory_mcp.core.search import Hit, rank
from memory_mcp.core.store import Author, Revision, memory_path
from memory_mcp.errors import AlreadyExists, Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)

NEAR_DUPLICATE: Final = 0.80
"""How far from the model's unrelated-text similarity towards 1 a cosine must be for `remember` to report an
existing memory as a likely duplicate (0.80 of the way: about 0.81 with MiniLM, 0.90 with BGE)."""
OPTIMISTIC_RETRIES: Final = 3


class MemoryService:
    def __init__(
        self, indexer: Indexer, *, owns_embedder: bool = True, background_embedding: bool = False
    ) -> None:
        """`background_embedding`: a server, whose maintenance thread embeds large memories after their
        commit; one-shot commands embed before committing, as they have no later."""
        self.indexer = indexer
        self.store = indexer.store
        self.embedder = indexer.embedder
        self._owns_embedder = owns_embedder
        self._background = background_embedding

    @property
    def catalog(self) -> Catalog:
        return self.indexer.catalog

    def close(self) -> None:
        """Stop the model unless it was lent (refusing its queued work, so nothing waits for it), save
        derived state if it changed, release the cache; wakes the background embedding to see the stop."""
        if self._owns_embedder:
            self.embedder.close()
        self.indexer.close()
        self.indexer.backlog.set()
        self.indexer.cache.close()

    # ------------------------------------------------------------- upkeep

    def stats(self) -> Stats:
        """Sizes for metrics, read without waiting for writers."""
        return Stats(
            memories=len(self.catalog),
            chunks=len(self.catalog.vector_index),
            queue_depth=self.embedder.queue_depth,
            pending_vectors=self.indexer.pending_vectors,
        )

    def refresh(self) -> None:
        """Catch up with commits that moved the branch behind this process's back (a pull, another process)."""
        self.indexer.ensure_fresh()

    def fill_vectors(self, progress: Progress | None = None) -> int:
        """Embed the memories waiting for vectors (after a model change, or large memories committed before
        being embedded), behind every other use of the model; keyword search finds them meanwhile. Returns
        how many waited. Raises `Unavailable` if the model is closed under it (shutting down)."""
        waiting = self.indexer.pending_vectors
        if waiting:
            self.indexer.fill_vectors(progress)
        return waiting

    def wait_for_backlog(self, timeout: float) -> None:
        """Until a memory is committed without vectors (or the service closes), at most `timeout` seconds."""
        self.indexer.backlog.wait(timeout)
        self.indexer.backlog.clear()

    def save_snapshot(self) -> bool:
        """Persist the derived state if it changed since the last save; False when there was nothing to do."""
        return self.indexer.save_snapshot()

    def reindex(self, progress: Progress | None = None, *, reembed: bool = False) -> Reindexed:
        """Drop the derived state and rebuild it from git; `reembed` also ignores cached vectors."""
        count = self.indexer.rebuild(progress, reembed=reembed)
        return Reindexed(count, self.unreadable())

    def unreadable(self) -> dict[str, str]:
        """Memory files that could not be parsed (writes never overwrite them), or that clash with another file
        or lie outside their scope's folder (see `Catalog.anomalies` for which one wins), path → reason."""
        with self.indexer.viewing:
            return dict(sorted({**self.catalog.anomalies, **self.catalog.problems}.items()))

    def duplicate_ids(self) -> list[Duplicate]:
        """Ids that several memories share (older versions' merges could leave them), each with the memory
        that keeps the id under `repair_duplicate_ids`' rule; empty for a healthy repository."""
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            return duplicates.find(self.catalog)

    def repair_duplicate_ids(self, *, actor: str | None = None) -> Repaired:
        """Give every memory that shares its id, except the newest (`updated_at`; on a tie the first path),
        a fresh id, in one commit; nothing is deleted. `commit` is None when there was nothing to repair."""
        return duplicates.repair(self.indexer, self._author(actor))

    def repository(self) -> Repository:
        """Where the memories live and which commit the service reflects."""
        return Repository(self.store.root, self.store.branch, self.store.head())

    # ------------------------------------------------------------- reading

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
        keep = _listed(scope, tags, access)
        after = cursor_.decode(cursor)
        subtree = ScopeFilter.parse(scope, default_all=True).root
        if subtree is not None and not subtree.is_global and (after is None or after < (subtree.path, "")):
            after = (subtree.path, "")  # a subtree is one run of the (scope, name) order: start there
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            page: list[Entry] = []
            for entry in self.catalog.sorted_after(after):
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
        keep = _listed(scope, tags, access)
        after = cursor_.decode_recent(cursor)
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            page: list[Entry] = []
            for entry in self.catalog.recent_after(after):
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

    def history(self, where: Locator, *, limit: int = 20, access: Access = FULL_ACCESS) -> list[Revision]:
        """The last `limit` commits that changed the memory, newest first, following moves by id (within the
        scopes `access` may see) and ending at its creation. A forgotten memory has a history too (its newest
        entry is the deletion), by id or by name and scope. Raises `NotFound` when there is none."""
        limit = validate_limit(limit)
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            try:
                entry = locate(self.catalog, where, access)
                path, memory_id = entry.path, entry.memory.id
            except NotFound:
                path, memory_id = self._forgotten(where, access)
        revisions = self.store.history(path, memory_id, self._blob_memory_id, limit)
        if not revisions:
            raise NotFound(f"{where.describe()} has no history; use list or recall to find memories")
        for position, revision in enumerate(revisions):
            if not path_visible(revision.path, access):
                return revisions[:position]  # moved in from a scope this caller may not see: stop there
        return revisions

    def _forgotten(self, where: Locator, access: Access) -> tuple[str, str | None]:
        """Where a memory that is no longer in the catalog last lived, for its history."""
        if where.id:
            found = self.store.deleted_path(where.id, self._blob_memory_id)
            if found is None or not path_visible(found, access):
                raise NotFound(f"no memory has or had id {where.id!r}; use list or recall to find memories")
            return found, where.id
        scope = Scope.parse(where.scope)
        path = memory_path(scope, validate_name(where.name or ""))
        if not access.can_read(scope) or self.store.blob_at(self.catalog.commit, path) is not None:
            raise NotFound(f"no memory named {where.name!r} in scope {str(scope)!r}; use list or recall")
        return path, None

    def content_at(
        self, where: Locator, version: str, *, access: Access = FULL_ACCESS
    ) -> tuple[Revision, Memory]:
        """The memory as it was at one entry of its history: `version` is that entry's `version` (the file
        version every tool uses) or its `commit`, or a prefix of either."""
        version = version.lower() if isinstance(version, str) else ""
        if len(version) < 4 or not all(c in "0123456789abcdef" for c in version):
            raise InvalidInput(
                "version must be a `version` or `commit` from history (or a prefix of at least 4 hex digits)"
            )
        for revision in self.history(where, limit=MAX_LIMIT, access=access):
            if revision.commit.startswith(version) or (revision.blob or "-").startswith(version):
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
        """The memory's history (as `history`) and, from that one walk, the memory at each `wanted` commit (an
        id or a prefix of at least 4 hex digits, the key it is returned under) and at the `newest` few
        revisions (keyed by commit id). A wanted commit that is not in the history or deleted the memory is
        left out. Raises `InvalidInput` for a malformed commit, otherwise as `history` does."""
        keys = [version.lower() for version in wanted]
        if not all(len(key) >= 4 and all(c in "0123456789abcdef" for c in key) for key in keys):
            raise InvalidInput("a version must be a commit id (or a prefix of at least 4 hex digits) from history")
        revisions = self.history(where, limit=limit, access=access)
        picks = [(rev.commit, rev) for rev in revisions[:newest]]
        for key in keys:
            found = next((rev for rev in revisions if rev.commit.startswith(key)), None)
            if found is not None:
                picks.append((key, found))
        return revisions, {
            key: markdown.parse(self.store.blob(rev.blob)) for key, rev in picks if rev.blob is not None
        }

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

    # ------------------------------------------------------------- writing

    def remember(
        self,
        *,
        name: str,
        content: str,
        scope: str | None = None,
        tags: list[str] | None = None,
        source: str | None = None,
        replace_existing: bool = False,
        actor: str | None = None,
        access: Access = FULL_ACCESS,
    ) -> Saved:
        """Store a new memory in one commit (authored by `actor` if given) and return it with its
        near-duplicates (cosine similarity of at least NEAR_DUPLICATE).

        A taken (scope, name) raises `AlreadyExists` (marked replaceable) unless `replace_existing`, which
        overwrites it keeping its id and creation time. Raises `InvalidInput` for a bad name, scope, content,
        tags or source, `Conflict` when the file is unreadable or another memory's path, `Forbidden` when
        `access` may not write the scope. Nothing is written when it raises.
        """
        memory = Memory(
            name=validate_name(name),
            scope=Scope.parse(scope),
            content=validate_content(content),
            tags=validate_tags(tags),
            source=validate_source(source),
        )
        access.check_write(memory.scope)
        vectors = self._vectors(memory)
        with self.indexer.committing():
            existing = self.catalog.by_key(*memory.key)
            if existing is not None:
                if not replace_existing:
                    raise AlreadyExists(
                        f"a memory named {memory.name!r} already exists in scope {str(memory.scope)!r} "
                        f"(version {existing.version[:12]})",
                        replaceable=True,
                    )
                memory = replace(memory, id=existing.memory.id, created_at=existing.memory.created_at)
            path = memory_path(memory.scope, memory.name)
            check_free(self.catalog, path, memory.key, access)
            entry, commit = self._commit(memory, path, vectors, _message("save", memory), actor)
            return self._saved(entry, commit, vectors, access, replaced=existing is not None)

    def save_many(
        self,
        memories: list[Memory],
        *,
        message: str,
        replace_existing: bool = False,
        expected: Mapping[tuple[Scope, str], str | None] | None = None,
        actor: str | None = None,
        progress: Progress | None = None,
        access: Access = FULL_ACCESS,
    ) -> Imported:
        """Write many memories in one commit (imports, bulk loads). Memories whose name and scope exist are
        replaced when `replace_existing` (keeping id and creation time), skipped when identical, else refused.

        `expected` (a plan made earlier, e.g. by an importer's dry run) names, per (scope, name), the version
        each memory must still be at to be replaced, or None where it must not exist yet; a memory that
        differs from that plan refuses the whole batch, so none is overwritten by a plan made before it."""
        for memory in memories:
            validate_memory(memory)
            access.check_write(memory.scope)
        keys = [m.key for m in memories]
        if len(set(keys)) != len(keys):
            raise InvalidInput("the batch names the same (scope, name) more than once")
        vectors: list[np.ndarray] = []
        for start in range(0, len(memories), EMBED_BATCH):
            vectors += self.indexer.vectors(memories[start : start + EMBED_BATCH])
            if progress:
                progress(min(start + EMBED_BATCH, len(memories)), len(memories))
        with self.indexer.committing():
            plan = self._plan(memories, vectors, replace_existing, expected)
            writes = {path: markdown.render(memory) for memory, path, _, _ in plan.changes}
            if not writes:
                return Imported(None, [], [], plan.unchanged)
            commit = self.store.commit(writes, [], message, self._author(actor))
            entries = self.indexer.record_many(commit, [(m, p, writes[p], v) for m, p, v, _ in plan.changes])
        self.indexer.tidy()
        created = [e for e, (_, _, _, old) in zip(entries, plan.changes, strict=True) if old is None]
        replaced = [e for e, (_, _, _, old) in zip(entries, plan.changes, strict=True) if old is not None]
        return Imported(commit, created, replaced, plan.unchanged)

    def _plan(
        self,
        memories: list[Memory],
        vectors: list[np.ndarray],
        replace_existing: bool,
        expected: Mapping[tuple[Scope, str], str | None] | None,
    ) -> _Plan:
        plan = _Plan([], [])
        for memory, rows in zip(memories, vectors, strict=True):
            existing = self.catalog.by_key(*memory.key)
            if existing is not None:
                same = existing.memory
                if (same.content, same.tags, same.source) == (memory.content, memory.tags, memory.source):
                    plan.unchanged.append(existing)
                    continue
            if expected is not None:
                check_planned(memory, existing, expected.get(memory.key))
            elif existing is not None and not replace_existing:
                raise AlreadyExists(f"{memory.name!r} already exists in scope {str(memory.scope)!r}")
            if existing is not None:
                memory = replace(memory, id=existing.memory.id, created_at=existing.memory.created_at)
            elif (holder := self.catalog.by_id(memory.id)) is not None:
                other = holder.memory
                raise AlreadyExists(
                    f"id {memory.id} of {memory.name!r} already belongs to memory {other.name!r} in scope "
                    f"{str(other.scope)!r}; two memories never share an id"
                )
            path = memory_path(memory.scope, memory.name)
            check_free(self.catalog, path, memory.key)
            plan.changes.append((memory, path, rows, existing))
        return plan

    def edit(
        self,
        where: Locator,
        *,
        content: str | None = None,
        tags: list[str] | None = None,
        expected_version: str | None = None,
        actor: str | None = None,
        access: Access = FULL_ACCESS,
    ) -> Saved:
        """Replace the content and/or the tags of a memory in one commit, keeping id, name, scope and creation
        time; the result lists near-duplicates of the new text.

        With `expected_version`, a memory no longer at that version raises `Conflict` and nothing is
        written. Raises `InvalidInput` when neither is given or one breaks its rule, and as `read` does.
        """
        if content is None and tags is None:
            raise InvalidInput("edit needs content and/or tags to change")
        new_content = validate_content(content) if content is not None else None
        new_tags = validate_tags(tags) if tags is not None else None

        def change(old: Memory) -> Memory:
            return old.revised(
                content=old.content if new_content is None else new_content,
                tags=old.tags if new_tags is None else new_tags,
            )

        return self._update(where, expected_version, change, "save", actor, access)

    def move(
        self,
        where: Locator,
        *,
        to_scope: str | None = None,
        new_name: str | None = None,
        expected_version: str | None = None,
        actor: str | None = None,
        access: Access = FULL_ACCESS,
    ) -> Saved:
        """Rename a memory and/or move it to another scope in one commit, keeping its id and creation time.

        Raises `InvalidInput` when neither target is given or nothing would change, `AlreadyExists` when the
        target (scope, name) is taken, `Conflict` as `edit` does with `expected_version`, and as `read` does.
        """
        if to_scope is None and new_name is None:
            raise InvalidInput("move needs to_scope and/or new_name")
        target_scope = Scope.parse(to_scope) if to_scope is not None else None
        target_name = validate_name(new_name) if new_name is not None else None

        def change(old: Memory) -> Memory:
            moved = old.revised(scope=target_scope or old.scope, name=target_name or old.name)
            if moved.key == old.key:
                raise InvalidInput(f"{old.name!r} is already in scope {str(old.scope)!r}; nothing to move")
            return moved

        return self._update(where, expected_version, change, "move", actor, access)

    def restore(
        self,
        where: Locator,
        version: str,
        *,
        expected_version: str | None = None,
        actor: str | None = None,
        access: Access = FULL_ACCESS,
    ) -> Saved:
        """Put the content and tags of an old version (a commit from `history`) back, as a new commit;
        name, scope and id stay as they are now."""
        revision, old = self.content_at(where, version, access=access)

        def change(current: Memory) -> Memory:
            if (current.content, current.tags) == (old.content, old.tags):
                raise InvalidInput(
                    f"{current.name!r} already has the content and tags of version {revision.commit[:12]}"
                )
            return current.revised(content=old.content, tags=old.tags)

        return self._update(where, expected_version, change, f"restore:{revision.commit[:12]}", actor, access)

    def forget(
        self,
        where: Locator,
        *,
        expected_version: str | None = None,
        actor: str | None = None,
        access: Access = FULL_ACCESS,
    ) -> Saved:
        """Delete a memory in one commit; its versions stay in the repository's history. Raises `Conflict` as
        `edit` does with `expected_version`, `Forbidden` when `access` may not write, and as `read` does."""
        with self.indexer.committing():
            entry = locate(self.catalog, where, access)
            access.check_write(entry.memory.scope)
            check_version(entry, expected_version)
            message = _message("delete", entry.memory)
            commit = self.store.commit({}, [entry.path], message, self._author(actor))
            self.indexer.record_delete(commit, entry.path)
            return Saved(entry, commit)

    def _update(
        self,
        where: Locator,
        expected_version: str | None,
        change: Callable[[Memory], Memory],
        verb: str,
        actor: str | None,
        access: Access,
    ) -> Saved:
        """Read, transform and embed with no lock held; commit only if the memory did not change meanwhile."""
        for _ in range(OPTIMISTIC_RETRIES):
            seen = self.read(where, access=access)
            access.check_write(seen.memory.scope)
            check_version(seen, expected_version)
            memory = change(seen.memory)
            access.check_write(memory.scope)
            vectors = self._vectors(memory)
            with self.indexer.committing():
                current = locate(self.catalog, where, access)
                if current.version != seen.version:
                    continue  # changed while we embedded: start again from the new version
                path = memory_path(memory.scope, memory.name)
                if path != current.path or memory.key != current.memory.key:
                    check_target(self.catalog, memory, path, access)
                message = _message(verb, memory, current.memory)
                entry, commit = self._commit(memory, path, vectors, message, actor, old=current)
                return self._saved(entry, commit, vectors, access)
        raise Conflict(f"{where.describe()} kept changing while being updated; retry")

    def _commit(
        self,
        memory: Memory,
        path: str,
        vectors: np.ndarray | None,
        message: str,
        actor: str | None,
        old: Entry | None = None,
    ) -> tuple[Entry, str]:
        data = markdown.render(memory)
        gone = old.path if old is not None and old.path != path else None
        commit = self.store.commit({path: data}, [gone] if gone else [], message, self._author(actor))
        return self.indexer.record_put(commit, memory, path, data, vectors, gone), commit

    def _author(self, actor: str | None) -> Author:
        return self.store.author if not actor else Author(actor, self.store.author.email)

    def _vectors(self, memory: Memory) -> np.ndarray | None:
        if self._background:
            return self.indexer.vectors_or_later(memory)
        return self.indexer.vectors([memory])[0]

    @property
    def near_duplicate(self) -> float:
        """The cosine similarity above which `remember` lists a memory as similar, for this model."""
        floor = self.indexer.embedder.info.unrelated_similarity
        return floor + NEAR_DUPLICATE * (1.0 - floor)

    def _saved(
        self, entry: Entry, commit: str, vectors: np.ndarray | None, access: Access, replaced: bool = False
    ) -> Saved:
        if vectors is None:
            return Saved(entry, commit, replaced, embedding_later=True)
        return Saved(entry, commit, replaced, self._similar(entry, vectors[0], access))

    def _similar(self, entry: Entry, vector: np.ndarray, access: Access) -> tuple[Similar, ...]:
        """Near-duplicates the caller may see (others would be an oracle for what it may not read)."""

        def wanted(label: int) -> bool:
            other = self.catalog.by_label(label)
            return label not in entry.labels and other is not None and visible(other, access)

        with self.indexer.viewing:
            hits = self.catalog.vector_index.search(vector, 6, wanted)
        found: dict[int, Similar] = {}
        for label, similarity in hits:  # entries are immutable once built: safe outside the lock
            other = self.catalog.by_label(label)
            if other is not None and similarity >= self.near_duplicate and other.doc not in found:
                found[other.doc] = Similar(other, round(similarity, 4))
        return tuple(found.values())


@dataclass
class _Plan:
    changes: list[tuple[Memory, str, np.ndarray, Entry | None]]
    unchanged: list[Entry]


def _subtree(scope: str | None) -> ScopeFilter:
    """Omitted or `all`: everything; a path: that subtree only (global only for `global` itself)."""
    scopes = ScopeFilter.parse(scope, default_all=True)
    return replace(scopes, include_global=scopes.root is None or scopes.root.is_global)


def _listed(scope: str | None, tags: list[str] | None, access: Access) -> Callable[[Entry], bool]:
    """Which memories a listing (`list`, `recent`) shows: `_subtree(scope)`, visible, with every tag."""
    scopes = _subtree(scope)
    wanted = set(validate_tags(tags))

    def keep(entry: Entry) -> bool:
        return scopes.matches(entry.memory.scope) and visible(entry, access) and wanted.issubset(entry.memory.tags)

    return keep


def _message(verb: str, memory: Memory, old: Memory | None = None) -> str:
    if verb.startswith("restore:"):
        subject = f"chore: restore memory '{memory.name}' to {verb.partition(':')[2]}"
        body = f"scope: {memory.scope}\nid: {memory.id}"
    elif verb == "move" and old is not None:
        subject = f"chore: move memory '{old.name}' → '{memory.name}'"
        body = f"from scope: {old.scope}\nto scope: {memory.scope}\nid: {memory.id}"
    else:
        subject = f"chore: {verb} memory '{memory.name}'"
        body = f"scope: {memory.scope}\nid: {memory.id}"
    return f"{subject}\n\n{body}\n"
