"""The three-way merge by identity, on plain path → file maps: each documented rule, case by case."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from memory_mcp.core import markdown
from memory_mcp.core.merge import (
    BOTH,
    COMBINED,
    KEPT_CHANGE,
    KEPT_LOCAL,
    KEPT_REMOTE,
    File,
    Merged,
    NewFile,
    blob_id,
    merge,
)
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.store import memory_path
from memory_mcp.errors import InvalidInput

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BASE = Memory(name="notes", scope=Scope(), content="base text", id="m1", created_at=T0, updated_at=T0)
Tree = dict[str, File]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def edited(memory: Memory, content: str, minutes: int) -> Memory:
    return replace(memory, content=content, updated_at=at(minutes))


def moved(memory: Memory, minutes: int, *, name: str | None = None, scope: str | None = None) -> Memory:
    return replace(
        memory,
        name=name or memory.name,
        scope=Scope(scope) if scope is not None else memory.scope,
        updated_at=at(minutes),
    )


def tree(*memories: Memory, raw: dict[str, bytes] | None = None) -> Tree:
    files = {memory_path(m.scope, m.name): markdown.render(m) for m in memories} | (raw or {})
    BLOBS.update({blob_id(data): data for data in files.values()})
    return {path: File(blob_id(data)) for path, data in files.items()}


BLOBS: dict[str, bytes] = {}


def load(path: str, file: File) -> Memory | None:
    try:
        return markdown.parse(BLOBS[file.blob])
    except InvalidInput:
        return None


def region(base: Tree, local: Tree, remote: Tree) -> tuple[Tree, Tree, Tree]:
    """What the store hands over: only the paths where the three sides are not all equal."""
    paths = {p for t in (base, local, remote) for p in t if not base.get(p) == local.get(p) == remote.get(p)}
    picked = tuple({p: t[p] for p in paths if p in t} for t in (base, local, remote))
    return picked  # type: ignore[return-value]


def merged_tree(local: Tree, result: Merged) -> dict[str, Memory]:
    """The merged memories by path, after applying the changes to the local tree."""
    out: dict[str, Memory] = {}
    for path, file in {**local, **result.changes}.items():
        if file is None:
            continue
        data = file.data if isinstance(file, NewFile) else BLOBS[file.blob]
        out[path] = markdown.parse(data)
    return out


def run(base: Tree, local: Tree, remote: Tree) -> tuple[dict[str, Memory], Merged]:
    result = merge(*region(base, local, remote), load)
    return merged_tree(local, result), result


def test_blob_ids_are_gits() -> None:
    data = markdown.render(BASE)
    expected = subprocess.run(
        ["git", "hash-object", "--stdin"], input=data, capture_output=True, check=True
    ).stdout.decode()
    assert blob_id(data) == expected.strip()


def test_a_change_on_one_side_is_taken_without_a_conflict() -> None:
    base = tree(BASE)
    memories, result = run(base, tree(edited(BASE, "mine", 5)), base)
    assert result.conflicts == [] and result.changes == {}, "the local tree is the merge"
    memories, result = run(base, base, tree(moved(BASE, 5, name="renamed")))
    assert result.conflicts == []
    assert list(memories) == ["global/renamed.md"] and memories["global/renamed.md"].id == "m1"


def test_move_on_one_side_and_edit_on_the_other_compose() -> None:
    for local_first in (True, False):
        mover, editor = moved(BASE, 5, scope="org/team"), edited(BASE, "edited text", 9)
        local, remote = (tree(mover), tree(editor)) if local_first else (tree(editor), tree(mover))
        memories, result = run(tree(BASE), local, remote)
        assert list(memories) == ["projects/org/team/notes.md"], "one memory, at the moved path"
        (memory,) = memories.values()
        assert (memory.id, memory.content, memory.updated_at) == ("m1", "edited text", at(9))
        (conflict,) = result.conflicts
        assert (conflict.resolution, conflict.kept, conflict.other_version) == (COMBINED, BOTH, None)
        assert (conflict.id, conflict.path) == ("m1", "projects/org/team/notes.md")


def test_move_on_both_sides_keeps_the_newer_move_and_reports_the_other() -> None:
    older, newer = moved(BASE, 3, name="older-name"), moved(BASE, 8, name="newer-name")
    for local, remote, kept in ((older, newer, KEPT_REMOTE), (newer, older, KEPT_LOCAL)):
        memories, result = run(tree(BASE), tree(local), tree(remote))
        assert list(memories) == ["global/newer-name.md"]
        (conflict,) = result.conflicts
        assert conflict.resolution == kept
        assert conflict.other_path == "global/older-name.md"
        assert conflict.other_version == blob_id(markdown.render(older))


def test_renamed_on_both_sides_with_an_edit_keeps_the_newer_name_and_the_edit() -> None:
    local = moved(BASE, 4, name="local-name")
    remote = edited(moved(BASE, 2, name="remote-name"), "remote edit", 2)
    memories, result = run(tree(BASE), tree(local), tree(remote))
    assert list(memories) == ["global/local-name.md"]
    assert memories["global/local-name.md"].content == "remote edit"
    (conflict,) = result.conflicts
    assert conflict.resolution == COMBINED
    assert conflict.other_path == "global/remote-name.md", "the remote's name is what was lost"


def test_move_on_one_side_and_forget_on_the_other_keeps_the_moved_memory() -> None:
    for swap in (False, True):
        local, remote = tree(moved(BASE, 5, name="kept")), tree()
        if swap:
            local, remote = remote, local
        memories, result = run(tree(BASE), local, remote)
        assert list(memories) == ["global/kept.md"]
        (conflict,) = result.conflicts
        assert conflict.resolution == KEPT_CHANGE and conflict.other_version is None


def test_edit_on_both_sides_keeps_the_newer_whole() -> None:
    memories, result = run(tree(BASE), tree(edited(BASE, "old", 1)), tree(edited(BASE, "new", 2)))
    assert memories["global/notes.md"].content == "new"
    assert [c.resolution for c in result.conflicts] == [KEPT_REMOTE]
    memories, _ = run(tree(BASE), tree(edited(BASE, "tie local", 2)), tree(edited(BASE, "tie remote", 2)))
    assert memories["global/notes.md"].content == "tie remote", "a tie keeps the remote's"


def test_two_memories_for_one_path_keep_the_newer_and_report_the_other() -> None:
    mine = Memory(name="fresh", scope=Scope(), content="a", id="a", created_at=T0, updated_at=at(1))
    theirs = replace(mine, content="b", id="b", updated_at=at(2))
    memories, result = run(tree(), tree(mine), tree(theirs))
    assert [m.id for m in memories.values()] == ["b"]
    (conflict,) = result.conflicts
    lost = tree(mine)["global/fresh.md"].blob
    assert (conflict.id, conflict.kept, conflict.other_version) == ("a", "remote", lost)


def test_a_move_onto_a_name_the_other_side_created_keeps_one_memory_per_path() -> None:
    other = Memory(name="taken", scope=Scope(), content="new one", id="n", created_at=T0, updated_at=at(1))
    memories, result = run(tree(BASE), tree(moved(BASE, 5, name="taken")), tree(BASE, other))
    assert [m.id for m in memories.values()] == ["m1"], "the newer memory keeps the path"
    assert [(c.id, c.resolution) for c in result.conflicts] == [("n", KEPT_LOCAL)]


def test_an_unreadable_version_loses_to_a_memory_and_keeps_the_path_identity() -> None:
    broken = {"global/notes.md": b"broken by hand"}
    memories, result = run(tree(BASE), tree(edited(BASE, "valid", 1)), tree(raw=broken))
    assert memories["global/notes.md"].content == "valid"
    assert [(c.path, c.resolution) for c in result.conflicts] == [("global/notes.md", KEPT_LOCAL)]


def test_files_that_are_not_memories_merge_by_path() -> None:
    base = tree(raw={"README": b"base"})
    result = merge(*region(base, tree(raw={"README": b"mine"}), tree(raw={"README": b"theirs"})), load)
    assert result.changes == {"README": File(blob_id(b"theirs"))}
    assert [c.resolution for c in result.conflicts] == [KEPT_REMOTE]


def test_duplicate_ids_already_in_a_tree_neither_crash_nor_multiply() -> None:
    twin = moved(BASE, 0, name="twin")
    base = tree(BASE, twin)
    memories, result = run(base, tree(edited(BASE, "edited", 3), twin), base)
    assert sorted(memories) == ["global/notes.md", "global/twin.md"]
    assert memories["global/notes.md"].content == "edited" and result.conflicts == []
