"""Cloning, pulling, pushing, push races, an unreachable remote, a rewritten remote, crash recovery."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from memory_mcp.core import store as store_module
from memory_mcp.core.backoff import Backoff
from memory_mcp.core.store import Author, GitStore, work_tree
from memory_mcp.core.sync import ROOT_MESSAGE, Syncer, clone_or_open
from memory_mcp.errors import Conflict, InvalidInput, Unavailable
from tests.sync.conftest import Replica, assert_healthy, git

Make = Callable[..., Replica]
AUTHOR = Author("tester", "tester@example.com")


def remote_head(remote: Path) -> str:
    return git(remote, "rev-parse", "refs/heads/main").strip()


def journal(rep: Replica) -> Path:
    return rep.root / ".git" / store_module.STATE_DIR / work_tree.MOVE_JOURNAL


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- clone and open


def test_clone_into_an_empty_dir(replica: Make, remote: Path, tmp_path: Path) -> None:
    seed = replica("seed")
    seed.write("one", "first", 1)
    seed.write("two", "second", 2)
    seed.syncer.sync()

    (tmp_path / "fresh").mkdir()  # an empty mount point counts as empty
    fresh = replica("fresh")
    assert fresh.store.head() == remote_head(remote)
    assert fresh.names() == {"one", "two"} and fresh.content("two") == "second"
    assert git(fresh.root, "config", "remote.origin.url").strip() == str(remote)
    assert git(fresh.root, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert_healthy(fresh.root)


def test_replicas_of_an_empty_remote_share_their_first_commit(replica: Make, remote: Path) -> None:
    a, b = replica("a"), replica("b")
    assert a.store.head() == b.store.head() is not None
    assert git(a.root, "log", "--format=%B", "-1") == ROOT_MESSAGE + "\n"
    assert git(remote, "rev-parse", "--verify", "-q", "refs/heads/main", check=False) == ""
    report = a.syncer.sync()
    assert report.pushed == 1 and remote_head(remote) == a.store.head()


def test_clone_needs_the_remote_and_is_retried_later(replica: Make, remote: Path, tmp_path: Path) -> None:
    seed = replica("seed")
    seed.write("one", "first", 1)
    seed.syncer.sync()
    root = tmp_path / "data"
    with pytest.raises(Unavailable, match="cannot clone"):
        clone_or_open(root, remote_url=str(tmp_path / "missing.git"), branch="main", author=AUTHOR)
    assert GitStore(root, author=AUTHOR).head() is None, "no history of its own that could never merge"
    store, _ = clone_or_open(root, remote_url=str(remote), branch="main", author=AUTHOR)
    assert store.head() == remote_head(remote)


def test_open_existing_repository_points_origin_at_the_url(remote: Path, tmp_path: Path) -> None:
    local = GitStore(tmp_path / "local", author=AUTHOR)
    with local.write_lock():
        first = local.commit({"global/mine.md": b"local only"}, [], "mine")
    store, syncer = clone_or_open(tmp_path / "local", remote_url=str(remote), branch="main", author=AUTHOR)
    assert store.head() == first, "an existing history is opened, not replaced"
    assert syncer.sync().pushed == 1 and remote_head(remote) == first

    other = tmp_path / "other.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(remote), str(other)], check=True)
    clone_or_open(tmp_path / "local", remote_url=str(other), branch="main", author=AUTHOR)
    assert git(tmp_path / "local", "config", "remote.origin.url").strip() == str(other)


def test_a_url_with_a_password_is_refused(tmp_path: Path) -> None:
    store = GitStore(tmp_path / "r", author=AUTHOR)
    with pytest.raises(InvalidInput) as caught:
        Syncer(store, "https://x-access-token:s3cret-t0ken@example.com/o/r.git")
    assert "s3cret-t0ken" not in str(caught.value)
    assert "s3cret-t0ken" not in (tmp_path / "r" / ".git" / "config").read_text()


# ---------------------------------------------------------------- pull and push


def test_push_then_fast_forward_pull(replica: Make, remote: Path) -> None:
    a, b = replica("a"), replica("b")
    a.write("n1", "one", 1)
    a.write("n2", "two", 2)
    assert a.syncer.sync(pull=False).pushed == 3, "the shared first commit and two memories"
    report = b.syncer.sync()
    assert (report.pulled, report.pushed, report.ahead, report.behind) == (2, 0, 0, 0)
    assert report.local_head == report.remote_head == remote_head(remote) == a.store.head()
    assert len(git(b.root, "log", "-1", "--format=%P").split()) == 1, "a fast-forward, no merge commit"
    assert b.content("n2") == "two"
    assert_healthy(b.root)


def test_pull_only_and_push_only(replica: Make) -> None:
    a, b = replica("a"), replica("b")
    a.write("n", "x", 1)
    report = a.syncer.sync(push=False)
    assert (report.pushed, report.ahead) == (0, 2)
    assert a.syncer.sync(pull=False).pushed == 2
    b.write("m", "y", 1)
    report = b.syncer.sync(pull=False)
    assert report.errors and report.pushed == 0, "the remote moved: without a pull the push cannot land"
    assert b.syncer.sync().pushed == 2


def test_a_push_race_is_fetched_merged_and_retried(
    replica: Make, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = replica("a"), replica("b")
    a.syncer.sync()
    b.syncer.sync()
    integrate = Syncer._integrate
    raced: list[str] = []

    def integrate_then_lose_the_race(self: Syncer, *args: object, **kwargs: object) -> None:
        integrate(self, *args, **kwargs)
        if self is a.syncer and not raced:  # b pushes between a's merge and a's push
            b.write("from-b", "b won the race", 1)
            raced.append(b.syncer.sync().local_head or "")

    monkeypatch.setattr(Syncer, "_integrate", integrate_then_lose_the_race)
    a.write("from-a", "a lost the race", 2)
    report = a.syncer.sync()
    assert report.ok and report.pushed == 2 and report.pulled == 1
    assert git(remote, "merge-base", "--is-ancestor", raced[0], "main", check=False) == ""
    assert a.names() == {"from-a", "from-b"}
    assert_healthy(remote)


def test_never_force_pushes_over_remote_commits(replica: Make, remote: Path) -> None:
    a, b = replica("a"), replica("b")
    b.write("theirs", "remote only", 1)
    b.syncer.sync()
    theirs = remote_head(remote)
    a.write("mine", "local", 2)
    a.syncer.sync()
    assert git(remote, "merge-base", "--is-ancestor", theirs, "main", check=False) == ""


def test_syncs_and_another_process_writing_never_lose_a_write(replica: Make, remote: Path) -> None:
    """Another process commits to the same repository while it syncs: the write lock orders them."""
    a, b = replica("a"), replica("b")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(a.root)])
    steps = 0
    while writer.poll() is None or steps < 8:  # sync for as long as the other process writes
        b.write(f"remote-{steps}", "from b", steps)
        b.syncer.sync()
        assert a.syncer.sync().ok
        steps += 1
    assert writer.returncode == 0
    assert a.syncer.sync().ok and b.syncer.sync().ok
    expected = {f"local-{i}" for i in range(WRITES)} | {f"remote-{i}" for i in range(steps)}
    assert a.names() == b.names() == expected
    for name in expected:
        a.content(name)  # the work tree matches the branch for every memory
    assert_healthy(a.root)


WRITES = 40
WRITER = f"""
import sys
from pathlib import Path
from memory_mcp.core import markdown
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.store import Author, GitStore
store = GitStore(Path(sys.argv[1]), author=Author("writer", "w@example.com"))
for i in range({WRITES}):
    data = markdown.render(Memory(name=f"local-{{i}}", scope=Scope(), content="from another process"))
    with store.write_lock():
        store.commit({{f"global/local-{{i}}.md": data}}, [], "w")
"""


# ---------------------------------------------------------------- failures


@pytest.mark.parametrize("url", ["missing", "http"])
def test_an_unreachable_remote_is_reported_and_local_commits_stay(
    url: str, replica: Make, remote: Path, tmp_path: Path
) -> None:
    a = replica("a")
    a.write("kept", "written while offline", 1)
    head = a.store.head()
    broken = str(tmp_path / "nowhere.git") if url == "missing" else f"http://127.0.0.1:{closed_port()}/r.git"
    offline = Syncer(a.store, broken)
    report = offline.sync()
    assert report.errors and report.errors[0].startswith("fetch failed")
    assert (report.local_head, report.ahead) == (head, 2)
    assert a.store.head() == head and a.content("kept") == "written while offline"
    a.write("more", "still writable", 2)

    report = Syncer(a.store, str(remote)).sync()  # the remote is back
    assert report.ok and report.pushed == 3 and remote_head(remote) == a.store.head()
    assert_healthy(a.root)


def test_unrelated_histories_are_refused_unless_allowed(replica: Make, remote: Path, tmp_path: Path) -> None:
    a = replica("a")
    a.write("mine", "local memory", 1)
    a.syncer.sync()
    rewritten = GitStore(tmp_path / "rewrite", author=AUTHOR)  # a history with no commit in common
    with rewritten.write_lock():
        rewritten.commit({"global/theirs.md": b"rewritten remote"}, [], "squashed")
    git(rewritten.root, "push", "-q", "--force", str(remote), "main:main")
    a.write("later", "after the rewrite", 2)
    head = a.store.head()

    report = a.syncer.sync()
    assert any("share no history" in error for error in report.errors)
    assert a.store.head() == head and report.pushed == 0
    assert remote_head(remote) == rewritten.head(), "nothing pushed over the rewritten remote"

    report = a.syncer.sync(allow_unrelated=True)
    assert report.ok and report.pushed > 0
    assert a.names() == {"mine", "later", "theirs"}
    assert_healthy(remote)


def test_a_file_against_a_folder_is_reported_not_merged(replica: Make) -> None:
    a, b = replica("a"), replica("b")
    a.commit({"global/x/y.md": b"a folder x"}, [], "folder")
    a.syncer.sync()
    (b.root / "global").mkdir(exist_ok=True)  # the store refuses such a path: a human commits it
    (b.root / "global" / "x").write_text("a file named x")
    git(b.root, "add", "global/x")
    git(b.root, "commit", "-q", "-m", "file x")
    head = b.store.head()
    report = b.syncer.sync()
    assert any("a file on one side and a folder on the other" in error for error in report.errors)
    assert b.store.head() == head


# ---------------------------------------------------------------- crash recovery


def test_a_sync_killed_between_branch_and_work_tree_is_finished_on_reopen(
    replica: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = replica("a"), replica("b")
    a.write("hand", "first", 0)
    a.syncer.sync()
    b.syncer.sync()
    a.write("n1", "one", 1)
    a.write("n2", "two", 2)
    a.write("hand", "second", 3)
    a.syncer.sync()
    b.write("local", "b's own", 4)  # so the sync merges
    (b.root / "global" / "hand.md").write_text("edited by hand, not committed")

    def die(self: GitStore, old: str | None, new: str, changes: object = None) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(GitStore, "_follow", die)
    with pytest.raises(KeyboardInterrupt):
        b.syncer.sync()
    assert journal(b).exists()
    assert not (b.root / "global" / "n1.md").exists(), "the branch moved, the work tree did not"
    monkeypatch.undo()

    GitStore(b.root, author=AUTHOR)  # a restart: opening the repository finishes the move
    assert not journal(b).exists()
    assert b.content("n1") == "one" and b.content("n2") == "two"
    assert (b.root / "global" / "hand.md").read_text() == "edited by hand, not committed", "spared"
    assert git(b.root, "status", "--porcelain").strip() == "M global/hand.md"


def test_a_sync_killed_before_the_branch_moved_changes_nothing(
    replica: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = replica("a"), replica("b")
    a.write("n1", "one", 1)
    a.syncer.sync()
    head = b.store.head()

    def die(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(b.store.repository, "create_reference", die, raising=False)
    with pytest.raises(KeyboardInterrupt):
        b.syncer.sync()
    monkeypatch.undo()
    assert journal(b).exists()
    reopened = GitStore(b.root, author=AUTHOR)
    assert not journal(b).exists()
    assert reopened.head() == head and not (b.root / "global" / "n1.md").exists()
    assert b.syncer.sync().pulled == 1 and b.content("n1") == "one"


def test_move_branch_refuses_a_moved_branch(replica: Make) -> None:
    a = replica("a")
    old = a.store.head()
    a.write("n", "x", 1)
    with a.store.write_lock(), pytest.raises(Conflict):
        a.store.move_branch(old, a.store.head() or "", "stale")


# ---------------------------------------------------------------- backoff


def test_backoff_doubles_up_to_a_cap_and_resets() -> None:
    backoff = Backoff(initial=1, maximum=8)
    delays = [backoff.failed() for _ in range(6)]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.succeeded()
    assert backoff.failed() <= 1


# ---------------------------------------------------------------- hostile remotes


def test_unsafe_paths_and_oversized_files_pulled_are_reported_not_written(
    replica: Make, remote: Path, tmp_path: Path
) -> None:
    a = replica("a")
    a.write("fine", "an ordinary memory", 1)
    assert a.syncer.sync().ok
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    (other / "global" / ".hidden.md").write_text("a dot file among the memories")
    (other / "global" / "huge.md").write_bytes(b"x" * (2 * 1024 * 1024))
    (other / "global" / "next.md").write_text("written by another tool")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "hostile")
    git(other, "push", "-q", "origin", "main")

    report = a.syncer.sync()
    assert report.ok and report.pulled == 1
    refused = sorted(report.refused)
    assert len(refused) == 2, refused
    assert refused[0].startswith("'global/.hidden.md' not written") and "unsafe path" in refused[0]
    assert refused[1].startswith("'global/huge.md' not written") and "too large" in refused[1]
    assert not (a.root / "global" / ".hidden.md").exists() and not (a.root / "global" / "huge.md").exists()
    assert (a.root / "global" / "next.md").read_text() == "written by another tool"
    git(a.root, "fsck", "--strict", "--no-dangling")
