"""The per-memory commit index against real repositories: moves, deletions by a tool or by hand, names reused
after a forget, incremental advance, and a first-parent line replaced under it (a sync's fast-forward)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest

from memory_mcp.core import markdown
from memory_mcp.core.derived_store import DerivedStore
from memory_mcp.core.merge import File
from memory_mcp.core.model import Scope
from memory_mcp.core.revision_index import RevisionIndex
from memory_mcp.core.store import Author, GitStore, git_history
from memory_mcp.errors import InvalidInput
from tests.unit.store_helpers import commit, doc

AUTHOR = Author("tester", "tester@example.com")


@pytest.fixture
def store(tmp_path: Path) -> GitStore:
    return GitStore(tmp_path / "repo", author=AUTHOR)


@pytest.fixture(params=["in memory", "on disk, a commit per transaction"])
def index(request: pytest.FixtureRequest, store: GitStore, tmp_path: Path) -> Iterator[RevisionIndex]:
    """Every test runs on a private in-memory database and on a file written one commit per transaction."""
    if request.param == "in memory":
        yield RevisionIndex(store, parser(store))
        return
    derived = DerivedStore.open(tmp_path / "derived.sqlite")
    yield RevisionIndex(store, parser(store), derived, batch=1)
    derived.close()


def parser(store: GitStore) -> Callable[[str], str | None]:
    """The memory id a stored file holds, as the service reads it."""

    def parse_id(blob_id: str) -> str | None:
        try:
            return markdown.parse(store.blob(blob_id)).id
        except InvalidInput:
            return None

    return parse_id


def test_history_follows_a_move_and_stops_at_the_creation(store: GitStore, index: RevisionIndex) -> None:
    old, new = "global/a.md", "projects/p/c.md"
    c1 = commit(store, {old: doc("a", "v1", "X")}, msg="create")
    c2 = commit(store, {old: doc("a", "v2", "X")}, msg="edit")
    commit(store, {"global/other.md": doc("other", "o", "Y")}, msg="unrelated")
    c4 = commit(store, {new: doc("c", "v2", "X", Scope("p"))}, [old], msg="move")
    c5 = commit(store, {new: doc("c", "v3", "X", Scope("p"))}, msg="edit again")
    commit(store, {"global/other.md": doc("other", "o2", "Y")}, msg="unrelated 2")

    revisions = index.history(new, "X", 10)
    assert [r.commit for r in revisions] == [c5, c4, c2, c1]
    assert [r.message for r in revisions] == ["edit again", "move", "edit", "create"]
    assert [r.path for r in revisions] == [new, new, old, old]
    assert revisions[0].blob == GitStore.blob_id(doc("c", "v3", "X", Scope("p")))
    assert revisions[3].blob == GitStore.blob_id(doc("a", "v1", "X"))
    assert revisions[0].author == "tester <tester@example.com>" and revisions[0].time.tzinfo is not None
    assert [r.commit for r in index.history(new, "X", 2)] == [c5, c4]


def test_history_does_not_follow_a_different_memory(store: GitStore, index: RevisionIndex) -> None:
    commit(store, {"global/a.md": doc("a", "v1", "Z")})
    c2 = commit(store, {"global/b.md": doc("b", "v1", "Y")}, ["global/a.md"])  # Z goes, Y comes: no move
    assert [r.commit for r in index.history("global/b.md", "Y", 10)] == [c2]


def test_a_memory_deleted_by_hand_is_found_by_id(store: GitStore, index: RevisionIndex) -> None:
    """A commit made outside the server names no id; the deleted file itself says whose it was. A new memory
    later written under the same name is another memory, with a history of its own."""
    c1 = commit(store, {"global/a.md": doc("a", "v1", "X")}, msg="create")
    c2 = commit(store, {"global/a.md": doc("a", "v2", "X")}, msg="edit")
    c3 = commit(store, deletes=["global/a.md"], msg="rm a.md")
    c4 = commit(store, {"global/a.md": doc("a", "new", "W")}, msg="a new memory, same name")

    gone = index.forgotten("X", 10)
    assert [(r.commit, r.blob is None) for r in gone] == [(c3, True), (c2, False), (c1, False)]
    assert [r.commit for r in index.history("global/a.md", "W", 10)] == [c4]
    assert index.forgotten("W", 10) == [] and index.forgotten("never", 10) == []


def test_history_by_path_reads_the_id_from_the_newest_version(store: GitStore, index: RevisionIndex) -> None:
    c1 = commit(store, {"global/a.md": doc("a", "v1", "X")})
    c2 = commit(store, {"projects/p/a.md": doc("a", "v1", "X", Scope("p"))}, ["global/a.md"], msg="move")
    c3 = commit(store, deletes=["projects/p/a.md"], msg="forget")
    revisions = index.history("projects/p/a.md", None, 10)
    assert [(r.commit, r.path) for r in revisions] == [
        (c3, "projects/p/a.md"),
        (c2, "projects/p/a.md"),
        (c1, "global/a.md"),
    ]


def test_each_commit_is_indexed_once(store: GitStore, index: RevisionIndex) -> None:
    for n in range(3):
        commit(store, {"global/a.md": doc("a", f"v{n}", "X")})
    assert index.advance() == 3
    assert index.advance() == 0
    commit(store, {"global/b.md": doc("b", "v", "Y")})
    commit(store, {"global/a.md": doc("a", "v3", "X")})
    assert len(index.history("global/a.md", "X", 10)) == 4, "a history request catches up first"
    assert index.advance() == 0


def test_a_new_first_parent_line_rebuilds_the_index(store: GitStore, index: RevisionIndex) -> None:
    """A sync may fast-forward to a remote merge whose first parent is the remote's own line and whose second
    is our old tip: our commits leave the first-parent line, and the index must not keep them on it."""
    c1 = commit(store, {"global/a.md": doc("a", "v1", "X")}, msg="create")
    ours = commit(store, {"global/a.md": doc("a", "ours", "X")}, msg="our edit")
    assert index.advance() == 2
    repo = store.repository
    remote_tree = pygit2.Index()
    remote_tree.read_tree(repo[c1].peel(pygit2.Commit).tree)
    blob = repo.create_blob(doc("b", "remote", "Y"))
    remote_tree.add(pygit2.IndexEntry("global/b.md", blob, pygit2.enums.FileMode.BLOB))
    signature = pygit2.Signature("remote", "remote@example.com")
    theirs = str(
        repo.create_commit(None, signature, signature, "remote work", remote_tree.write_tree(repo), [c1])
    )
    kept = {"global/a.md": store_file(store, ours, "global/a.md")}  # the merge keeps our edit
    merged = store.merge_commit(theirs, ours, kept, "merge")
    with store.write_lock():
        store.move_branch(ours, merged, "fast-forward to the remote's merge")

    assert index.advance() == 3, "rebuilt from the new line: merge, remote work, create"
    revisions = index.history("global/a.md", "X", 10)
    assert [(r.commit, r.message) for r in revisions] == [(merged, "merge"), (c1, "create")]
    assert [r.commit for r in index.history("global/b.md", "Y", 10)] == [theirs]


def store_file(store: GitStore, commit_id: str, path: str) -> File:
    blob = store.blob_at(commit_id, path)
    assert blob is not None
    return File(blob)


def test_an_advance_out_of_time_indexes_nothing_and_the_next_one_everything(
    store: GitStore, index: RevisionIndex
) -> None:
    """A clean stop gives the index a few seconds: past them it leaves the commits to the next start."""
    commit(store, {"global/a.md": doc("a", "v0", "X")})
    assert index.advance() == 1
    for n in range(1, 4):
        commit(store, {"global/a.md": doc("a", f"v{n}", "X")})
    assert index.advance(within=-1.0) == 0
    assert index.tip != store.head()
    assert index.advance(within=60.0) == 3
    assert index.tip == store.head()


def test_a_paced_advance_rests_after_each_diff_as_long_as_it_took(
    store: GitStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Background catch-up of commits made elsewhere (another process, a sync) leaves writers the GIL half
    the time; commits this process made are read without a diff, and without a rest."""
    for n in range(4):
        commit(store, {f"global/m{n}.md": doc(f"m{n}", f"v{n}", f"ID{n}")})
    reopened = GitStore(tmp_path / "repo", author=AUTHOR)  # knows none of them: each needs a diff
    diffing, diff = [], git_history.diff_trees

    def slow_diff(*args: Any) -> object:
        """A diff of 50 ms more."""
        started = time.monotonic()
        try:
            time.sleep(0.05)
            return diff(*args)
        finally:
            diffing.append(time.monotonic() - started)

    monkeypatch.setattr(git_history, "diff_trees", slow_diff)
    index = RevisionIndex(reopened, parser(reopened))
    started = time.monotonic()
    assert index.advance(paced=True) == 4
    assert len(diffing) >= 4 and time.monotonic() - started >= 2 * sum(diffing)
    assert index.tip == store.head()

    commit(reopened, {"global/m0.md": doc("m0", "again", "ID0")})
    diffing.clear()
    assert index.advance(paced=True) == 1 and not diffing, "a commit made here needs no diff"
