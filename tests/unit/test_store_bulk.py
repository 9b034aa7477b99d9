"""A bulk commit (an import) into a real repository: the work tree and the git index follow the branch, with
the stat data `git status` needs to skip hashing, also when the writer is killed with SIGKILL half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memory_mcp.core.store import GitStore
from tests.unit.store_helpers import commit, doc
from tests.unit.test_store import AUTHOR, Git, _git_in, _index_stat, git_env  # noqa: F401 - fixture

FILES = 300
"""Well above BULK_FILES, so the commit takes the bulk path (one flush, one index write)."""


def _batch(start: int = 0) -> dict[str, bytes]:
    return {
        f"global/n{i:05d}.md": doc(f"n{i:05d}", f"note {i}", f"01J{i:023d}") for i in range(start, start + FILES)
    }


def _assert_in_step(root: Path, git: Git, paths: set[str]) -> None:
    """The index holds exactly `paths` with their files' stat data, and git sees nothing to commit."""
    # diff-files trusts the index's stat data and does not refresh it: a file whose recorded data is wrong
    # (or missing) is listed here even when its bytes are right. First: status writes back what it learns.
    assert git("diff-files", "--name-only") == ""
    assert git("status", "--porcelain") == ""
    sizes, inodes = _index_stat(git, "size"), _index_stat(git, "ino")
    assert set(sizes) == paths
    for path in paths:
        status = os.lstat(root / path)
        assert (sizes[path], inodes[path]) == (status.st_size, status.st_ino & 0xFFFFFFFF), path


def test_a_bulk_commit_leaves_work_tree_and_index_in_step(tmp_path: Path, git_env: dict[str, str]) -> None:
    root = tmp_path / "repo"
    store = GitStore(root, author=AUTHOR)
    first, second = _batch(), _batch(FILES)
    commit(store, first)
    commit(store, {**second, "global/n00000.md": b"changed"}, ["global/n00001.md"])
    paths = (set(first) | set(second)) - {"global/n00001.md"}
    _assert_in_step(root, _git_in(root, git_env), paths)
    assert (root / "global/n00000.md").read_bytes() == b"changed"


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import pygit2
    from memory_mcp.core.store import Author, GitStore, work_tree
    from tests.unit.test_store_bulk import _batch

    root, point = Path(sys.argv[1]), sys.argv[2]
    store = GitStore(root, author=Author("t", "t@example.com"))
    with store.write_lock():
        store.commit(_batch(), [], "first")
    written = []
    write_file = work_tree.WorkTree._write_file

    def write_then_die(self, path, data, **kwargs):
        write_file(self, path, data, **kwargs)
        written.append(path)
        if len(written) == 100:  # a third of the second import's files are in the work tree
            os.kill(os.getpid(), signal.SIGKILL)

    def die_writing_index(self):
        (root / ".git" / "index.lock").write_bytes(b"DIRC half written")  # what libgit2 leaves
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "files":
        work_tree.WorkTree._write_file = write_then_die
    else:
        pygit2.Index.write = die_writing_index
    with store.write_lock():
        store.commit(_batch(%d), [], "second")
    """
    % FILES
)


@pytest.mark.parametrize("point", ["files", "index"])
def test_a_bulk_commit_killed_half_way_is_finished_by_the_next_open(
    tmp_path: Path, git_env: dict[str, str], point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL while the work-tree files are written, or while the index is: the branch has moved; the next
    store opened on the repository writes the rest and the index, and `git status` is clean."""
    root = tmp_path / "repo"
    repo_root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), point], cwd=repo_root, capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    git = _git_in(root, git_env)
    assert git("log", "--format=%s") == "second\nfirst\n", "the branch moved before the kill"
    assert git("status", "--porcelain") != "", "the kill left the work tree or the index behind the branch"
    monkeypatch.setattr("memory_mcp.core.store.work_tree.STALE_LOCK_WAIT", 0.1)
    reopened = GitStore(root, author=AUTHOR)
    assert not (root / ".git" / "index.lock").exists()
    assert reopened.uncommitted_files() == []
    _assert_in_step(root, git, set(_batch()) | set(_batch(FILES)))
    assert "error" not in git("fsck", "--full", "--strict", "--no-dangling").lower()
