"""TreeBytes against libgit2's own tree builder in a real repository: every edit must give the very tree
object git would write, byte for byte, whatever the names' order quirks (a folder sorts as if its name
ended in `/`)."""

from __future__ import annotations

import random
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import FileMode, ObjectType

from memory_mcp.core.store.tree_bytes import SPLICES, TreeBytes

STEMS = ["a", "a.md", "a-b", "a.b", "ab", "a0", "aa", "b", "foo", "foo.md", "foo-1", "foo.c", "Z", "_", "é"]
SUFFIXES = ["", "1", ".md", "-x", "_y"]


@pytest.fixture
def repo(tmp_path: Path) -> pygit2.Repository:
    return pygit2.init_repository(str(tmp_path / "repo.git"), bare=True)


def _objects(repo: pygit2.Repository) -> list[tuple[pygit2.Oid, int]]:
    """Blobs of each regular kind, a link, and a folder: every mode a memory repository may hold."""
    blobs = [repo.create_blob(f"{i}".encode()) for i in range(8)]
    folder = repo.TreeBuilder()
    folder.insert("x.md", blobs[0], FileMode.BLOB)
    kinds = [FileMode.BLOB, FileMode.BLOB, FileMode.BLOB_EXECUTABLE, FileMode.LINK]
    return [(blob, kinds[i % len(kinds)]) for i, blob in enumerate(blobs)] + [
        (folder.write(), FileMode.TREE)
    ] * 3


def _changes(rng: random.Random, objects: list[tuple[pygit2.Oid, int]], count: int) -> dict:
    changes: dict[str, tuple[pygit2.Oid, int] | None] = {}
    for _ in range(count):
        name = rng.choice(STEMS) + rng.choice(SUFFIXES)
        changes[name] = None if rng.random() < 0.25 else rng.choice(objects)
    return changes


def _held(builder: pygit2.TreeBuilder, name: str) -> tuple[bytes, int] | None:
    entry = builder.get(name)
    return None if entry is None else (entry.id.raw, entry.filemode)


def _apply(builder: pygit2.TreeBuilder, changes: dict) -> None:
    for name, change in changes.items():
        if change is None:
            if builder.get(name) is not None:
                builder.remove(name)
        else:
            builder.insert(name, *change)


@pytest.mark.parametrize("per_edit", [1, 3, SPLICES + 1, 60], ids=["one", "few", "just-many", "many"])
def test_every_edit_gives_the_tree_libgit2_writes(repo: pygit2.Repository, per_edit: int) -> None:
    """Single splices and whole rebuilds alike: the same object id, and what each name held before."""
    rng, objects = random.Random(per_edit), _objects(repo)
    builder, mine = repo.TreeBuilder(), TreeBytes()
    for step in range(400 if per_edit < SPLICES else 60):
        changes = _changes(rng, objects, per_edit)
        expected_held = {name: _held(builder, name) for name in changes}
        _apply(builder, changes)
        held = mine.update({n: None if c is None else (c[0].raw, c[1]) for n, c in changes.items()})
        assert held == expected_held, step
        assert len(mine) == len(builder), step
        assert repo.odb.write(ObjectType.TREE, mine.data) == builder.write(), step


def test_a_tree_read_back_is_edited_in_place(repo: pygit2.Repository) -> None:
    """Parsed from git's own bytes, one entry added to a 3,000-entry folder, one replaced, one removed."""
    blob, other = repo.create_blob(b"one"), repo.create_blob(b"two")
    builder = repo.TreeBuilder()
    for i in range(3000):
        builder.insert(f"n{i:05d}.md", blob, FileMode.BLOB)
    mine = TreeBytes(repo.odb.read(builder.write())[1])
    assert len(mine) == 3000 and mine.get("n01234.md") == (blob.raw, FileMode.BLOB)
    assert mine.get("n99999.md") is None
    mine.update(
        {"n01500x.md": (other.raw, FileMode.BLOB), "n00007.md": None, "n00008.md": (other.raw, 0o100755)}
    )
    builder.insert("n01500x.md", other, FileMode.BLOB)
    builder.remove("n00007.md")
    builder.insert("n00008.md", other, FileMode.BLOB_EXECUTABLE)
    assert repo.odb.write(ObjectType.TREE, mine.data) == builder.write()
    assert mine.get("n00008.md") == (other.raw, FileMode.BLOB_EXECUTABLE)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\0b"])
def test_a_name_git_cannot_hold_is_refused(name: str) -> None:
    mine = TreeBytes()
    with pytest.raises(ValueError, match="cannot name a tree entry"):
        mine.update({name: (b"\1" * 20, FileMode.BLOB)})
    assert mine.data == b"" and len(mine) == 0


def test_an_object_id_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="20-byte object id"):
        TreeBytes().update({"a.md": (b"\1" * 19, FileMode.BLOB)})


def test_a_cut_short_tree_is_refused(repo: pygit2.Repository) -> None:
    builder = repo.TreeBuilder()
    builder.insert("a.md", repo.create_blob(b"a"), FileMode.BLOB)
    data = repo.odb.read(builder.write())[1]
    with pytest.raises(ValueError, match="cut short"):
        TreeBytes(data[:-5])
