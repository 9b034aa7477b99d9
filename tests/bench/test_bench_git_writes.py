"""bench/git_writes.py's accounting, on a real repository written and packed by libgit2 (the server's git):
every loose object, pack and index that arrives is counted at its size, even objects a packing removes."""

from __future__ import annotations

import time
from pathlib import Path

import pygit2
from git_writes import GitWrites


def loose_path(repo: pygit2.Repository, object_id: pygit2.Oid) -> Path:
    return Path(repo.path, "objects", str(object_id)[:2], str(object_id)[2:])


def settled(writes: GitWrites, kind: str, expected: int) -> int:
    """The count once the watcher has read its events (it reads them every POLL_SECONDS)."""
    deadline = time.monotonic() + 5
    while writes.bytes[kind] < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return writes.bytes[kind]


def test_loose_objects_packs_and_the_index_are_counted_even_once_packed_away(tmp_path: Path) -> None:
    repo = pygit2.init_repository(str(tmp_path / "repo"))
    with GitWrites(Path(repo.path)) as writes:
        ids = [repo.create_blob(f"memory {i}\n".encode() * (i + 1)) for i in range(40)]
        loose = sum(loose_path(repo, object_id).stat().st_size for object_id in ids)
        assert settled(writes, "objects", loose) == loose, "each new object once, new fan-out folders too"

        (tmp_path / "repo" / "note.md").write_text("a note\n")
        repo.index.add("note.md")
        repo.index.write()
        index = Path(repo.path, "index").stat().st_size
        assert settled(writes, "index", index) == index

        builder = pygit2.PackBuilder(repo)
        for object_id in ids:
            builder.add(object_id)
        builder.write()
        for object_id in ids:
            loose_path(repo, object_id).unlink()
        packs = sum(path.stat().st_size for path in Path(repo.path, "objects", "pack").iterdir())
        assert settled(writes, "packs", packs) == packs
    assert writes.bytes["objects"] > loose, "objects packed away still count (and the index's blob)"


def test_files_from_before_the_block_are_not_counted(tmp_path: Path) -> None:
    repo = pygit2.init_repository(str(tmp_path / "repo"))
    repo.create_blob(b"before\n")
    with GitWrites(Path(repo.path)) as writes:
        time.sleep(0.2)
    assert sum(writes.bytes.values()) == 0
