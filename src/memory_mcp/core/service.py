"""The use cases: remember, recall, read, edit, forget, list, move, history, reindex.

Ordering is the whole point of this module. Text is embedded with no lock held; then, under the indexer's
writer lock and the repository's OS lock, the catalog catches up with whatever other processes committed,
the preconditions are checked against that fresh state, the change is committed, and the catalog follows.
Every edge (MCP tools, CLI) calls these methods from worker threads: they block.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np

from memory_mcp.core import duplicates, markdown
from memory_mcp.core.catalog import Catalog, Entry
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
from memory_mcp.core.search import Hit, rank
from memory_mcp.core.store import Author, Revision, memory_path
from memory_mcp.errors import AlreadyExists, Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)

NEAR_DUPLICATE: Final = 0.80
"""Cosine similarity above which `remember` reports an existing memory as a likely duplicate."""
OPTIMISTIC_RETRIES: Final = 3


@dataclass(frozen=True)
class Similar:
    entry: Entry
    similarity: float


@dataclass(frozen=True)
class Saved:
    entry: Entry
    commit: str
    replaced: bool = False
    similar: tuple[Similar, ...] = ()


@dataclass(frozen=True)
class Imported:
    """The result of `save_many`: one commit for the whole batch (None when nothing changed)."""

    commit: str | None
    created: list[Entry]
    replaced: list[Entry]
    unchanged: list[Entry]


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    next_cursor: str | None


@dataclass(frozen=True)
class Stats:
    memories: int
    chunks: int
    """Chunk vectors in the vector index."""
    queue_depth: int
    """Requests waiting for the model."""
    pending_vectors: int
    """Memories waiting for vectors after a model change (found by keywords only meanwhile)."""


@dataclass(frozen=True)
class Reindexed:
    memories: int
    unreadable: dict[str, str]


@dataclass(frozen=True)
class Repository:
    root: Path
    branch: str
    head: str | None
    """None before the first commit."""


@dataclass(frozen=True)
class Locator:
    """Which memory a call means: by id, or by name within a scope (default global)."""

    name: str | None = None
    scope: str | None = None
    id: str | None = None

    def describe(self) -> str:
        return f"id {self.id!r}" if self.id else f"{self.name!r} in scope {self.scope or 'global'!r}"


class MemoryService:
    def __init__(self, indexer: Indexer, *, owns_embedder: bool = True) -> None:
        self.indexer = indexer
        self.store = indexer.store
        self.embedder = indexer.embedder
        self._owns_embedder = owns_embedder

    @property
    def catalog(self) -> Catalog:
        return self.indexer.catalog

    def close(self) -> None:
        """Save derived state if it changed, then release the cache and the model (unless it was lent)."""
        self.indexer.save_snapshot()
        if self._owns_embedder:
            self.embedder.close()
        self.indexer.cache.close()

    # ------------------------------------------------------------- upkeep

    def stats(self) -> Stats:
        """Sizes for metrics, read without waiting for writers."""
        return Stats(
            memories=len(self.catalog),
            chunks=len(self.catalog.vectors),
            queue_depth=self.embedder.queue_depth,
            pending_vectors=self.indexer.pending_vectors,
        )

    def refresh(self) -> None:
        """Catch up with commits that moved the branch behind this process's back (a pull, another process)."""
        self.indexer.ensure_fresh()

    def fill_vectors(self, progress: Progress | None = None) -> int:
        """Embed the memories a model change left without vectors (keyword search finds them meanwhile);
        returns how many waited. Raises `Unavailable` if the model is closed under it (shutting down)."""
        waiting = self.indexer.pending_vectors
        if waiting:
            self.indexer.fill_vectors(progress)
        return waiting

    def save_snapshot(self) -> bool:
        """Persist the derived state if it changed since the last save; False when there was nothing to do."""
        return self.indexer.save_snapshot()

    def reindex(self, progress: Progress | None = None, *, reembed: bool = False) -> Reindexed:
        """Drop the derived state and rebuild it from git; `reembed` also ignores cached vectors."""
        count = self.indexer.rebuild(progress, reembed=reembed)
        return Reindexed(count, self.unreadable())

    def unreadable(self) -> dict[str, str]:
        """Memory files that could not be parsed, path → reason; writes never overwrite them."""
        with self.indexer.viewing:
            return dict(sorted(self.catalog.problems.items()))

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
            return self._locate(where, access)

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
        allowed = _filter(scopes, wanted, access)
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
        scopes = ScopeFilter.parse(scope, default_all=True)
        scopes = replace(scopes, include_global=scopes.root is None or scopes.root.is_global)
        wanted = set(validate_tags(tags))
        after = _decode_cursor(cursor)
        self.indexer.ensure_fresh()
        with self.indexer.viewing:
            page: list[Entry] = []
            for entry in self.catalog.sorted_after(after):
                scope_ = entry.memory.scope
                if scopes.matches(scope_) and access.can_read(scope_) and wanted.issubset(entry.memory.tags):
                    if len(page) == limit:
                        return Page(page, _encode_cursor(page[-1].sort_key))
                    page.append(entry)
            return Page(page, None)

    def history(self, where: Locator, *, limit: int = 20, access: Access = FULL_ACCESS) -> list[Revision]:
        """The last `limit` commits that changed the memory, newest first, following moves by id and ending
        at its creation. Raises as `read` does."""
        limit = validate_limit(limit)
        entry = self.read(where, access=access)
        return self.store.history(entry.path, entry.memory.id, self._blob_memory_id, limit)

    def content_at(
        self, where: Locator, version: str, *, access: Access = FULL_ACCESS
    ) -> tuple[Revision, Memory]:
        """The memory as it was at one of its history commits (`version` = commit id or a prefix of it)."""
        if not version or len(version) < 4 or not all(c in "0123456789abcdef" for c in version.lower()):
            raise InvalidInput(
                "version must be a commit id (or a prefix of at least 4 hex digits) from history"
            )
        for revision in self.history(where, limit=MAX_LIMIT, access=access):
            if revision.commit.startswith(version.lower()):
                if revision.blob is None:
                    raise NotFound(f"the memory was deleted in commit {revision.commit[:12]}")
                return revision, markdown.parse(self.store.blob(revision.blob))
        raise NotFound(f"commit {version!r} is not among the last {MAX_LIMIT} versions of {where.describe()}")

    def _blob_memory_id(self, blob: str) -> str | None:
        try:
            return markdown.parse(self.store.blob(blob)).id
        except InvalidInput:
            return None

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
        vectors = self.indexer.vectors([memory])[0]
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
            self._check_free(path, memory.key)
            entry, commit = self._commit(memory, path, vectors, _message("save", memory), actor)
            return Saved(entry, commit, existing is not None, self._similar(entry, vectors[0]))

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
            _validate(memory)
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
                _check_planned(memory, existing, expected.get(memory.key))
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
            self._check_free(path, memory.key)
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
            entry = self._locate(where, access)
            access.check_write(entry.memory.scope)
            _check_version(entry, expected_version)
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
            _check_version(seen, expected_version)
            memory = change(seen.memory)
            access.check_write(memory.scope)
            vectors = self.indexer.vectors([memory])[0]
            with self.indexer.committing():
                current = self._locate(where, access)
                if current.version != seen.version:
                    continue  # changed while we embedded: start again from the new version
                path = memory_path(memory.scope, memory.name)
                if path != current.path or memory.key != current.memory.key:
                    self._check_target(memory, path)
                message = _message(verb, memory, current.memory)
                entry, commit = self._commit(memory, path, vectors, message, actor, old=current)
                return Saved(entry, commit, similar=self._similar(entry, vectors[0]))
        raise Conflict(f"{where.describe()} kept changing while being updated; retry")

    def _commit(
        self,
        memory: Memory,
        path: str,
        vectors: np.ndarray,
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

    # ------------------------------------------------------------- checks

    def _locate(self, where: Locator, access: Access = FULL_ACCESS) -> Entry:
        """The memory meant, as long as `access` may see it (one it may not see is reported as missing)."""
        if where.id:
            entry = self.catalog.by_id(where.id)
            if entry is None or not access.can_read(entry.memory.scope):
                raise NotFound(f"no memory has id {where.id!r}; use list or recall to find it")
            return entry
        if not where.name:
            raise InvalidInput("give the memory's name (and scope), or its id")
        scope = Scope.parse(where.scope)
        entry = self.catalog.by_key(scope, validate_name(where.name))
        if entry is None or not access.can_read(scope):
            raise NotFound(self._not_found_message(where.name, scope, access))
        return entry

    def _not_found_message(self, name: str, scope: Scope, access: Access) -> str:
        elsewhere = sorted(
            str(e.memory.scope)
            for e in self.catalog.entries()
            if e.memory.name == name and access.can_read(e.memory.scope)
        )
        hint = f" It exists in scope(s): {', '.join(elsewhere[:5])}." if elsewhere else ""
        return f"no memory named {name!r} in scope {str(scope)!r}.{hint} Use list or recall to find memories."

    def _check_target(self, memory: Memory, path: str) -> None:
        taken = self.catalog.by_key(memory.scope, memory.name)
        if taken is not None:
            raise AlreadyExists(
                f"a memory named {memory.name!r} already exists in scope {str(memory.scope)!r}; "
                "forget or move it first, or choose another name"
            )
        self._check_free(path, memory.key)

    def _check_free(self, path: str, key: tuple[Scope, str]) -> None:
        """Two different (scope, name) pairs may map to one file (scope `a` + name `b/c` vs `a/b` + `c`)."""
        if path in self.catalog.problems:
            raise Conflict(
                f"the file {path} exists but cannot be read ({self.catalog.problems[path]}); "
                "it is left untouched; choose another name or repair the file"
            )
        holder = self.catalog.by_path(path)
        if holder is not None and holder.memory.key != key:
            other = holder.memory
            raise Conflict(
                f"this name and scope would share the file {path} with memory {other.name!r} in scope "
                f"{str(other.scope)!r}; choose a different name or scope"
            )

    def _similar(self, entry: Entry, vector: np.ndarray) -> tuple[Similar, ...]:
        with self.indexer.viewing:
            hits = self.catalog.vectors.search(vector, 6, lambda label: label not in entry.labels)
        found: dict[int, Similar] = {}
        for label, similarity in hits:  # entries are immutable once built: safe outside the lock
            other = self.catalog.by_label(label)
            if other is not None and similarity >= NEAR_DUPLICATE and other.doc not in found:
                found[other.doc] = Similar(other, round(similarity, 4))
        return tuple(found.values())


@dataclass
class _Plan:
    changes: list[tuple[Memory, str, np.ndarray, Entry | None]]
    unchanged: list[Entry]


def _validate(memory: Memory) -> None:
    """The rules `remember` applies to its arguments, for memories built by importers."""
    validate_name(memory.name)
    Scope.parse(memory.scope.path or None)
    validate_content(memory.content)
    if validate_tags(list(memory.tags)) != memory.tags:
        raise InvalidInput(f"tags of {memory.name!r} must be trimmed and unique")
    if validate_source(memory.source) != memory.source:
        raise InvalidInput(f"source of {memory.name!r} must be a trimmed single line")


def _filter(scopes: ScopeFilter, tags: set[str], access: Access) -> Callable[[Entry], bool] | None:
    """The recall filter, or None when it would let everything through (the fast path)."""
    if scopes.root is None and not tags and access.scopes is None:
        return None

    def allowed(entry: Entry) -> bool:
        scope = entry.memory.scope
        return scopes.matches(scope) and access.can_read(scope) and tags.issubset(entry.memory.tags)

    return allowed


def _check_planned(memory: Memory, existing: Entry | None, planned: str | None) -> None:
    """The memory is where the batch's plan saw it: at the version planned, or absent when planned so."""
    found = None if existing is None else existing.version
    if found == planned:
        return
    where = f"{memory.name!r} in scope {str(memory.scope)!r}"
    if planned is None:
        raise AlreadyExists(
            f"{where} was created by someone else after the import was planned; nothing was imported; "
            "plan again"
        )
    raise Conflict(
        f"{where} changed (or was deleted) after the import was planned; nothing was imported; plan again"
    )


def _check_version(entry: Entry, expected: str | None) -> None:
    if expected is None:
        return
    if len(expected) < 7:
        raise InvalidInput("expected_version must be the version from read/remember (at least 7 hex digits)")
    if not entry.version.startswith(expected.lower()):
        raise Conflict(
            f"memory {entry.memory.name!r} is at version {entry.version[:12]}, not {expected[:12]!r}: it changed "
            "since you read it; read it again and reapply your change"
        )


def _message(verb: str, memory: Memory, old: Memory | None = None) -> str:
    if verb == "move" and old is not None:
        subject = f"chore: move memory '{old.name}' → '{memory.name}'"
        body = f"from scope: {old.scope}\nto scope: {memory.scope}\nid: {memory.id}"
    else:
        subject = f"chore: {verb} memory '{memory.name}'"
        body = f"scope: {memory.scope}\nid: {memory.id}"
    return f"{subject}\n\n{body}\n"


def _encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[str, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        scope, name = json.loads(raw)
        if isinstance(scope, str) and isinstance(name, str):
            return (scope, name)
    except (ValueError, TypeError, binascii.Error):
        pass
    raise InvalidInput("cursor is not one returned by list; omit it to start from the first page")
