"""The service's preconditions, checked against the catalog under the writer lock: which memory a call
means (and whether the caller may see it), free names and files, expected versions, and the rules imported
memories must meet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from memory_mcp.core.catalog import Catalog, Entry
from memory_mcp.core.model import (
    FULL_ACCESS,
    Access,
    Memory,
    Scope,
    ScopeFilter,
    validate_content,
    validate_name,
    validate_source,
    validate_tags,
)
from memory_mcp.core.results import Locator
from memory_mcp.core.store import memory_path
from memory_mcp.errors import AlreadyExists, Conflict, InvalidInput, NotFound


def locate(catalog: Catalog, where: Locator, access: Access = FULL_ACCESS) -> Entry:
    """The memory meant, as long as `access` may see it (one it may not see is reported as missing)."""
    if where.id:
        entry = catalog.by_id(where.id)
        if entry is None or not visible(entry, access):
            raise NotFound(f"no memory has id {where.id!r}", findable=True)
        return entry
    if not where.name:
        raise InvalidInput("give the memory's name (and scope), or its id")
    scope = Scope.parse(where.scope)
    entry = catalog.by_key(scope, validate_name(where.name))
    if entry is None or not visible(entry, access):
        raise NotFound(_not_found_message(catalog, where.name, scope, access), findable=True)
    return entry


def visible(entry: Entry, access: Access) -> bool:
    """By the memory's scope and by its file's folder: a file claiming a scope it does not live in gives no
    rights over the folder it does live in."""
    return access.can_read(entry.memory.scope) and path_visible(entry.path, access)


def path_visible(path: str, access: Access) -> bool:
    if access.scopes is None:
        return True
    return any(path.startswith(memory_path(root, "-").removesuffix("-.md")) for root in access.scopes)

def _not_found_message(catalog: Catalog, name: str, scope: Scope, access: Access) -> str:
    elsewhere = sorted(
        str(e.memory.scope)
        for e in catalog.entries()
        if e.memory.name == name and access.can_read(e.memory.scope)
    )
    hint = f" (it exists in scope(s): {', '.join(elsewhere[:5])})" if elsewhere else ""
    return f"no memory named {name!r} in scope {str(scope)!r}{hint}"

def check_target(catalog: Catalog, memory: Memory, path: str, access: Access = FULL_ACCESS) -> None:
    """A move or rename may land only on a free (scope, name) whose file is free too."""
    taken = catalog.by_key(memory.scope, memory.name)
    if taken is not None:
        raise AlreadyExists(
            f"a memory named {memory.name!r} already exists in scope {str(memory.scope)!r}; "
            "forget or move it first, or choose another name"
        )
    check_free(catalog, path, memory.key, access)

def check_free(catalog: Catalog, path: str, key: tuple[Scope, str], access: Access = FULL_ACCESS) -> None:
    """Two different (scope, name) pairs may map to one file (scope `a` + name `b/c` vs `a/b` + `c`)."""
    if path in catalog.problems:
        raise Conflict(
            f"the file {path} exists but cannot be read ({catalog.problems[path]}); "
            "it is left untouched; choose another name or repair the file"
        )
    holder = catalog.by_path(path)
    if holder is not None and holder.memory.key != key:
        other = holder.memory
        if not visible(holder, access):  # naming it would tell the caller what it may not read
            raise Conflict(
                f"this name and scope would share the file {path} with another memory; "
                "choose a different name or scope"
            )
        raise Conflict(
            f"this name and scope would share the file {path} with memory {other.name!r} in scope "
            f"{str(other.scope)!r}; choose a different name or scope"
        )


def validate_memory(memory: Memory) -> None:
    """The rules `remember` applies to its arguments, for memories built by importers."""
    validate_name(memory.name)
    Scope.parse(memory.scope.path or None)
    validate_content(memory.content)
    if validate_tags(list(memory.tags)) != memory.tags:
        raise InvalidInput(f"tags of {memory.name!r} must be trimmed and unique")
    if validate_source(memory.source) != memory.source:
        raise InvalidInput(f"source of {memory.name!r} must be a trimmed single line")


class ScopeVerdicts(dict[str, bool]):
    """Scope path → whether a recall admits that scope, worked out on first sight: a search tests hundreds of
    index nodes per query, and a dictionary lookup per test costs a fraction of rechecking the rules."""

    def __init__(self, admits: Callable[[Scope], bool]) -> None:
        super().__init__()
        self._admits = admits

    def __missing__(self, path: str) -> bool:
        verdict = self[path] = self._admits(Scope(path))
        return verdict


@dataclass(frozen=True)
class RecallFilter:
    """Which memories one recall may return: scopes it covers and `access` may read, then `rest` (tags, and a
    file's folder for a caller limited to some scopes), None when the scope decides alone. `tags` are the
    ones `rest` requires, for a search to start from the memories that carry them."""

    scopes: ScopeVerdicts
    rest: Callable[[Entry], bool] | None
    tags: frozenset[str] = frozenset()

    def __call__(self, entry: Entry) -> bool:
        return self.scopes[entry.memory.scope.path] and (self.rest is None or self.rest(entry))


def recall_filter(scopes: ScopeFilter, tags: set[str], access: Access) -> RecallFilter | None:
    """The recall filter, or None when it would let everything through (the fast path)."""
    if scopes.root is None and not tags and access.scopes is None:
        return None
    verdicts = ScopeVerdicts(lambda scope: scopes.matches(scope) and access.can_read(scope))
    if not tags and access.scopes is None:
        return RecallFilter(verdicts, None)

    def rest(entry: Entry) -> bool:
        return tags.issubset(entry.memory.tags) and path_visible(entry.path, access)

    return RecallFilter(verdicts, rest, frozenset(tags))


def check_version(entry: Entry, expected: str | None) -> None:
    if expected is None:
        return
    if len(expected) < 7:
        raise InvalidInput("expected_version must be the version from read/remember (at least 7 hex digits)")
    if not entry.version.startswith(expected.lower()):
        raise Conflict(
            f"memory {entry.memory.name!r} is at version {entry.version[:12]}, not {expected[:12]!r}: it changed "
            "since you read it; read it again and reapply your change"
        )


def check_planned(memory: Memory, existing: Entry | None, planned: str | None) -> None:
    """The memory is where a batch's plan saw it: at the version planned, or absent when planned so."""
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
