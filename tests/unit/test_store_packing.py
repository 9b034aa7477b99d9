"""Packing the store's loose objects, on real repositories, with the git CLI as the independent witness."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pygit2
import pytest

from memory_mcp.core.store import Author, GitStore, git_packing, git_repository, pack_merge
from memory_mcp.idle_priority import LOWEST
from tests.unit.store_helpers import commit

AUTHOR = Author("tester", "tester@example.com")


@pytest.fixture
def store(tmp_path: Path) -> GitStore:
    return GitStore(tmp_path / "repo", author=AUTHOR)


def _git(store: GitStore, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(store.root), *args], capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def _loose(store: GitStore) -> list[Path]:
    objects = store.root / ".git" / "objects"
    return [path for path in objects.glob("??/*") if path.parent.name not in ("info", "pack")]


def _packs(store: GitStore) -> list[Path]:
    return sorted((store.root / ".git" / "objects" / "pack").glob("pack-*.pack"))


def _fsck_clean(store: GitStore) -> None:
    output = _git(store, "fsck", "--full", "--strict", "--no-dangling")
    assert "error" not in output.lower() and "missing" not in output and "broken" not in output


def test_few_loose_objects_are_left_alone(store: GitStore) -> None:
    commit(store, {f"global/m{i}.md": b"memory %d" % i for i in range(5)})
    loose = _loose(store)
    assert store.pack_objects() == 0
    assert _loose(store) == loose and not _packs(store)


def test_many_loose_objects_become_one_pack_every_reader_opens(
    store: GitStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git_packing, "PACK_FROM", 20)
    tips = [commit(store, {f"global/m{i}.md": b"memory %d" % i}) for i in range(10)]
    reader = pygit2.Repository(str(store.root))  # opened before: must still find every object after
    count = len(_loose(store))
    assert store.pack_objects() == count
    assert _loose(store) == [] and len(_packs(store)) == 1
    assert _git(store, "cat-file", "-p", f"{tips[3]}:global/m3.md") == "memory 3"
    assert reader[tips[5]].peel(pygit2.Commit).tree["global"]["m5.md"].data == b"memory 5"
    assert dict(store.files(tips[-1]))["global/m9.md"] == GitStore.blob_id(b"memory 9")
    later = commit(store, {"global/m0.md": b"changed"})
    assert _git(store, "show", f"{later}:global/m0.md") == "changed"
    _fsck_clean(store)


def test_libgit2_finds_deltas_at_the_lowest_priority_on_a_thread_of_its_own(
    store: GitStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole packing at 60k memories a folder takes minutes of a core: requests must outrank it."""
    writes, write = [], pygit2.PackBuilder.write

    def observed(builder: pygit2.PackBuilder, *args: object) -> object:
        writes.append((os.getpriority(os.PRIO_PROCESS, 0), threading.get_native_id()))
        return write(builder, *args)

    monkeypatch.setattr(pygit2.PackBuilder, "write", observed)
    monkeypatch.setattr(git_packing, "PACK_FROM", 20)
    for i in range(10):
        commit(store, {f"global/m{i}.md": b"memory %d" % i})
    caller = os.getpriority(os.PRIO_PROCESS, 0)
    assert store.pack_objects() > 0
    assert [nice for nice, _ in writes] == [LOWEST]
    assert writes[0][1] != threading.get_native_id()
    assert os.getpriority(os.PRIO_PROCESS, 0) == caller
    _fsck_clean(store)


def _counts(store: GitStore) -> list[int]:
    return sorted(pack_merge.object_count(pack) for pack in _packs(store))


def test_packs_stay_a_geometric_progression_and_readers_opened_before_still_read(
    store: GitStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git_packing, "PACK_FROM", 3)
    tips = [commit(store, {"global/first.md": b"first"})]
    reader = pygit2.Repository(str(store.root))
    seen = []
    for round_ in range(9):
        tips += [commit(store, {f"global/r{round_}-{i}.md": b"%d %d" % (round_, i)}) for i in range(2)]
        assert store.pack_objects() > 0 and _loose(store) == []
        counts = _counts(store)
        assert all(big >= git_packing.FACTOR * small for small, big in itertools.pairwise(counts)), counts
        assert sum(counts) == len(list(pygit2.Repository(str(store.root)).odb))
        seen.append(len(counts))
    assert max(seen) <= 3 and 1 in seen, "merged as they came, never many packs"
    assert reader[tips[1]].peel(pygit2.Commit).tree["global"]["r0-0.md"].data == b"0 0"
    assert reader[tips[-1]].peel(pygit2.Commit).tree["global"]["r8-1.md"].data == b"8 1"
    assert _git(store, "log", "--format=%H").split() == tips[::-1]
    _fsck_clean(store)


_MERGE = git_packing._merge_small_packs


def _two_packs(store: GitStore, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Two packs of a large folder's history (its trees deltas) that the store left apart."""
    monkeypatch.setattr(git_packing, "PACK_FROM", 3)
    size = git_repository.LARGE_FOLDER + 1
    commit(store, {f"global/m{i:04d}.md": b"memory %d" % i for i in range(size)})
    store.pack_objects()
    for i in range(4):
        commit(store, {f"global/m{i:04d}.md": b"edited %d" % i})
    monkeypatch.setattr(git_packing, "_merge_small_packs", lambda repo, folder: None)  # keeps them apart
    store.pack_objects()
    packs = _packs(store)
    assert len(packs) == 2
    return packs


def _deltas(store: GitStore, pack: Path) -> int:
    lines = _git(store, "verify-pack", "-v", str(pack.with_suffix(".idx"))).splitlines()
    return sum(1 for line in lines if len(line.split()) == 7)  # id, type, sizes, offset, depth, base


@pytest.mark.parametrize("large_offsets_from", [0x8000_0000, 100])
def test_a_merge_lays_packs_end_to_end_and_git_reads_it(
    store: GitStore, monkeypatch: pytest.MonkeyPatch, large_offsets_from: int
) -> None:
    """The merged pack is its packs' bytes under one header, deltas kept; git verifies it, and reads every
    object. From 100 on, offsets go to the index's 64-bit table, as beyond 2 GiB."""
    packs = _two_packs(store, monkeypatch)
    ids = {object_id for pack in packs for object_id in pack_merge.read_index(pack).ids}
    deltas = sum(_deltas(store, pack) for pack in packs)
    monkeypatch.setattr(pack_merge, "_FIRST_LARGE_OFFSET", large_offsets_from)
    merged = pack_merge.merge([pack_merge.read_index(pack) for pack in packs], packs[0].parent)
    assert merged.stat().st_size == sum(pack.stat().st_size for pack in packs) - 12 - 20
    assert _deltas(store, merged) == deltas > 0
    index = pack_merge.read_index(merged)
    assert set(index.ids) == ids and pack_merge.object_count(merged) == len(ids)
    for pack in packs:
        pack.with_suffix(".idx").unlink()
        pack.unlink()
    listed = _git(store, "cat-file", "--batch-check", "--batch-all-objects").splitlines()
    assert {bytes.fromhex(line.split()[0]) for line in listed} == ids
    assert _git(store, "show", "HEAD:global/m0003.md") == "edited 3"
    _fsck_clean(store)


def test_an_index_git_wrote_with_64_bit_offsets_reads_the_same(
    store: GitStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pack = _two_packs(store, monkeypatch)[0]
    copy = tmp_path / pack.name
    copy.write_bytes(pack.read_bytes())
    _git(store, "index-pack", "--index-version=2,0", str(copy))
    ours, git_s = pack_merge.read_index(pack), pack_merge.read_index(copy)
    assert copy.with_suffix(".idx").read_bytes() != pack.with_suffix(".idx").read_bytes()
    assert (git_s.ids, git_s.offsets, git_s.crcs) == (ours.ids, ours.offsets, ours.crcs)


def test_packs_below_the_largest_are_copied_and_all_of_them_packed_again(
    store: GitStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the largest pack, a merge copies (the largest stays as it was); a merge of every pack finds
    deltas across them afresh, so it is smaller than the packs it replaces."""
    _two_packs(store, monkeypatch)
    largest = max(_packs(store), key=lambda pack: pack.stat().st_size)
    for i in range(4):
        commit(store, {f"global/m{i:04d}.md": b"again %d" % i})
    store.pack_objects()  # a third pack, the merge still off
    monkeypatch.setattr(git_packing, "_merge_small_packs", _MERGE)
    small = [pack for pack in _packs(store) if pack != largest]
    ids = {object_id for pack in small for object_id in pack_merge.read_index(pack).ids}
    commit(store, {"global/m0000.md": b"once more"})
    store.pack_objects()
    assert largest in _packs(store) and len(_packs(store)) == 2, "the small ones merged, the largest kept"
    merged = next(pack for pack in _packs(store) if pack != largest)
    assert ids < set(pack_merge.read_index(merged).ids)
    before = sum(pack.stat().st_size for pack in _packs(store))
    monkeypatch.setattr(git_packing, "FACTOR", 1_000_000)  # every pack below the progression now
    commit(store, {"global/m0001.md": b"once more"})
    store.pack_objects()
    assert len(_packs(store)) == 1 and sum(pack.stat().st_size for pack in _packs(store)) < before
    _fsck_clean(store)


def test_a_damaged_pack_is_left_as_it_is_and_the_packing_goes_on(
    store: GitStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A pack cut short (its objects lost already) stops the merge it is in, not the packing: nothing else
    is removed, and no temporary is left behind."""
    packs = _two_packs(store, monkeypatch)
    repo = pygit2.Repository(str(store.root))
    builder = pygit2.PackBuilder(repo)
    builder.add(repo.create_blob(b"an object nothing refers to"))
    builder.write()
    damaged = next(pack for pack in _packs(store) if pack not in packs)
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes()[:8])  # shorter than a pack header
    for path in _loose(store):
        path.unlink()
    monkeypatch.setattr(git_packing, "_merge_small_packs", _MERGE)
    for i in range(3):
        commit(store, {f"global/m{i:04d}.md": b"late %d" % i})
    assert store.pack_objects() > 0 and not _loose(store)
    assert {*packs, damaged} < set(_packs(store)) and damaged.stat().st_size == 8
    assert "left the packs as they are" in caplog.text
    assert not list(damaged.parent.glob(f"{pack_merge.TEMPORARY_PREFIX}*"))
    assert _git(store, "show", "HEAD:global/m0002.md") == "late 2"


def test_packs_that_share_objects_are_packed_again_into_one(
    store: GitStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a merge killed before its old packs went, the merged pack repeats their objects."""
    packs = _two_packs(store, monkeypatch)
    pack_merge.merge([pack_merge.read_index(pack) for pack in packs], packs[0].parent)
    monkeypatch.undo()
    monkeypatch.setattr(git_packing, "PACK_FROM", 1)
    commit(store, {"global/after.md": b"after"})
    assert store.pack_objects() > 0
    assert len(_packs(store)) == 1 and not _loose(store)
    assert _git(store, "show", "HEAD:global/after.md") == "after"
    _fsck_clean(store)


def test_a_large_folder_s_trees_shrink_to_deltas(store: GitStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each commit into a large folder leaves its whole tree loose; packed, a tree is a delta of the last."""
    monkeypatch.setattr(git_packing, "PACK_FROM", 40)
    size = git_repository.LARGE_FOLDER + 1
    commit(store, {f"global/m{i:04d}.md": b"memory %d" % i for i in range(size)})
    for i in range(12):
        commit(store, {f"global/m{i:04d}.md": b"edited %d" % i})
    loose = sum(path.stat().st_size for path in _loose(store))
    assert store.pack_objects() > 0
    packed = sum(path.stat().st_size for path in _packs(store))
    assert packed * 5 < loose
    _fsck_clean(store)


HOLD = """
import fcntl, os, sys, time
fcntl.flock(os.open(sys.argv[1], os.O_RDWR | os.O_CREAT), fcntl.LOCK_EX)
print(flush=True)
time.sleep(60)
"""


def test_what_a_killed_pack_writer_left_goes_once_stale(store: GitStore) -> None:
    """libgit2 writes a pack as `pack_git2_*` first; one a fetch is writing now must stay."""
    commit(store, {"global/a.md": b"a"})
    folder = store.root / ".git" / "objects" / "pack"
    folder.mkdir(exist_ok=True)
    stale, fresh = folder / "pack_git2_0a1b2c", folder / "pack_git2_3d4e5f"
    stale.write_bytes(b"PACK half written")
    fresh.write_bytes(b"PACK being written")
    old = time.time() - git_packing.STALE_SECONDS - 60
    os.utime(stale, (old, old))
    assert store.pack_objects() == 0  # too few loose objects to pack; the tidying runs all the same
    assert not stale.exists() and fresh.exists()


def test_another_process_packing_makes_this_one_skip(
    store: GitStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git_packing, "PACK_FROM", 1)
    commit(store, {"global/a.md": b"a"})
    lock = str(store.private_dir / "pack.lock")
    with subprocess.Popen([sys.executable, "-c", HOLD, lock], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "\n"  # it holds the lock now
            assert store.pack_objects() == 0 and _loose(store)
        finally:
            holder.kill()
    assert store.pack_objects() > 0 and not _loose(store)


CHILD = """
import signal, sys
from pathlib import Path
from memory_mcp.core.store import Author, GitStore, git_packing
from tests.unit.store_helpers import commit

root, dies_at = Path(sys.argv[1]), int(sys.argv[2])
git_packing.PACK_FROM = 3
store = GitStore(root, author=Author("t", "t@example.com"))
commit(store, {f"global/first{i}.md": b"first %d" % i for i in range(60)})
store.pack_objects()  # the largest pack, which the next two stay below
for i in range(3):
    commit(store, {f"global/a{i}.md": b"a %d" % i})
store.pack_objects()
for i in range(3):
    commit(store, {f"global/b{i}.md": b"b %d" % i})
removed, unlink = [], Path.unlink

def unlink_then_die(self, missing_ok=False):
    if len(removed) == dies_at:
        signal.raise_signal(signal.SIGKILL)
    removed.append(self)
    unlink(self, missing_ok=missing_ok)

Path.unlink = unlink_then_die
store.pack_objects()
"""


@pytest.mark.parametrize("dies_at", [0, 6, 12, 15, 16])
def test_a_packing_killed_at_any_removal_loses_nothing(
    tmp_path: Path, dies_at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL once the loose objects' pack is written: before any loose copy goes, half-way through them,
    once the two packs' merge is in place (its objects then in two packs), between an old pack's index and
    its data, or between the two old packs: every commit still reads, and the next packing tidies up."""
    root = tmp_path / "repo"
    repo_root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(dies_at)],
        check=False,
        cwd=repo_root,
        capture_output=True,
        text=True,
    )
    assert child.returncode == -9, child.stderr
    store = GitStore(root, author=AUTHOR)
    _fsck_clean(store)
    assert sorted(path for path, _ in store.files(store.head())) == sorted(
        [f"global/first{i}.md" for i in range(60)]
        + [f"global/a{i}.md" for i in range(3)]
        + [f"global/b{i}.md" for i in range(3)]
    )
    commit(store, {"global/c.md": b"c"})
    monkeypatch.setattr(git_packing, "PACK_FROM", 1)
    monkeypatch.setattr(git_packing, "STALE_SECONDS", 0.0)  # an old pack's data without its index goes
    assert store.pack_objects() > 0
    counts = _counts(store)
    assert all(big >= git_packing.FACTOR * small for small, big in itertools.pairwise(counts)), counts
    assert sum(counts) == len(list(pygit2.Repository(str(store.root)).odb)) and not _loose(store)
    assert len(_git(store, "log", "--format=%H").split()) == 8
    _fsck_clean(store)
