"""Commits made elsewhere are read by libgit2's diff called with the GIL released: the same changes as the
store's own comparison, whatever the trees hold, and other threads run while it reads."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import FileMode

from memory_mcp.core.store import Author, GitStore, released_diff

AUTHOR = Author("tester", "tester@example.com")
Tree = dict[str, tuple[bytes, int]]
"""A commit's whole tree: path → (content, file mode); a link's content is its target."""


def _commit_tree(repo: pygit2.Repository, files: Tree, message: str) -> str:
    """A commit of exactly these files on `main`, made as another process would (the store knows nothing)."""
    index, blobs = pygit2.Index(), {}
    for path, (content, mode) in files.items():
        if content not in blobs:
            blobs[content] = repo.create_blob(content)
        oid = pygit2.Oid(hex="1" * 40) if mode == FileMode.COMMIT else blobs[content]
        index.add(pygit2.IndexEntry(path, oid, mode))
    tree = index.write_tree(repo)
    parents = [] if repo.head_is_unborn else [repo.head.target]
    signature = pygit2.Signature("elsewhere", "elsewhere@example.com")
    return str(repo.create_commit("refs/heads/main", signature, signature, message, tree, parents))


REGULAR, EXECUTABLE, LINK, SUBMODULE = FileMode.BLOB, FileMode.BLOB_EXECUTABLE, FileMode.LINK, FileMode.COMMIT
HISTORY: list[Tree] = [
    {
        "global/a.md": (b"a", REGULAR),
        "global/b.md": (b"b", REGULAR),
        "projects/p/c.md": (b"c", REGULAR),
        "README.md": (b"readme", REGULAR),
    },
    # edited, added in a new folder, a non-memory file edited, an executable memory file
    {
        "global/a.md": (b"a2", REGULAR),
        "global/b.md": (b"b", REGULAR),
        "projects/p/c.md": (b"c", REGULAR),
        "projects/q/deep/d.md": (b"d", REGULAR),
        "README.md": (b"readme 2", REGULAR),
        "global/x.md": (b"x", EXECUTABLE),
    },
    # a file becomes a folder, a folder goes, a link appears, a mode changes alone
    {
        "global/a.md": (b"a2", REGULAR),
        "global/b.md/inner.md": (b"inner", REGULAR),
        "projects/p/c.md": (b"c", REGULAR),
        "global/link.md": (b"global/a.md", LINK),
        "global/x.md": (b"x", REGULAR),
    },
    # the link becomes a file, the whole projects folder becomes a file, a submodule appears
    {
        "global/a.md": (b"a2", REGULAR),
        "global/b.md/inner.md": (b"inner", REGULAR),
        "global/link.md": (b"now a file", REGULAR),
        "projects": (b"a file named projects", REGULAR),
        "global/sub.md": (b"", SUBMODULE),
        "global/x.md": (b"x", REGULAR),
    },
    # projects is a folder again, global goes entirely
    {"projects/p/c.md": (b"c again", REGULAR), "projects/r.md": (b"r", REGULAR)},
]


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[tuple[GitStore, list[str]]]:
    root = tmp_path / "repo"
    GitStore(root, author=AUTHOR)
    repo = pygit2.Repository(str(root))
    commits = [_commit_tree(repo, files, f"step {n}") for n, files in enumerate(HISTORY)]
    yield GitStore(root, author=AUTHOR), commits


def _by_comparison(store: GitStore, commits: list[str]) -> list[tuple[str, str | None, list]]:
    parents = [None, *commits[:-1]]
    return [(commit, parent, store.changes(parent, commit)) for commit, parent in zip(commits, parents)][::-1]


def test_a_commit_made_elsewhere_reads_as_the_stores_comparison(
    elsewhere: tuple[GitStore, list[str]],
) -> None:
    store, commits = elsewhere
    assert released_diff.releases_gil(), "the libgit2 pygit2 loaded must be found on Linux"
    read = list(store.first_parent_changes(commits[-1], None))
    assert read == _by_comparison(store, commits)
    paths = {change.path for _, _, changes in read for change in changes}
    assert {"global/b.md/inner.md", "projects/q/deep/d.md", "global/link.md", "global/x.md"} <= paths
    assert not paths & {"README.md", "projects", "global/sub.md"}, "only regular memory files count"


def test_without_the_library_pygit2s_own_diff_gives_the_same(
    elsewhere: tuple[GitStore, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, commits = elsewhere
    monkeypatch.setattr(released_diff, "_diff_function", lambda: None)
    assert not released_diff.releases_gil()
    assert list(store.first_parent_changes(commits[-1], None)) == _by_comparison(store, commits)


def _longest_wait(call: Callable[[], object]) -> float:
    """The longest a spinning thread went without the GIL while `call` ran."""
    done, longest = threading.Event(), [0.0]

    def spin() -> None:
        last = time.perf_counter()
        while not done.is_set():
            now = time.perf_counter()
            longest[0] = max(longest[0], now - last)
            last = now

    spinner = threading.Thread(target=spin)
    spinner.start()
    time.sleep(0.01)
    try:
        call()
    finally:
        done.set()
        spinner.join()
    return longest[0]


def test_the_diff_of_a_large_folder_leaves_other_threads_running(tmp_path: Path) -> None:
    """A 60,000-entry folder, one entry changed: pygit2's own diff holds the GIL while it reads both trees;
    the released one does not. Each reads from a fresh repository object, so from the object files."""
    root = tmp_path / "repo"
    GitStore(root, author=AUTHOR)
    repo = pygit2.Repository(str(root))
    files = {f"global/big/m{n:05}.md": (b"same", REGULAR) for n in range(60_000)}
    old = _commit_tree(repo, files, "old")
    new = _commit_tree(repo, {**files, "global/big/m00001.md": (b"changed", REGULAR)}, "new")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # Python code between the calls then holds the GIL for at most 0.5 ms

    def diff(with_pygit2: bool) -> list[str]:
        fresh = pygit2.Repository(str(root))
        trees = [fresh[commit].peel(pygit2.Tree) for commit in (old, new)]
        found = trees[0].diff_to_tree(trees[1]) if with_pygit2 else released_diff.diff_trees(fresh, *trees)
        return [delta.new_file.path for delta in found.deltas]

    try:
        assert diff(True) == diff(False) == ["global/big/m00001.md"]
        held, released = _longest_wait(lambda: diff(True)), _longest_wait(lambda: diff(False))
    finally:
        sys.setswitchinterval(interval)
    assert released < held / 2, f"the spinner waited {released * 1000:.1f} ms, against {held * 1000:.1f} ms"
