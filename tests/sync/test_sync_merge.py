"""Two replicas of one remote change memories on both sides: every sync converges without conflict markers,
keeps every commit, and reports each file both sides changed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from memory_mcp.core import markdown
from memory_mcp.core.merge import COMBINED, KEPT_CHANGE, KEPT_LOCAL, KEPT_REMOTE
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.store import memory_path
from memory_mcp.core.sync import SyncReport
from tests.sync.conftest import T0, Replica, assert_healthy, at, git

Make = Callable[..., Replica]


def converge(*replicas: Replica) -> None:
    """Sync every replica until all hold the remote's head; each sync must succeed."""
    for _ in range(2):
        for rep in replicas:
            report = rep.syncer.sync()
            assert report.ok, report.errors
    heads = {rep.store.head() for rep in replicas}
    assert len(heads) == 1, heads


def reachable_blobs(repo: Path) -> set[str]:
    return {line.split(" ", 1)[0] for line in git(repo, "rev-list", "--all", "--objects").splitlines()}


def test_different_memories_merge_cleanly(replica: Make, remote: Path) -> None:
    a, b = replica("a"), replica("b")
    a.write("alpha", "from a", 1)
    b.write("beta", "from b", 2)
    assert a.syncer.sync().pushed == 2, "the shared first commit and alpha"
    report = b.syncer.sync()
    assert report.ok and report.conflicts == () and report.pulled == 1 and report.pushed == 2
    parents = git(b.root, "log", "-1", "--format=%P").split()
    assert len(parents) == 2, "both sides moved: a merge commit with both tips as parents"
    converge(a, b)
    assert a.names() == b.names() == {"alpha", "beta"}
    assert a.content("beta") == "from b" and b.content("alpha") == "from a"
    for repo in (a.root, b.root, remote):
        assert_healthy(repo)


def test_same_memory_newer_updated_at_wins_and_the_other_stays_in_history(
    replica: Make, remote: Path
) -> None:
    a, b = replica("a"), replica("b")
    a.write("shared", "base", 0)
    a.syncer.sync()
    b.syncer.sync()
    a.write("shared", "a's newer edit", 20)
    b.write("shared", "b's older edit", 10)
    a.syncer.sync()
    b_loser = b.store.blob_at(b.store.head(), "global/shared.md")

    report = b.syncer.sync()
    assert report.ok
    (conflict,) = report.conflicts
    assert (conflict.path, conflict.scope, conflict.name) == ("global/shared.md", "global", "shared")
    assert (conflict.resolution, conflict.kept, conflict.other_version) == (KEPT_REMOTE, "remote", b_loser)
    assert b.content("shared") == "a's newer edit"
    assert b_loser in reachable_blobs(b.root) and b_loser in reachable_blobs(remote)
    assert "global/shared.md: kept-remote" in git(b.root, "log", "-1", "--format=%B")

    converge(a, b)
    assert a.content("shared") == "a's newer edit"
    for repo in (a.root, b.root, remote):
        assert_healthy(repo)


def test_local_version_wins_when_it_is_newer(replica: Make) -> None:
    a, b = replica("a"), replica("b")
    a.write("shared", "base", 0)
    a.syncer.sync()
    b.syncer.sync()
    a.write("shared", "a's older edit", 5)
    a.syncer.sync()
    b.write("shared", "b's newer edit", 30)
    (conflict,) = b.syncer.sync().conflicts
    assert (conflict.resolution, conflict.kept) == (KEPT_LOCAL, "local")
    converge(a, b)
    assert a.content("shared") == b.content("shared") == "b's newer edit"
    assert_healthy(a.root)


def test_both_create_the_same_memory(replica: Make) -> None:
    a, b = replica("a"), replica("b")
    a.write("fresh", "a made it", 3, memory_id="id-a")
    b.write("fresh", "b made it", 4, memory_id="id-b")
    a.syncer.sync()
    (conflict,) = b.syncer.sync().conflicts
    assert (conflict.resolution, conflict.kept) == (KEPT_LOCAL, "local")
    converge(a, b)
    assert a.content("fresh") == "b made it"


def test_change_beats_delete_on_either_side(replica: Make, remote: Path) -> None:
    a, b = replica("a"), replica("b")
    a.write("x", "base x", 0)
    a.write("y", "base y", 0)
    a.syncer.sync()
    b.syncer.sync()
    a.delete("x")
    a.write("y", "a changed y", 9)
    b.write("x", "b changed x", 9)
    b.delete("y")
    a.syncer.sync()

    report = b.syncer.sync()
    by_path = {c.path: c for c in report.conflicts}
    assert set(by_path) == {"global/x.md", "global/y.md"}
    assert (by_path["global/x.md"].resolution, by_path["global/x.md"].kept) == (KEPT_CHANGE, "local")
    assert by_path["global/x.md"].other_version is None
    assert (by_path["global/y.md"].resolution, by_path["global/y.md"].kept) == (KEPT_CHANGE, "remote")
    assert b.content("x") == "b changed x" and b.content("y") == "a changed y"
    converge(a, b)
    assert a.names() == {"x", "y"}
    assert_healthy(remote)


def test_deleted_on_both_sides_stays_deleted(replica: Make) -> None:
    a, b = replica("a"), replica("b")
    a.write("gone", "soon gone", 0)
    a.write("kept", "stays", 0)
    a.syncer.sync()
    b.syncer.sync()
    a.delete("gone")
    b.delete("gone")
    b.write("other", "b's", 1)
    a.syncer.sync()
    report = b.syncer.sync()
    assert report.ok and report.conflicts == ()
    converge(a, b)
    assert a.names() == b.names() == {"kept", "other"}
    assert not (b.root / "global" / "gone.md").exists()


def test_a_memory_beats_an_unreadable_file_and_unreadable_pairs_keep_the_remote(replica: Make) -> None:
    a, b = replica("a"), replica("b")
    a.write("m", "base", 0)
    a.commit({"global/junk.md": b"not a memory"}, [], "junk")
    a.syncer.sync()
    b.syncer.sync()
    a.commit({"global/m.md": b"broken by hand"}, [], "break m")
    a.commit({"global/junk.md": b"remote junk"}, [], "junk a")
    a.syncer.sync()
    b.write("m", "b's valid edit", 1)  # the remote's m does not parse: a memory wins whatever its date
    b.commit({"global/junk.md": b"local junk"}, [], "junk b")
    report = b.syncer.sync()
    kept = {c.path: c.resolution for c in report.conflicts}
    assert kept == {"global/m.md": KEPT_LOCAL, "global/junk.md": KEPT_REMOTE}
    assert b.content("m") == "b's valid edit"
    assert (b.root / "global" / "junk.md").read_bytes() == b"remote junk"


def test_nested_folders_merge_per_file(replica: Make) -> None:
    a, b = replica("a"), replica("b")
    a.commit({"projects/org/team/n1.md": b"one"}, [], "n1")
    a.syncer.sync()
    b.syncer.sync()
    a.commit({"projects/org/team/n2.md": b"two"}, ["projects/org/team/n1.md"], "n2")
    b.commit({"projects/org/other/n3.md": b"three"}, [], "n3")
    a.syncer.sync()
    assert b.syncer.sync().conflicts == ()
    converge(a, b)
    files = {path for path, _ in a.store.files(a.store.head())}
    assert files == {"projects/org/team/n2.md", "projects/org/other/n3.md"}
    assert not (a.root / "projects" / "org" / "team" / "n1.md").exists()
    assert (a.root / "projects" / "org" / "other" / "n3.md").read_bytes() == b"three"


def test_concurrent_replicas_lose_no_acknowledged_write(replica: Make, remote: Path) -> None:
    """Three replicas write (some to the same memories) and sync at once, with no pause between syncs.

    Push races are retried a bounded number of times, then reported; a later sync finishes the job.
    """
    replicas = [replica(name) for name in ("a", "b", "c")]
    written: dict[str, set[str]] = {}
    reports: list[SyncReport] = []

    def work(index: int, rep: Replica) -> None:
        for step in range(6):
            name = f"own-{index}-{step}" if step % 2 else f"shared-{step % 3}"
            rep.write(name, f"{name} by {index} at {step}", step * 10 + index)
            written.setdefault(name, set()).add(f"{name} by {index} at {step}")
            reports.append(rep.syncer.sync())

    threads = [threading.Thread(target=work, args=(i, rep)) for i, rep in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    converge(*replicas)
    errors = [error for report in reports for error in report.errors]
    assert all(error.startswith("push failed: rejected") for error in errors), errors  # bounded retries
    assert all(report.pushed >= 1 for report in reports if report.ok), "each sync followed a write"
    assert replicas[0].names() == set(written)
    for rep in replicas:
        history = git(rep.root, "log", "--all", "-p")
        for contents in written.values():
            for content in contents:
                assert content in history, f"{content!r} was acknowledged and must stay in history"
        assert_healthy(rep.root)
    assert_healthy(remote)


def ids_by_path(rep: Replica) -> dict[str, str]:
    return {
        path: markdown.parse(rep.store.blob(blob)).id for path, blob in rep.store.files(rep.store.head())
    }


def move(rep: Replica, old: str, new: str, content: str, minutes: int) -> str:
    """Rename a memory (same id), as `move` does: one commit writes the new path and deletes the old."""
    memory = Memory(
        name=new, scope=Scope(), content=content, id=f"id-{old}", created_at=T0, updated_at=at(minutes)
    )
    writes = {memory_path(Scope(), new): markdown.render(memory)}
    return rep.commit(writes, [memory_path(Scope(), old)], f"move {old} to {new}")


def test_move_on_one_replica_and_edit_on_another_give_one_memory(replica: Make, remote: Path) -> None:
    a, b = replica("a"), replica("b")
    a.write("notes", "base", 0)
    a.syncer.sync()
    b.syncer.sync()
    move(a, "notes", "moved-notes", "base", 5)
    b.write("notes", "b's edit", 9, memory_id="id-notes")
    a.syncer.sync()
    report = b.syncer.sync()
    assert report.ok
    (conflict,) = report.conflicts
    expected = ("id-notes", COMBINED, "global/moved-notes.md")
    assert (conflict.id, conflict.resolution, conflict.path) == expected
    converge(a, b)
    for rep in (a, b):
        assert ids_by_path(rep) == {"global/moved-notes.md": "id-notes"}, "one id, one path"
        assert rep.content("moved-notes") == "b's edit"
        assert_healthy(rep.root)


def test_renames_on_both_replicas_keep_the_newer_and_the_other_stays_in_history(
    replica: Make, remote: Path
) -> None:
    a, b = replica("a"), replica("b")
    a.write("notes", "base", 0)
    a.syncer.sync()
    b.syncer.sync()
    move(a, "notes", "name-a", "base", 3)
    move(b, "notes", "name-b", "base", 7)
    loser = a.store.blob_at(a.store.head(), "global/name-a.md")
    a.syncer.sync()
    (conflict,) = b.syncer.sync().conflicts
    assert (conflict.resolution, conflict.other_path, conflict.other_version) == (
        KEPT_LOCAL,
        "global/name-a.md",
        loser,
    )
    converge(a, b)
    assert ids_by_path(a) == ids_by_path(b) == {"global/name-b.md": "id-notes"}
    assert loser in reachable_blobs(remote)


def test_move_on_one_replica_and_forget_on_another_keep_the_moved_memory(replica: Make) -> None:
    a, b = replica("a"), replica("b")
    a.write("notes", "base", 0)
    a.syncer.sync()
    b.syncer.sync()
    move(a, "notes", "kept", "base", 3)
    b.delete("notes")
    a.syncer.sync()
    (conflict,) = b.syncer.sync().conflicts
    assert conflict.resolution == KEPT_CHANGE and conflict.path == "global/kept.md"
    converge(a, b)
    assert ids_by_path(a) == ids_by_path(b) == {"global/kept.md": "id-notes"}
