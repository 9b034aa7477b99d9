"""GitStore against real repositories in tmp_path (pygit2 plus the git CLI as an independent witness)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from memory_mcp.core import store as store_module
from memory_mcp.core.model import Scope
from memory_mcp.core.store import (
    Author,
    Change,
    GitStore,
    git_repository,
    is_memory_path,
    memory_path,
    work_tree,
)
from memory_mcp.errors import Conflict, InvalidInput, Unavailable
from tests.unit.store_helpers import commit as _commit
from tests.unit.store_helpers import doc as _doc

AUTHOR = Author("tester", "tester@example.com")
Git = Callable[..., str]


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="cli",
        GIT_AUTHOR_EMAIL="cli@example.com",
        GIT_COMMITTER_NAME="cli",
        GIT_COMMITTER_EMAIL="cli@example.com",
    )
    return env


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def store(root: Path) -> GitStore:
    return GitStore(root, author=AUTHOR)


@pytest.fixture
def git(root: Path, git_env: dict[str, str]) -> Git:
    return _git_in(root, git_env)


def _git_in(root: Path, env: dict[str, str]) -> Git:
    def run(*args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["git", "-C", str(root), *args], env=env, capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
        return result.stdout + result.stderr

    return run


# ---------------------------------------------------------------- paths


def test_memory_path() -> None:
    assert memory_path(Scope(), "a") == "global/a.md"
    assert memory_path(Scope(), "rust/async") == "global/rust/async.md"
    assert memory_path(Scope("org/team"), "x/y") == "projects/org/team/x/y.md"


def test_is_memory_path() -> None:
    assert is_memory_path("global/a.md")
    assert is_memory_path("projects/p/a.md")
    assert not is_memory_path("README.md")
    assert not is_memory_path("global/a.txt")
    assert not is_memory_path("other/a.md")
    assert not is_memory_path("globalx/a.md")


# ---------------------------------------------------------------- init and first commit


def test_init_on_first_use(root: Path, git: Git) -> None:
    assert not root.exists()
    store = GitStore(root, author=AUTHOR)
    assert (root / ".git").is_dir()
    assert store.head() is None
    assert list(store.files(None)) == []
    assert store.changes(None, None) == []
    assert git("symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert (root / ".git" / store_module.STATE_DIR).is_dir()


def test_reopen_existing_repository(root: Path) -> None:
    first = GitStore(root, author=AUTHOR)
    commit = _commit(first, {"global/a.md": b"one"})
    second = GitStore(root, author=AUTHOR)
    assert second.head() == commit
    assert list(second.files(commit)) == [("global/a.md", GitStore.blob_id(b"one"))]


def test_bare_repository_is_unavailable(tmp_path: Path, git_env: dict[str, str]) -> None:
    root = tmp_path / "bare"
    subprocess.run(["git", "init", "-q", "--bare", str(root / ".git")], env=git_env, check=True)
    with pytest.raises(Unavailable):
        GitStore(root, author=AUTHOR)


def test_commit_writes_file_and_commit(store: GitStore, root: Path, git: Git) -> None:
    data = _doc("a", "hello", "id-a")
    commit = _commit(store, {"global/a.md": data}, msg="remember a")
    assert len(commit) == 40
    assert store.head() == commit
    assert (root / "global" / "a.md").read_bytes() == data
    assert git("rev-parse", "main").strip() == commit
    assert git("log", "-1", "--format=%s|%an|%ae|%cn|%ce").strip() == (
        "remember a|tester|tester@example.com|tester|tester@example.com"
    )
    assert git("cat-file", "blob", "HEAD:global/a.md").encode() == data
    assert store.blob_at(commit, "global/a.md") == GitStore.blob_id(data)
    assert store.blob(GitStore.blob_id(data)) == data
    assert oct((root / "global" / "a.md").stat().st_mode & 0o777) == oct(0o644)


def test_commit_with_other_author(store: GitStore, git: Git) -> None:
    with store.write_lock():
        store.commit({"global/a.md": b"x"}, [], "by agent", Author("agent", "agent@example.com"))
    assert git("log", "-1", "--format=%an <%ae> / %cn <%ce>").strip() == (
        "agent <agent@example.com> / tester <tester@example.com>"
    )


def test_commit_parents_chain(store: GitStore, git: Git) -> None:
    c1 = _commit(store, {"global/a.md": b"1"})
    c2 = _commit(store, {"global/a.md": b"2"})
    c3 = _commit(store, {"global/b.md": b"3"})
    assert git("rev-list", "main").split() == [c3, c2, c1]


def test_blob_id_matches_git_hash_object(store: GitStore, root: Path, git_env: dict[str, str]) -> None:
    data = "naïve\n".encode()
    expected = (
        subprocess.run(
            ["git", "hash-object", "--stdin"], input=data, capture_output=True, env=git_env, check=True
        )
        .stdout.decode()
        .strip()
    )
    assert GitStore.blob_id(data) == expected


# ---------------------------------------------------------------- files and changes


def test_files_lists_only_memory_files(store: GitStore, root: Path, git: Git) -> None:
    _commit(store, {"global/a.md": b"a", "global/r/b.md": b"b", "projects/org/p/c.md": b"c"})
    (root / "README.md").write_text("readme")
    (root / "global" / "notes.txt").write_text("notes")
    (root / "other").mkdir()
    (root / "other" / "x.md").write_text("x")
    git("add", "README.md", "global/notes.txt", "other/x.md")
    git("commit", "-q", "-m", "human files")
    head = store.head()
    expected = ["global/a.md", "global/r/b.md", "projects/org/p/c.md"]
    assert sorted(path for path, _ in store.files(head)) == expected
    assert dict(store.files(head))["global/r/b.md"] == GitStore.blob_id(b"b")
    # human files survive our next commit (the tree is built from HEAD's tree)
    _commit(store, {"global/d.md": b"d"})
    assert set(git("ls-tree", "-r", "--name-only", "HEAD").split()) == {
        "README.md",
        "global/notes.txt",
        "other/x.md",
        "global/a.md",
        "global/r/b.md",
        "global/d.md",
        "projects/org/p/c.md",
    }


def test_changes_add_modify_delete_move(store: GitStore) -> None:
    c1 = _commit(store, {"global/a.md": b"a1", "global/b.md": b"b1", "global/c.md": b"c1"})
    c2 = _commit(store, {"global/a.md": b"a2"})
    c3 = _commit(store, deletes=["global/b.md"])
    c4 = _commit(store, {"projects/p/c.md": b"c1"}, ["global/c.md"])
    c5 = _commit(store, {"global/new.md": b"n"})
    blob = GitStore.blob_id

    assert set(store.changes(None, c1)) == {
        Change("global/a.md", None, blob(b"a1")),
        Change("global/b.md", None, blob(b"b1")),
        Change("global/c.md", None, blob(b"c1")),
    }
    assert store.changes(c1, c2) == [Change("global/a.md", blob(b"a1"), blob(b"a2"))]
    assert store.changes(c2, c3) == [Change("global/b.md", blob(b"b1"), None)]
    assert set(store.changes(c3, c4)) == {
        Change("global/c.md", blob(b"c1"), None),
        Change("projects/p/c.md", None, blob(b"c1")),
    }
    assert store.changes(c4, c5) == [Change("global/new.md", None, blob(b"n"))]
    assert store.changes(c5, c5) == []
    # over several commits, intermediate states collapse
    assert set(store.changes(c1, c5)) == {
        Change("global/a.md", blob(b"a1"), blob(b"a2")),
        Change("global/b.md", blob(b"b1"), None),
        Change("global/c.md", blob(b"c1"), None),
        Change("projects/p/c.md", None, blob(b"c1")),
        Change("global/new.md", None, blob(b"n")),
    }
    # and backwards
    assert store.changes(c2, c1) == [Change("global/a.md", blob(b"a2"), blob(b"a1"))]


def test_a_commit_made_here_reads_its_changes_back_without_a_diff(
    store: GitStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a commit's making found is what a diff of its trees finds (a fresh reader diffs), and reading it
    back needs no diff: the revision index follows every commit, and a large folder's diff holds the GIL."""
    large = {f"global/big/m{i:04d}.md": b"m %d" % i for i in range(git_repository.LARGE_FOLDER + 1)}
    steps = [
        ({"global/a.md": b"a1", "projects/p/q/b.md": b"b1", **large}, []),
        ({"global/a.md": b"a2", "global/big/m0007.md": b"edited"}, ["projects/p/q/b.md"]),
        ({"global/a.md": b"a2"}, []),  # the same bytes again: no change
        ({"projects/p/c.md": b"c"}, ["global/big/m0001.md", "global/a.md"]),
        ({"global/big/new.md": b"new"}, [f"global/big/m{i:04d}.md" for i in range(10, 20)]),
    ]
    parent, lines = None, []
    for writes, deletes in steps:
        made = _commit(store, writes, deletes)
        lines.append((parent, made))
        parent = made
    known = [store.changes(old, new) for old, new in lines]
    fresh = GitStore(root, author=AUTHOR)
    assert known == [fresh.changes(old, new) for old, new in lines]
    assert known[2] == [] and len(known[4]) == 11 and len(known[0]) == len(large) + 2

    def no_diff(*args: object) -> None:
        raise AssertionError("diffed a commit made here")

    monkeypatch.setattr(git_repository, "_compare", no_diff)
    assert [store.changes(old, new) for old, new in lines] == known
    with pytest.raises(AssertionError):
        store.changes(lines[0][1], lines[2][1])  # two commits apart: a diff, as before


def test_changes_ignore_non_memory_files(store: GitStore, root: Path, git: Git) -> None:
    c1 = _commit(store, {"global/a.md": b"a"})
    (root / "README.md").write_text("readme")
    (root / "global" / "x.txt").write_text("x")
    git("add", "README.md", "global/x.txt")
    git("commit", "-q", "-m", "human")
    assert store.changes(c1, store.head()) == []


def test_rewriting_identical_content_changes_nothing(store: GitStore) -> None:
    c1 = _commit(store, {"global/a.md": b"a"})
    c2 = _commit(store, {"global/a.md": b"a"})
    assert c1 != c2
    assert store.changes(c1, c2) == []


# ---------------------------------------------------------------- deleting and pruning


def test_deleting_last_file_prunes_empty_dirs(store: GitStore, root: Path, git: Git) -> None:
    _commit(store, {"projects/org/team/a.md": b"a", "projects/org/b.md": b"b", "global/g.md": b"g"})
    _commit(store, deletes=["projects/org/team/a.md"])
    assert git("ls-tree", "-r", "--name-only", "HEAD").split() == ["global/g.md", "projects/org/b.md"]
    assert git("ls-tree", "HEAD", "projects/org/").split()[-1] == "projects/org/b.md"  # no empty 'team' tree
    assert not (root / "projects" / "org" / "team").exists()
    assert (root / "projects" / "org" / "b.md").exists()

    _commit(store, deletes=["projects/org/b.md"])
    assert git("ls-tree", "--name-only", "HEAD").split() == ["global"]
    assert not (root / "projects").exists()

    _commit(store, deletes=["global/g.md"])
    assert git("ls-tree", "HEAD").strip() == ""
    assert root.exists() and (root / ".git").exists()
    assert list(store.files(store.head())) == []


def test_deleting_a_missing_file_is_harmless(store: GitStore) -> None:
    c1 = _commit(store, {"global/a.md": b"a"})
    c2 = _commit(store, deletes=["global/nope.md"])
    assert store.changes(c1, c2) == []


def test_folder_needed_where_a_file_is(store: GitStore, root: Path, git: Git) -> None:
    _commit(store, {"global/a.md": b"a"})
    (root / "projects").write_text("I am a file")
    git("add", "projects")
    git("commit", "-q", "-m", "file named projects")
    (root / "projects").unlink()  # only in the tree, so the commit itself must notice
    head = store.head()
    with pytest.raises(Conflict):
        _commit(store, {"projects/p/a.md": b"x"})
    assert store.head() == head
    assert not (root / "projects" / "p" / "a.md").exists()


# ---------------------------------------------------------------- path safety

UNSAFE = [
    "/etc/passwd.md",
    "/tmp/global/a.md",
    "global/../a.md",
    "global/../../outside.md",
    "../global/a.md",
    "global/./a.md",
    "global//a.md",
    "global/a.txt",
    "other/a.md",
    "README.md",
    "",
    "global",
    "global/",
]


@pytest.mark.parametrize("path", UNSAFE)
def test_unsafe_write_paths(store: GitStore, root: Path, path: str) -> None:
    with pytest.raises(InvalidInput):
        _commit(store, {path: b"x"})
    assert store.head() is None


@pytest.mark.parametrize("path", UNSAFE)
def test_unsafe_delete_paths(store: GitStore, path: str) -> None:
    c1 = _commit(store, {"global/a.md": b"a"})
    with pytest.raises(InvalidInput):
        _commit(store, deletes=[path])
    assert store.head() == c1


@pytest.mark.parametrize("path", ["global/.git/a.md", "projects/.git/hooks/x.md", "global/.GIT/a.md"])
def test_git_dir_parts_are_refused(store: GitStore, root: Path, path: str) -> None:
    with pytest.raises(InvalidInput):
        _commit(store, {path: b"x"})
    assert store.head() is None


def test_one_unsafe_path_refuses_the_whole_commit(store: GitStore, root: Path) -> None:
    with pytest.raises(InvalidInput):
        _commit(store, {"global/ok.md": b"ok", "global/../bad.md": b"bad"})
    assert not (root / "global" / "ok.md").exists()
    assert store.head() is None


def test_symlinked_directory_pointing_outside(store: GitStore, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "projects").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symbolic link"):
        _commit(store, {"projects/p/a.md": b"pwned"})
    with pytest.raises(InvalidInput):
        _commit(store, {"projects/a.md": b"pwned"})
    assert list(outside.iterdir()) == []
    assert store.head() is None


def test_symlinked_nested_directory(store: GitStore, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.md").write_bytes(b"precious")
    (root / "global").mkdir()
    (root / "global" / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput):
        _commit(store, {"global/evil/victim.md": b"pwned"})
    with pytest.raises(InvalidInput):
        _commit(store, deletes=["global/evil/victim.md"])
    assert (outside / "victim.md").read_bytes() == b"precious"
    assert [p.name for p in outside.iterdir()] == ["victim.md"]


def test_symlinked_file_is_not_written_through(store: GitStore, root: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (root / "global").mkdir()
    (root / "global" / "a.md").symlink_to(victim)
    with pytest.raises(InvalidInput):
        _commit(store, {"global/a.md": b"pwned"})
    assert victim.read_bytes() == b"precious"


# ---------------------------------------------------------------- failures and locks


def test_stale_ref_lock_is_cleared(store: GitStore, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(work_tree, "STALE_LOCK_WAIT", 0.1)
    _commit(store, {"global/a.md": b"a"})
    lock = root / ".git" / "refs" / "heads" / "main.lock"
    lock.write_text("left by a killed writer\n")
    commit = _commit(store, {"global/b.md": b"b"})
    assert store.head() == commit
    assert not lock.exists()
    assert sorted(p for p, _ in store.files(commit)) == ["global/a.md", "global/b.md"]


def test_failed_commit_leaves_work_tree_untouched(
    store: GitStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c1 = _commit(store, {"global/a.md": b"old a", "global/b.md": b"old b"})

    def boom(*args: object, **kwargs: object) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "_commit_object", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _commit(store, {"global/a.md": b"new a", "projects/p/new.md": b"new"}, ["global/b.md"])
    assert store.head() == c1
    assert (root / "global" / "a.md").read_bytes() == b"old a"
    assert (root / "global" / "b.md").read_bytes() == b"old b"
    assert not (root / "projects").exists()  # the new file and its folders are gone


def test_branch_moving_underneath_is_a_conflict(store: GitStore, root: Path, git: Git) -> None:
    c1 = _commit(store, {"global/a.md": b"old a"})
    original = store._commit_object

    def racing(*args, **kwargs):  # type: ignore[no-untyped-def]
        git("commit", "-q", "--allow-empty", "-m", "someone else")
        return original(*args, **kwargs)

    store._commit_object = racing  # type: ignore[method-assign]
    with pytest.raises(Conflict):
        _commit(store, {"global/a.md": b"new a", "global/b.md": b"new b"})
    del store._commit_object
    other = store.head()
    assert other != c1
    assert git("log", "-1", "--format=%s").strip() == "someone else"
    assert (root / "global" / "a.md").read_bytes() == b"old a"
    assert not (root / "global" / "b.md").exists()
    # a retry on top of the new tip works
    c3 = _commit(store, {"global/a.md": b"new a"})
    assert git("rev-parse", "HEAD~1").strip() == other
    assert store.blob_at(c3, "global/a.md") == GitStore.blob_id(b"new a")


def test_stray_work_tree_edits_do_not_leak(store: GitStore, root: Path) -> None:
    _commit(store, {"global/a.md": b"a", "global/b.md": b"b"})
    (root / "global" / "b.md").write_bytes(b"edited by hand")
    (root / "global" / "stray.md").write_bytes(b"stray")
    commit = _commit(store, {"global/a.md": b"a2"})
    files = dict(store.files(commit))
    assert files == {"global/a.md": GitStore.blob_id(b"a2"), "global/b.md": GitStore.blob_id(b"b")}


def test_fsck_and_status_clean_after_many_commits(store: GitStore, git: Git) -> None:
    _commit(store, {"global/a.md": b"a", "projects/o/p/b.md": b"b"})
    _commit(store, {"global/a.md": b"a2"})
    _commit(store, {"projects/o/q/c.md": b"c"}, ["projects/o/p/b.md"])
    _commit(store, deletes=["global/a.md"])
    for i in range(5):
        _commit(store, {f"global/n{i}.md": f"n{i}".encode()})
    _commit(store, {"global/n0.md": b"changed"}, ["global/n1.md"])
    output = git("fsck", "--full", "--strict", "--no-dangling")
    assert "error" not in output.lower() and "missing" not in output and "broken" not in output
    _index_caught_up(store)
    assert git("status", "--porcelain").strip() == ""
    assert len(git("rev-list", "HEAD").split()) == 10


def test_a_large_folder_is_written_uncompressed_and_every_reader_opens_it(
    store: GitStore, git: Git, root: Path
) -> None:
    """A large folder's tree skips deflate (libgit2 cannot write that): git, libgit2 and fsck still read it."""
    count = git_repository.LARGE_FOLDER + 1
    _commit(store, {f"global/m{i:04d}.md": f"memory {i}".encode() for i in range(count)})
    commit = _commit(store, {"global/m0000.md": b"changed"}, ["global/m0001.md"])
    folder = git("rev-parse", f"{commit}:global").strip()
    loose = root / ".git" / "objects" / folder[:2] / folder[2:]
    raw = zlib.decompress(loose.read_bytes())
    assert raw.startswith(b"tree %d\0" % (len(raw) - raw.index(b"\0") - 1))
    assert loose.stat().st_size > len(raw)  # zlib's stored blocks, no compression
    assert loose.stat().st_mode & 0o777 == 0o444
    assert git("cat-file", "-p", f"{commit}:global/m0000.md") == "changed"
    assert len(git("ls-tree", f"{commit}:global").splitlines()) == count - 1
    assert dict(GitStore(root, author=AUTHOR).files(commit))["global/m0002.md"] == (
        GitStore.blob_id(b"memory 2")
    )
    output = git("fsck", "--full", "--strict", "--no-dangling")
    assert "error" not in output.lower() and "missing" not in output and "broken" not in output


def test_write_lock_excludes_another_process(store: GitStore, root: Path) -> None:
    lock_file = root / ".git" / store_module.STATE_DIR / "write.lock"
    probe = textwrap.dedent(
        """
        import fcntl, os, sys
        fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("busy")
        else:
            print("acquired")
        """
    )

    def try_lock() -> str:
        return subprocess.run(
            [sys.executable, "-c", probe, str(lock_file)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()

    with store.write_lock():
        assert lock_file.exists()
        assert try_lock() == "busy"
    assert try_lock() == "acquired"
    with store.write_lock():
        assert try_lock() == "busy"


def test_write_lock_blocks_second_store_in_other_process(store: GitStore, root: Path) -> None:
    """A second process using its own GitStore waits until we release the lock."""
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from memory_mcp.core.store import Author, GitStore
        store = GitStore(Path(sys.argv[1]), author=Author("other", "o@example.com"))
        print("ready", flush=True)
        with store.write_lock():
            print("locked", flush=True)
        """
    )
    with store.write_lock():
        child = subprocess.Popen([sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            with pytest.raises(subprocess.TimeoutExpired):
                child.wait(timeout=0.5)
        except BaseException:
            child.kill()
            raise
    out, _ = child.communicate(timeout=30)
    assert out.strip() == "locked"
    assert child.returncode == 0


def test_repository_objects_are_real_git(store: GitStore, root: Path) -> None:
    commit = _commit(store, {"global/a.md": b"a"})
    repo = pygit2.Repository(str(root))
    assert str(repo.head.target) == commit
    assert repo.head.shorthand == "main"


def test_crash_between_branch_and_work_tree_is_finished_on_open(
    store: GitStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 after the branch moved but before the files were written: the next open writes them."""
    _commit(store, {"global/a.md": b"old a"})

    class Killed(BaseException):
        pass

    def die(old: str | None, new: str, changes: object = None) -> None:
        raise Killed

    monkeypatch.setattr(store, "_follow", die)  # the process "dies" here
    with pytest.raises(Killed):
        _commit(store, {"global/a.md": b"new a", "global/b.md": b"b"})
    committed = store.head()
    assert (root / "global" / "a.md").read_bytes() == b"old a" and not (root / "global" / "b.md").exists()
    reopened = GitStore(root, author=store.author)
    assert reopened.head() == committed
    assert (root / "global" / "a.md").read_bytes() == b"new a"
    assert (root / "global" / "b.md").read_bytes() == b"b"
    assert reopened.uncommitted_files() == []


def test_uncommitted_files_are_what_status_lists_against_the_tip(store: GitStore, root: Path, git: Git) -> None:
    """Edited, added in a new folder, staged with `git add` (index ≠ tip, work tree = index), deleted, and a
    file changed then changed back: each as `git status` sees it, and only memory files."""
    _commit(store, {"global/a.md": b"a", "global/b.md": b"b", "global/c.md": b"c", "global/d.md": b"d"})
    (root / "global" / "a.md").write_bytes(b"a edited")
    (root / "projects" / "new" / "deep").mkdir(parents=True)
    (root / "projects" / "new" / "deep" / "e.md").write_bytes(b"e")
    (root / "global" / "b.md").write_bytes(b"b staged")
    (root / "global" / "f.md").write_bytes(b"f staged")
    (root / "notes.md").write_bytes(b"not a memory")
    git("add", "global/b.md", "global/f.md", "notes.md")
    (root / "global" / "c.md").unlink()
    (root / "global" / "d.md").write_bytes(b"d")  # rewritten with the same bytes
    status = set(git("status", "--porcelain", "--untracked-files=all").split()[1::2])
    assert status >= {"global/a.md", "global/b.md", "global/f.md", "global/c.md", "projects/new/deep/e.md"}
    assert GitStore(root, author=store.author).uncommitted_files() == [
        ("global/a.md", b"a edited"),
        ("global/b.md", b"b staged"),
        ("global/f.md", b"f staged"),
        ("projects/new/deep/e.md", b"e"),
    ]


# ---------------------------------------------------------------- git index


def _index_stat(git: Git, field: str) -> dict[str, int]:
    """Path → one stat field (`size`, `ino`, ...) the index records for it (0 without stat data)."""
    values, path = {}, None
    for line in git("ls-files", "--debug").splitlines():
        if not line.startswith(" "):
            path = line
        elif f"{field}:" in (words := line.split()):
            values[path] = int(words[words.index(f"{field}:") + 1])
    return values


def test_commits_record_file_sizes_in_the_index(store: GitStore, git: Git) -> None:
    """Without them every status, ours at start-up or a human's, hashes every file."""
    first, second = (
        _doc("a", "hello", "01J0000000000000000000000A"),
        _doc("b", "hi", "01J0000000000000000000000B"),
    )
    _commit(store, {"global/a.md": first})
    _commit(store, {"global/b.md": second})
    _index_caught_up(store)
    assert _index_stat(git, "size") == {"global/a.md": len(first), "global/b.md": len(second)}
    assert git("status", "--porcelain") == ""


def _index_caught_up(store: GitStore) -> None:
    """Until the index no longer lags the branch: commits close together share one index write, due at most
    INDEX_INTERVAL after the first of them."""
    deadline = time.monotonic() + 10 * work_tree.INDEX_INTERVAL
    while (store.private_dir / work_tree.INDEX_AT).exists():
        assert time.monotonic() < deadline, "the index never caught up with the branch"
        time.sleep(0.05)


def test_a_large_index_catches_up_on_its_own(
    store: GitStore, git: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits close together share one write of a large index; it follows within the interval."""
    monkeypatch.setattr(work_tree, "LAZY_INDEX_BYTES", 0)
    for i in range(4):
        _commit(store, {f"global/n{i}.md": f"n{i}".encode()}, ["global/n0.md"] if i == 3 else [])
    _index_caught_up(store)
    assert git("status", "--porcelain") == ""
    assert set(_index_stat(git, "size")) == {"global/n1.md", "global/n2.md", "global/n3.md"}


def test_an_index_left_behind_catches_up_at_the_next_start(
    root: Path, git: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server killed (or stopped) while its index lagged: the next one to open the repository writes it."""
    monkeypatch.setattr(work_tree, "LAZY_INDEX_BYTES", 0)  # as large as 2,700 memories make it
    store = GitStore(root, author=AUTHOR)
    _commit(store, {"global/a.md": b"a"})
    store._index_due = time.monotonic() + 3600  # the next moves only mark the index as lagging
    _commit(store, {"global/b.md": b"b"})
    _commit(store, {"global/c.md": b"c"}, ["global/a.md"])
    store._index_timer.cancel()
    assert (store.private_dir / work_tree.INDEX_AT).exists()
    assert git("status", "--porcelain") != "", "the lagging index shows the newer files as changes"
    reopened = GitStore(root, author=AUTHOR)
    assert not (reopened.private_dir / work_tree.INDEX_AT).exists()
    assert git("status", "--porcelain") == ""
    assert set(_index_stat(git, "size")) == {"global/b.md", "global/c.md"}
    assert all(_index_stat(git, "size").values()), "caught-up entries carry the files' sizes"


def test_an_index_lock_left_by_a_killed_writer_is_cleared_at_the_next_start(
    root: Path, git: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill -9 while libgit2 writes the index leaves `index.lock`; without clearing it, no later index write
    succeeds and `git status` drifts from the branch for good."""
    monkeypatch.setattr(work_tree, "STALE_LOCK_WAIT", 0.1)
    store = GitStore(root, author=AUTHOR)
    _commit(store, {"global/a.md": b"a"})
    lock = root / ".git" / "index.lock"
    lock.write_bytes(b"DIRC half written")
    reopened = GitStore(root, author=AUTHOR)
    assert not lock.exists()
    _commit(reopened, {"global/b.md": b"b"}, ["global/a.md"])
    assert git("status", "--porcelain") == ""


def test_an_index_write_refused_by_a_live_lock_is_caught_up_later(
    root: Path, git: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person's `git add` holds `index.lock` as we commit: the branch moves, the index is marked as lagging,
    and the next server to open the repository (or the next commit) writes it."""
    store = GitStore(root, author=AUTHOR)
    _commit(store, {"global/a.md": b"a"})
    lock = root / ".git" / "index.lock"
    lock.write_bytes(b"held by git add")
    _commit(store, {"global/b.md": b"b"}, ["global/a.md"])
    assert (store.private_dir / work_tree.INDEX_AT).exists(), "the failed write leaves the index marked"
    if store._index_timer is not None:
        store._index_timer.cancel()
    lock.unlink()
    GitStore(root, author=AUTHOR)
    assert git("status", "--porcelain") == ""
    assert set(_index_stat(git, "size")) == {"global/b.md"}


def test_one_file_committed_into_a_big_folder(store: GitStore, root: Path, git: Git) -> None:
    """The folder's tree gains exactly that entry; the work tree and the reported changes follow."""
    base = {f"projects/o/p/n{i:05d}.md": f"note {i}".encode() for i in range(3000)}
    before = _commit(store, {**base, "global/keep.md": b"k"})
    listing = git("ls-tree", "-r", before).splitlines()
    after = _commit(store, {"projects/o/p/n01500x.md": b"new"}, ["projects/o/p/n00007.md"])
    new_listing = git("ls-tree", "-r", after).splitlines()
    added = set(new_listing) - set(listing)
    removed = set(listing) - set(new_listing)
    assert [line.split()[-1] for line in added] == ["projects/o/p/n01500x.md"]
    assert [line.split()[-1] for line in removed] == ["projects/o/p/n00007.md"]
    assert git("rev-parse", f"{after}:global") == git("rev-parse", f"{before}:global")
    assert (root / "projects/o/p/n01500x.md").read_bytes() == b"new"
    assert not (root / "projects/o/p/n00007.md").exists()
    assert sorted(store.changes(before, after), key=lambda c: c.path) == [
        Change("projects/o/p/n00007.md", GitStore.blob_id(b"note 7"), None),
        Change("projects/o/p/n01500x.md", None, GitStore.blob_id(b"new")),
    ]
    assert "error" not in git("fsck", "--full", "--strict", "--no-dangling").lower()


def test_a_refused_commit_leaves_the_kept_big_folder_as_it_was(store: GitStore, git: Git) -> None:
    """The commit edits the big folder it keeps parsed, then finds a folder where a file is needed: the next
    commit starts from the folder as committed, not from the refused edit."""
    base = {f"global/n{i:05d}.md": f"note {i}".encode() for i in range(1500)}
    _commit(store, {**base, "global/dir.md/a.md": b"a"})
    head = store.head()
    with pytest.raises(Conflict, match="folder in the repository where a file is needed"):
        _commit(store, {"global/n00001.md": b"refused", "global/dir.md": b"file"})
    assert store.head() == head
    after = _commit(store, {"global/n00002.md": b"kept"})
    assert store.blob_at(after, "global/n00001.md") == GitStore.blob_id(b"note 1")
    assert store.blob_at(after, "global/n00002.md") == GitStore.blob_id(b"kept")
    assert len(git("ls-tree", f"{after}:global").splitlines()) == 1501
    assert "error" not in git("fsck", "--full", "--strict", "--no-dangling").lower()


def test_two_stores_take_turns_committing_into_one_big_folder(root: Path, git: Git) -> None:
    """Each keeps the folder as it last wrote it; the other's commits move the branch past that, so each
    commit must start from the branch's folder, and every file of both survives."""
    first = GitStore(root, author=AUTHOR)
    _commit(first, {f"global/n{i:05d}.md": f"note {i}".encode() for i in range(1200)})
    second = GitStore(root, author=AUTHOR)
    for turn in range(6):
        _commit((first, second)[turn % 2], {f"global/turn{turn}.md": f"turn {turn}".encode()})
    names = {line.split()[-1] for line in git("ls-tree", "HEAD:global").splitlines()}
    assert names == {f"n{i:05d}.md" for i in range(1200)} | {f"turn{t}.md" for t in range(6)}
    assert git("status", "--porcelain") == ""
    assert "error" not in git("fsck", "--full", "--strict", "--no-dangling").lower()


def test_an_index_without_stat_data_is_refreshed_once(store: GitStore, root: Path, git: Git) -> None:
    first, second = (
        _doc("a", "hello", "01J0000000000000000000000A"),
        _doc("b", "hi", "01J0000000000000000000000B"),
    )
    _commit(store, {"global/a.md": first, "global/b.md": second})
    index = pygit2.Repository(str(root)).index  # as earlier versions wrote it: ids without sizes or times
    for path, data in (("global/a.md", first), ("global/b.md", second)):
        index.add(pygit2.IndexEntry(path, pygit2.Oid(hex=GitStore.blob_id(data)), pygit2.enums.FileMode.BLOB))
    index.write()
    (root / "global/b.md").write_bytes(second + b"\nedited by hand\n")
    (root / ".git" / store_module.STATE_DIR / work_tree.INDEX_REFRESHED).unlink()
    assert _index_stat(git, "size") == {"global/a.md": 0, "global/b.md": 0}
    GitStore(root, author=AUTHOR)
    assert _index_stat(git, "size") == {"global/a.md": len(first), "global/b.md": 0}, (
        "the hand edit stays unstaged"
    )
    assert git("diff", "--cached", "--name-only") == ""
    assert git("status", "--porcelain").split() == ["M", "global/b.md"]


def test_a_copied_repository_has_its_index_refreshed_once(
    store: GitStore, root: Path, tmp_path: Path, git: Git, git_env: dict[str, str]
) -> None:
    """A copy (or a restored backup) has new inodes and times: until the index records them, every status
    hashes every file, and libgit2 never writes back what it learns."""
    docs = {
        f"global/n{i}.md": _doc(f"n{i}", f"note {i}", f"01J00000000000000000000{i:03d}") for i in range(3)
    }
    _commit(store, docs)
    (root / "global/n0.md").write_bytes(docs["global/n0.md"] + b"\nedited by hand\n")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    copied_git = _git_in(copy, git_env)
    stale = _index_stat(copied_git, "ino")
    assert stale == _index_stat(git, "ino"), "the copy's index still describes the original files"
    GitStore(copy, author=AUTHOR)
    fresh = _index_stat(copied_git, "ino")
    for path in ("global/n1.md", "global/n2.md"):
        assert fresh[path] == (copy / path).stat().st_ino != stale[path]
    assert fresh["global/n0.md"] == stale["global/n0.md"], "the hand edit stays unstaged"
    assert copied_git("status", "--porcelain").split() == ["M", "global/n0.md"]
    assert _index_stat(git, "ino") == stale, "the original is left as it was"
