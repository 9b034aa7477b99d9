"""The repository's loose objects, packed. Each commit leaves a few loose files (a memory's blob, each
changed folder's tree, the commit), and a large folder's tree is megabytes (written uncompressed, see
`git_repository.LARGE_FOLDER`). libgit2 has no `git gc`; this is the part of it the store needs: the loose
objects into one pack, where git stores each tree as a delta of a similar one, then the loose copies removed;
and, once the packs are many, all of them into one."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import pygit2

from memory_mcp.core.store.git_repository import GitRepository
from memory_mcp.errors import Unavailable
from memory_mcp.files import fsync_path, try_hold

PACK_FROM: Final = 512
"""Loose objects that make a packing worth it (a remember leaves three or four)..."""
PACK_BYTES: Final = 64 << 20
"""...or loose bytes: twenty commits into a folder of 60,000 memories."""
MAX_PACKS: Final = 16
"""More packs than this are packed into one: a lookup searches each pack's index in turn."""
STALE_SECONDS: Final = 3600.0
"""A pack's temporary file (`pack_git2_*`) this old is a killed writer's: a fetch may be writing a new one."""
_HEX: Final = frozenset("0123456789abcdef")


class Packing(GitRepository):
    def pack_objects(self) -> int:
        """Pack the loose objects once there are enough of them (PACK_FROM, PACK_BYTES); how many objects
        were packed, 0 if none. Writers go on meanwhile: objects written after the listing stay loose.
        Another process packing the same repository makes this one skip."""
        held = try_hold(self._state / "pack.lock")
        if held is None:
            return 0
        try:
            return self._pack()
        except pygit2.GitError as exc:
            raise Unavailable(f"could not pack the repository's objects: {exc}") from exc
        finally:
            os.close(held)

    def _pack(self) -> int:
        objects = Path(self._repo.path, "objects")
        _remove_stale(objects / "pack")
        loose = _loose(objects)
        if len(loose) < PACK_FROM and sum(path.stat().st_size for path in loose.values()) < PACK_BYTES:
            return 0
        folder = objects / "pack"
        before = set(folder.glob("pack-*.pack"))
        whole = len(before) >= MAX_PACKS
        repo = pygit2.Repository(str(self.root))  # opened now, so it sees every pack there is
        written, made = _write_pack(repo, repo.odb if whole else loose, folder, before)
        for path in loose.values():
            path.unlink(missing_ok=True)
        if whole and made:
            for pack in before:
                _remove_pack(pack)
        return written


def _write_pack(
    repo: pygit2.Repository, objects: Iterable[pygit2.Oid], folder: Path, before: set[Path]
) -> tuple[int, set[Path]]:
    """Pack `objects` durably; how many, and the new pack's files (none if an old pack held just these)."""
    builder = pygit2.PackBuilder(repo)
    builder.set_threads(1)  # the other core stays the server's
    for object_id in objects:
        builder.add(object_id)
    builder.write()
    made = {path for path in folder.glob("pack-*") if path.with_suffix(".pack") not in before}
    for path in made:
        fsync_path(path)  # whatever the process-wide switch says (a bulk commit turns it off)
    fsync_path(folder)
    return builder.written_objects_count, made


def _remove_pack(pack: Path) -> None:
    """Remove a pack whose objects are in another: its index first, as a pack without one is ignored."""
    pack.with_suffix(".idx").unlink(missing_ok=True)
    for path in pack.parent.glob(f"{pack.stem}.*"):
        path.unlink(missing_ok=True)


def _remove_stale(folder: Path) -> None:
    """Remove what libgit2 left of packs it was killed writing (a kill -9 here, or during a fetch)."""
    for path in folder.glob("pack_git2_*"):
        if time.time() - path.stat().st_mtime > STALE_SECONDS:
            path.unlink(missing_ok=True)


def _loose(objects: Path) -> dict[pygit2.Oid, Path]:
    """Every loose object's id and file."""
    found = {}
    for folder in objects.iterdir():
        if len(folder.name) == 2 and set(folder.name) <= _HEX and folder.is_dir():
            for path in folder.iterdir():
                if len(path.name) == 38 and set(path.name) <= _HEX:
                    found[pygit2.Oid(hex=folder.name + path.name)] = path
    return found
