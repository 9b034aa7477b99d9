"""bench/git_writes.py's accounting, on a real repository written and packed by libgit2 (the server's git):
every loose object, pack, index and work-tree file that arrives is counted in pages, even objects a packing
removes later; files from before the block, temporaries and appends in place are not."""

from __future__ import annotations

import time
from pathlib import Path

import pygit2
from git_writes import GitWrites, pages

from memory_mcp.files import write_atomic


def loose_path(repo: pygit2.Repository, object_id: pygit2.Oid) -> Path:
    return Path(repo.path, "objects", str(object_id)[:2], str(object_id)[2:])


def settled(writes: GitWrites, kind: str, expected: int) -> int:
    """The count once the watcher has read its events (it reads them every POLL_SECONDS)."""
    deadline = time.monotonic() + 5
    while writes.bytes[kind] < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return writes.bytes[kind]


def test_loose_objects_packs_and_the_index_are_counted_even_once_packed_away(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = pygit2.init_repository(str(root))
    with GitWrites(root) as writes:
        ids = [repo.create_blob(f"memory {i}\n".encode() * (i * 50 + 1)) for i in range(40)]
        loose = sum(pages(loose_path(repo, object_id).stat().st_size) for object_id in ids)
        assert settled(writes, "objects", loose) == loose, "each new object once, new fan-out folders too"

        (root / "note.md").write_text("a note\n")
        repo.index.add("note.md")
        repo.index.write()
        index = pages(Path(repo.path, "index").stat().st_size)
        assert settled(writes, "index", index) == index

        builder = pygit2.PackBuilder(repo)
        for object_id in ids:
            builder.add(object_id)
        builder.write()
        for object_id in ids:
            loose_path(repo, object_id).unlink()
        packs = sum(pages(path.stat().st_size) for path in Path(repo.path, "objects", "pack").iterdir())
        assert settled(writes, "packs", packs) == packs
    assert writes.bytes["objects"] == loose + 4096, "objects packed away still count, and the index's blob"


def test_work_tree_files_count_as_they_arrive_and_appends_do_not(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    pygit2.init_repository(str(root))
    (root / "global").mkdir()
    log = root / "global" / "log.md"
    log.write_text("old\n")
    with GitWrites(root) as writes:
        write_atomic(root / "global" / "renamed.md", b"x" * 5000, scratch=root / ".git")
        (root / "projects" / "new").mkdir(parents=True)  # folders made during the block are watched too
        (root / "projects" / "new" / "direct.md").write_bytes(b"y" * 100)
        with log.open("a") as handle:
            handle.write("appended\n")
        assert settled(writes, "work tree", 3 * 4096) == 3 * 4096, "8 KB renamed into place, 4 KB written"
        time.sleep(0.2)
    assert writes.bytes["work tree"] == 3 * 4096, "the append to a file from before is not counted"
    assert sum(writes.bytes.values()) == 3 * 4096, "write_atomic's temporary in .git is not counted"


def test_files_from_before_the_block_are_not_counted(tmp_path: Path) -> None:
    repo = pygit2.init_repository(str(tmp_path / "repo"))
    repo.create_blob(b"before\n")
    with GitWrites(tmp_path / "repo") as writes:
        time.sleep(0.2)
    assert sum(writes.bytes.values()) == 0
