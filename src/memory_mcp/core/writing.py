"""The use cases that write: remember, save many, edit, move, restore, forget. Text is embedded with no
lock held; then, under the indexer's writer lock and the repository's OS lock, the catalog catches up with
whatever other processes committed, the preconditions are checked against that fresh state, the change is
committed, and the catalog follows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from memory_mcp.core import markdown
from memory_mcp.core.catalog import Entry
from memory_mcp.core.checks import (
    check_free,
    check_planned,
    check_target,
    check_version,
    locate,
    validate_memory,
    visible,
)
from memory_mcp.core.indexer import EMBED_BATCH, Progress
from memory_mcp.core.model import (
    FULL_ACCESS,
    Access,
    Memory,
    Scope,
    validate_content,
    validate_name,
    validate_source,
    validate_tags,
)
from memory_mcp.core.history import MemoryHistory
from memory_mcp.core.results import Imported, Locator, Saved, Similar
from memory_mcp.core.store import Author, memory_path
from memory_mcp.errors import AlreadyExists, Conflict, InvalidInput

NEAR_DUPLICATE: Final = 0.80
"""How far from the model's unrelated-text similarity towards 1 a cosine must be for `remember` to report an
existing memory as a likely duplicate (0.80 of the way: about 0.81 with MiniLM, 0.90 with BGE)."""
OPTIMISTIC_RETRIES: Final = 3
SIMILAR: Final = 6
"""Nearest memories looked at for near-duplicates of a saved one."""


class Writing(MemoryHistory):
    """The write side of `MemoryService`; writes read first (`read`, `content_at`), hence the base."""

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
        """Put the content and tags of an old entry of `history` (its `version` or `commit`) back, as a new
        commit; name, scope and id stay as they are now."""
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
        """Embedded now, or None for a large memory a server embeds after its commit (`Indexer`)."""
        return self.indexer.vectors_or_later([memory])[0]

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
            if access.scopes is None:  # every memory is visible: no Python call per visited graph node
                found = self.catalog.vector_index.search(vector, SIMILAR + len(entry.labels))
                hits = [hit for hit in found if hit[0] not in entry.labels][:SIMILAR]
            else:
                hits = self.catalog.vector_index.search(vector, SIMILAR, wanted)
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
