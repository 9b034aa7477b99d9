"""The three-way merge of two memory trees, by identity: pure data in, pure data out (no git library).

A memory is its id, not its path. Both sides' changes to one id compose into one memory at one path:
- Its location (scope and name, hence its path) and its body (content, tags, source) merge separately:
  a part changed on one side only takes that side's; a part changed on both sides takes the side whose
  `updated_at` is newer (the remote's on a tie). So move + edit gives the edited memory at its new path,
  and move + move (or a rename on both sides) gives the newer move.
- Changed on one side and deleted on the other keeps the change (move + forget keeps the moved memory).
- Two different memories arriving at one path (created on both sides, or moved onto a name the other side
  created): a memory that parses beats a file that does not, then the newer `updated_at`, then the remote's.
Files that are not memories (or do not parse) are matched by path and merged whole, the same way. Every
version not kept whole stays reachable in the merge commit's other parent, and each case is reported.
Only the region of the trees that differs between the sides is given: files equal everywhere stay as
they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from memory_mcp.core import markdown
from memory_mcp.core.model import Memory

KEPT_LOCAL: Final = "kept-local"
KEPT_REMOTE: Final = "kept-remote"
KEPT_CHANGE: Final = "kept-change-over-delete"
COMBINED: Final = "combined"
"""Location from one side, body from the other: both changes kept in one memory."""
LOCAL: Final = "local"
REMOTE: Final = "remote"
BOTH: Final = "both"
BLOB_MODE: Final = 0o100644


@dataclass(frozen=True)
class File:
    """A file in a tree: its git blob id and mode."""

    blob: str
    mode: int = BLOB_MODE


@dataclass(frozen=True)
class NewFile:
    """A file the merge wrote (a memory combined from both sides)."""

    data: bytes
    mode: int = BLOB_MODE

    @property
    def blob(self) -> str:
        return blob_id(self.data)


Tree = Mapping[str, File]
"""path → file, for the paths where base, local and remote are not all equal."""
Load = Callable[[str, File], Memory | None]
"""(path, file) → the memory it holds, None when it is not a memory file or does not parse."""


@dataclass(frozen=True)
class SyncConflict:
    """A memory (or file) both sides changed: what the merge kept; every other version stays in history."""

    path: str
    """Where the merged memory is (for a loss on a path collision: the contested path)."""
    id: str | None
    scope: str | None
    name: str | None
    resolution: str
    """`kept-local`, `kept-remote`, `kept-change-over-delete` or `combined`."""
    kept: str
    """`local`, `remote`, or `both` (combined)."""
    kept_version: str | None
    """Blob id the merged branch holds for it (None: it lost a path collision and is only in history)."""
    other_version: str | None
    """Blob id of the version not kept whole (None: that side deleted it, or nothing was lost)."""
    other_path: str | None = None
    """Where that version was, when not at `path`."""


@dataclass
class Merged:
    changes: dict[str, File | NewFile | None] = field(default_factory=dict)
    """What to apply to the local tree (None = delete)."""
    conflicts: list[SyncConflict] = field(default_factory=list)


@dataclass(frozen=True)
class _Version:
    path: str
    file: File | NewFile
    memory: Memory | None
    side: str


def blob_id(data: bytes) -> str:
    """The git blob id of `data` (what `git hash-object` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's object name


def merge(base: Tree, local: Tree, remote: Tree, load: Load) -> Merged:
    """Merge `remote` into `local` (both descending from `base`); see the module docstring for the rules."""
    load = _memoised(load)
    sides = {"base": _identify(base, "base", {}, load)}
    base_ids = {v.path: key for key, v in sides["base"].items() if v.memory is not None}
    sides[LOCAL] = _identify(local, LOCAL, base_ids, load)
    sides[REMOTE] = _identify(remote, REMOTE, base_ids, load)
    out = Merged()
    placed: dict[str, list[_Version]] = {}
    for key in sorted(set().union(*(s.keys() for s in sides.values()))):
        kept = _merge_one(*(sides[s].get(key) for s in ("base", LOCAL, REMOTE)), out.conflicts)
        if kept is not None:
            placed.setdefault(kept.path, []).append(kept)
    result: dict[str, File | NewFile] = {}
    for path, versions in placed.items():
        winner, *losers = sorted(versions, key=_rank, reverse=True)
        result[path] = winner.file
        out.conflicts += [_lost(path, winner, loser) for loser in losers]
    for path in set(base) | set(local) | set(remote) | set(result):
        merged = result.get(path)
        if merged != local.get(path):
            out.changes[path] = merged
    return out


def _memoised(load: Load) -> Load:
    seen: dict[tuple[str, File], Memory | None] = {}

    def cached(path: str, file: File) -> Memory | None:
        if (path, file) not in seen:
            seen[path, file] = load(path, file)
        return seen[path, file]

    return cached


def _identify(tree: Tree, side: str, base_ids: dict[str, str], load: Load) -> dict[str, _Version]:
    """Key each file: `id:<id>` for a memory, else the id its path held in base, else `path:<path>`.

    One id at several paths on one side (a repository with duplicate ids) keys only one of them by id:
    the one at base's path for it, else the first path; the others are keyed by path.
    """
    out: dict[str, _Version] = {}
    unreadable: list[_Version] = []
    for path in sorted(tree):
        version = _Version(path, tree[path], load(path, tree[path]), side)
        key = None if version.memory is None else f"id:{version.memory.id}"
        if key is None:
            unreadable.append(version)
        elif key not in out or base_ids.get(path) == key:
            if key in out:
                displaced = out[key]
                out[f"path:{displaced.path}"] = displaced
            out[key] = version
        else:
            out[f"path:{path}"] = version
    for version in unreadable:
        inherited = base_ids.get(version.path)
        key = inherited if inherited is not None and inherited not in out else f"path:{version.path}"
        out[key] = version
    return out


def _same(a: _Version | None, b: _Version | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.path, a.file) == (b.path, b.file)


def _merge_one(
    base: _Version | None, local: _Version | None, remote: _Version | None, conflicts: list[SyncConflict]
) -> _Version | None:
    if _same(local, remote) or _same(base, remote):
        return local
    if _same(base, local):
        return remote
    if local is None or remote is None:
        kept, other = (remote, local) if local is None else (local, remote)
        assert kept is not None and base is not None  # both changed, one deleted: base had it
        conflicts.append(_conflict(kept, KEPT_CHANGE, kept.side, None, base.path))
        return kept
    newer = _newer(local, remote)
    older = remote if newer is local else local
    if local.memory is None or remote.memory is None or base is None or base.memory is None:
        conflicts.append(_conflict(newer, _kept(newer.side), newer.side, older.file.blob, older.path))
        return newer
    location, moved_twice = _part(base, local, remote, newer, lambda m: (m.scope, m.name))
    body, edited_twice = _part(base, local, remote, newer, lambda m: (m.content, m.tags, m.source))
    if location is body:
        side = location.side
        conflicts.append(_conflict(location, _kept(side), side, older.file.blob, older.path))
        return location
    return _combine(location, body, older if moved_twice or edited_twice else None, conflicts)


def _part(
    base: _Version, local: _Version, remote: _Version, newer: _Version, part: Callable[[Memory], object]
) -> tuple[_Version, bool]:
    """The side whose value of this part of the memory the merge keeps, and whether both sides changed it."""
    was, mine, theirs = (part(v.memory) for v in (base, local, remote))  # type: ignore[arg-type]
    if mine == theirs:
        return newer, False
    if was == theirs:
        return local, False
    if was == mine:
        return remote, False
    return newer, True


def _combine(
    location: _Version, body: _Version, lost: _Version | None, conflicts: list[SyncConflict]
) -> _Version:
    """One memory: `location`'s scope and name (and path), `body`'s content, the later `updated_at`."""
    where, what = location.memory, body.memory
    assert where is not None and what is not None
    memory = replace(
        what, scope=where.scope, name=where.name, updated_at=max(where.updated_at, what.updated_at)
    )
    version = _Version(location.path, NewFile(markdown.render(memory)), memory, BOTH)
    other = (None, None) if lost is None else (lost.file.blob, lost.path)
    conflicts.append(_conflict(version, COMBINED, BOTH, *other))
    return version


def _newer(local: _Version, remote: _Version) -> _Version:
    """A memory beats a file that does not parse; then the newer `updated_at`; then the remote's."""
    if (local.memory is None) != (remote.memory is None):
        return local if remote.memory is None else remote
    if local.memory is not None and remote.memory is not None:
        return local if local.memory.updated_at > remote.memory.updated_at else remote
    return remote


def _rank(version: _Version) -> tuple[bool, float, int, str]:
    """Order of the memories contending for one path (greatest wins), as `_newer` decides."""
    moment = version.memory.updated_at.timestamp() if version.memory is not None else 0.0
    side = {LOCAL: 0, BOTH: 1, REMOTE: 2}[version.side]
    return (version.memory is not None, moment, side, version.file.blob)


def _kept(side: str) -> str:
    return KEPT_LOCAL if side == LOCAL else KEPT_REMOTE


def _conflict(
    kept: _Version, resolution: str, side: str, other_version: str | None, other_path: str | None
) -> SyncConflict:
    memory = kept.memory
    return SyncConflict(
        path=kept.path,
        id=None if memory is None else memory.id,
        scope=None if memory is None else str(memory.scope),
        name=None if memory is None else memory.name,
        resolution=resolution,
        kept=side,
        kept_version=kept.file.blob,
        other_version=other_version,
        other_path=other_path if other_path != kept.path else None,
    )


def _lost(path: str, winner: _Version, loser: _Version) -> SyncConflict:
    """Two memories for one path: the loser is reported and stays in history only."""
    memory = winner.memory
    return SyncConflict(
        path=path,
        id=None if loser.memory is None else loser.memory.id,
        scope=None if memory is None else str(memory.scope),
        name=None if memory is None else memory.name,
        resolution=_kept(winner.side) if winner.side != BOTH else COMBINED,
        kept=winner.side,
        kept_version=winner.file.blob,
        other_version=loser.file.blob,
    )
