"""The repository's loose objects, packed. Each commit leaves a few loose files (a memory's blob, each
changed folder's tree, the commit), and a large folder's tree is megabytes (written uncompressed, see
`git_repository.LARGE_FOLDER`). libgit2 has no `git gc`; this is the part of it the store needs: the loose
objects into one pack, where git stores each tree as a delta of a similar one, then the loose copies removed;
and the smallest packs merged whenever the packs stop growing geometrically: by copying (`pack_merge`), as
libgit2 would find every delta again, which costs seconds for each of a large folder's trees."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import pygit2

from memory_mcp.core.store import pack_merge
from memory_mcp.core.store.git_repository import GitRepository
from memory_mcp.errors import Unavailable
from memory_mcp.files import fsync_path, try_hold
from memory_mcp.idle_priority import run_lowered

log = logging.getLogger(__name__)

PACK_FROM: Final = 512
"""Loose objects that make a packing worth it (a remember leaves three or four)..."""
PACK_BYTES: Final = 64 << 20
"""...or loose bytes: twenty commits into a folder of 60,000 memories."""
FACTOR: Final = 2
"""The packs are kept a geometric progression, as `git repack --geometric=2` keeps them: each holds at least
twice the objects of the one below it. So they number ~log2(objects / PACK_FROM), each object is copied about
that often in its life, and the largest pack (an import's, a clone's) is packed again only as the repository
doubles."""
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
        repo = pygit2.Repository(str(self.root))  # opened now, so it sees every pack there is
        written, _ = _write_pack(repo, loose, objects / "pack")
        for path in loose.values():
            path.unlink(missing_ok=True)
        _merge_small_packs(repo, objects / "pack")
        return written


def _write_pack(repo: pygit2.Repository, objects: Iterable[pygit2.Oid], folder: Path) -> tuple[int, bool]:
    """Pack `objects` durably with libgit2, which finds each one's delta; how many it packed, and whether
    that made a new pack (not when a pack of the same bytes was there)."""
    before = set(folder.glob("pack-*"))
    builder = pygit2.PackBuilder(repo)
    builder.set_threads(1)  # the other core stays the server's
    for object_id in objects:
        builder.add(object_id)
    run_lowered(builder.write, "memory-mcp-pack")  # finding deltas takes minutes at 60k memories a folder
    made = set(folder.glob("pack-*")) - before
    for path in made:
        fsync_path(path)  # whatever the process-wide switch says (a bulk commit turns it off)
    fsync_path(folder)
    return builder.written_objects_count, bool(made)


def _merge_small_packs(repo: pygit2.Repository, folder: Path) -> None:
    """Merge the packs below the geometric progression into one, then remove them. They are copied, unless
    all the packs merge (each time the repository has doubled), when libgit2 packs them again to find each
    object's delta afresh (each pack starts from a whole tree), or they share objects (a merge killed before
    its old packs went), as a pack holds each once."""
    packs = _packs_by_size(folder)
    rolled = [pack for _, pack in packs[: _rollup([count for count, _ in packs])]]
    if len(rolled) < 2:
        return
    try:
        indexes = [pack_merge.read_index(pack) for pack in rolled]
        if len(rolled) < len(packs) and pack_merge.distinct(indexes):
            made = pack_merge.merge(indexes, folder) not in rolled
        else:
            _, made = _write_pack(repo, (pygit2.Oid(raw=i) for index in indexes for i in index.ids), folder)
    except (pack_merge.UnreadablePack, FileNotFoundError) as exc:
        log.warning("left the packs as they are: %s", exc)
        return
    if made:  # else the new pack is one of the old ones
        for pack in rolled:
            _remove_pack(pack)


def _packs_by_size(folder: Path) -> list[tuple[int, Path]]:
    """The packs this may merge, smallest first: not those kept (`.keep`, git's mark) nor unreadable ones."""
    packs = []
    for pack in folder.glob("pack-*.pack"):
        if pack.with_suffix(".keep").exists():
            continue
        try:
            packs.append((pack_merge.object_count(pack), pack))
        except (pack_merge.UnreadablePack, FileNotFoundError):
            continue
    return sorted(packs)


def _rollup(counts: list[int]) -> int:
    """How many of the smallest packs (their object counts, ascending) to merge: every one below the largest
    run that grows FACTOR-fold pack to pack, and then each next one smaller than FACTOR times all those."""
    split = 0
    for i in range(len(counts) - 1, 0, -1):
        if counts[i] < FACTOR * counts[i - 1]:
            split = i + 1
            break
    total = sum(counts[:split])
    while split < len(counts) and counts[split] < FACTOR * total:
        total += counts[split]
        split += 1
    return split


def _remove_pack(pack: Path) -> None:
    """Remove a pack whose objects are in another: its index first, as a pack without one is ignored."""
    pack.with_suffix(".idx").unlink(missing_ok=True)
    for path in pack.parent.glob(f"{pack.stem}.*"):
        path.unlink(missing_ok=True)


def _remove_stale(folder: Path) -> None:
    """Remove what libgit2 left of packs it was killed writing (a kill -9 here, or during a fetch), and the
    data of a pack whose index went before a kill (never read again)."""
    leftovers = [*folder.glob("pack_git2_*")]
    leftovers += [pack for pack in folder.glob("pack-*.pack") if not pack.with_suffix(".idx").exists()]
    for path in leftovers:
        try:
            if time.time() - path.stat().st_mtime > STALE_SECONDS:
                path.unlink()
        except FileNotFoundError:
            continue


def _loose(objects: Path) -> dict[pygit2.Oid, Path]:
    """Every loose object's id and file."""
    found = {}
    for folder in objects.iterdir():
        if len(folder.name) == 2 and set(folder.name) <= _HEX and folder.is_dir():
            for path in folder.iterdir():
                if len(path.name) == 38 and set(path.name) <= _HEX:
                    found[pygit2.Oid(hex=folder.name + path.name)] = path
    return found
