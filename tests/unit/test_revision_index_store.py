"""The revision index kept in the derived store: a reopened index resumes from its stored tip, a replaced
first-parent line (a reset, a force-push) or an emptied store rebuilds it, and a process killed at any moment
while advancing it leaves a file that a fresh open turns into the answers a rebuild gives."""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from memory_mcp.core.derived_store import Connection, DerivedStore
from memory_mcp.core.model import Scope
from memory_mcp.core.revision_index import RevisionIndex
from memory_mcp.core.store import Author, GitStore
from memory_mcp.errors import Unavailable
from tests.unit.store_helpers import commit, doc
from tests.unit.test_revision_index import parser

AUTHOR = Author("tester", "tester@example.com")
IDS = [f"id-{n}" for n in range(6)]
class Workload:
    """Random commits over a few memories: creations, edits, moves between scopes, deletions, names reused."""

    def __init__(self, store: GitStore, seed: int) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.live: dict[str, str] = {}
        """memory id → its path now."""
        self.paths: set[str] = set()
        self.serial = 0

    def commits(self, count: int) -> None:
        for _ in range(count):
            self.serial += 1
            memory_id = self.rng.choice(IDS)
            path = self.live.get(memory_id)
            if path is None:
                self._write(memory_id, f"global/{self.rng.choice('abc')}-{memory_id}.md", [])
            elif self.rng.random() < 0.2:
                commit(self.store, deletes=[path], msg=f"forget {self.serial}")
                del self.live[memory_id]
            elif self.rng.random() < 0.3:
                self._write(memory_id, f"projects/p/{self.rng.choice('xyz')}-{memory_id}.md", [path])
            else:
                self._write(memory_id, path, [])

    def _write(self, memory_id: str, path: str, deletes: list[str]) -> None:
        deletes = [gone for gone in deletes if gone != path]
        scope = Scope("p") if path.startswith("projects/") else Scope()
        commit(self.store, {path: doc(Path(path).stem, f"v{self.serial}", memory_id, scope)}, deletes,
               msg=f"write {self.serial}")
        self.live[memory_id] = path
        self.paths.add(path)

    def rewind(self) -> None:
        """Move the branch back to an older commit on its line, as `git reset --hard` or a force-push do."""
        line = [commit for commit, _, _ in self.store.first_parent_changes(self.store.head() or "", None)]
        target = self.rng.choice(line[1:]) if len(line) > 1 else line[0]
        with self.store.write_lock():
            self.store.move_branch(self.store.head(), target, "rewind")
        self.live = {}
        for path in self.paths:
            blob = self.store.blob_at(target, path)
            if blob is not None:
                self.live[parser(self.store)(blob) or ""] = path


def answers(index: RevisionIndex, workload: Workload) -> dict[str, list[tuple[str, str, str | None]]]:
    """Every path's and every id's history, as (commit, path, version)."""
    out = {}
    for key in sorted(workload.paths):
        out[key] = [(r.commit, r.path, r.blob) for r in index.history(key, None, 1000)]
    for key in IDS:
        out[key] = [(r.commit, r.path, r.blob) for r in index.forgotten(key, 1000)]
    return out


def rebuilt(store: GitStore, workload: Workload) -> dict[str, list[tuple[str, str, str | None]]]:
    return answers(RevisionIndex(store, parser(store)), workload)


def test_a_reopened_index_resumes_from_its_stored_tip(tmp_path: Path) -> None:
    store = GitStore(tmp_path / "repo", author=AUTHOR)
    workload = Workload(store, seed=1)
    workload.commits(30)
    derived = DerivedStore.open(tmp_path / "derived.sqlite")
    first = RevisionIndex(store, parser(store), derived)
    before = answers(first, workload)
    assert first.walked == 30, "the first open reads the whole line"
    derived.close()

    derived = DerivedStore.open(tmp_path / "derived.sqlite")
    second = RevisionIndex(store, parser(store), derived)
    assert answers(second, workload) == before == rebuilt(store, workload)
    assert second.walked == 0, "a restart reads no history"
    workload.commits(2)
    assert answers(second, workload) == rebuilt(store, workload)
    assert second.walked == 2
    derived.close()


def test_a_rewound_branch_rebuilds_the_index(tmp_path: Path) -> None:
    store = GitStore(tmp_path / "repo", author=AUTHOR)
    workload = Workload(store, seed=2)
    workload.commits(20)
    derived = DerivedStore.open(tmp_path / "derived.sqlite")
    index = RevisionIndex(store, parser(store), derived)
    index.advance()
    dropped = index.tip
    workload.rewind()
    workload.commits(3)
    derived.close()

    derived = DerivedStore.open(tmp_path / "derived.sqlite")
    index = RevisionIndex(store, parser(store), derived)
    got = answers(index, workload)
    assert got == rebuilt(store, workload)
    assert dropped not in {entry[0] for entries in got.values() for entry in entries}
    derived.close()


def test_the_tables_come_back_after_the_store_is_emptied(tmp_path: Path) -> None:
    """A catalog rebuild empties the whole derived store under the index: it notices and rebuilds."""
    store = GitStore(tmp_path / "repo", author=AUTHOR)
    workload = Workload(store, seed=3)
    workload.commits(10)
    derived = DerivedStore.open(tmp_path / "derived.sqlite")
    index = RevisionIndex(store, parser(store), derived)
    index.advance()
    derived.reset()
    assert answers(index, workload) == rebuilt(store, workload)
    assert index.walked == 20, "ten commits, read twice"
    derived.close()


def test_tables_of_another_format_are_rebuilt(tmp_path: Path) -> None:
    store = GitStore(tmp_path / "repo", author=AUTHOR)
    workload = Workload(store, seed=4)
    workload.commits(10)
    derived = DerivedStore.open(tmp_path / "derived.sqlite")
    RevisionIndex(store, parser(store), derived).advance()
    with derived.transaction():
        derived.put("revisions_format", 0)
        derived.db.execute("DELETE FROM rev_touches WHERE position % 2 = 0")  # whatever an old layout held
    index = RevisionIndex(store, parser(store), derived)
    assert answers(index, workload) == rebuilt(store, workload)
    assert index.walked == 10
    derived.close()


def test_a_closed_index_refuses_and_leaves_the_store_whole(tmp_path: Path) -> None:
    """A server stopping closes the index before the derived store: a history request then is refused
    (retry later) rather than read from a closed database, and what was stored is kept."""
    store = GitStore(tmp_path / "repo", author=AUTHOR)
    workload = Workload(store, seed=6)
    workload.commits(8)
    derived = DerivedStore.open(tmp_path / "derived.sqlite")
    index = RevisionIndex(store, parser(store), derived)
    index.advance()
    index.close()
    workload.commits(1)
    for call in (index.advance, lambda: index.history("global/a-id-0.md", None, 10)):
        with pytest.raises(Unavailable, match="shutting down"):
            call()
    derived.close()
    derived = DerivedStore.open(tmp_path / "derived.sqlite")
    reopened = RevisionIndex(store, parser(store), derived)
    assert answers(reopened, workload) == rebuilt(store, workload) and reopened.walked == 1
    derived.close()


def advance_in_child(root: Path, database: Path) -> tuple[int, bool]:
    """Fork a process that advances the index in `database` one commit per transaction; returns its pid once
    its first transaction began (the tables are checked, the walk of git begins), and a reader that says
    whether it finished. Forked, not spawned: the child needs no imports, so a kill lands in its work."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read)
            store = GitStore(root, author=AUTHOR)
            derived = DerivedStore.open(database)
            transaction = derived.transaction

            def announced() -> AbstractContextManager[Connection]:
                os.write(write, b"w")
                return transaction()

            derived.transaction = announced  # type: ignore[method-assign]
            RevisionIndex(store, parser(store), derived, batch=1).advance()
            os.write(write, b"d")
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    return pid, read


def test_a_process_killed_while_advancing_leaves_a_state_a_fresh_open_completes(tmp_path: Path) -> None:
    """kill -9 at random moments of a child advancing the index (one commit per transaction), over a branch
    that grows and is sometimes rewound; after each kill, a fresh open of (a copy of) the file the child left
    answers every history exactly as a rebuild from git does."""
    store = GitStore(tmp_path / "repo", author=AUTHOR)
    workload = Workload(store, seed=5)
    rng = random.Random(5)
    database = tmp_path / "derived.sqlite"
    window = 0.05
    """Seconds within which a kill after the first transaction lands: narrowed when the child finished first,
    widened when not. Other kills follow the child's progress and land within a transaction of a later one."""
    stored_before: str | None = None
    interrupted = 0
    for round_ in range(24):
        if round_ % 4 == 2:
            workload.rewind()
        count = rng.randint(3, 25)
        workload.commits(count)
        pid, events = advance_in_child(store.root, database)
        assert os.read(events, 1) == b"w"
        seen = _announcements(events, skip := rng.randint(0, count - 1))
        time.sleep(rng.uniform(0, window if skip == 0 else 0.001))
        os.kill(pid, signal.SIGKILL)
        finished = (seen + _drain(events)).endswith(b"d")
        os.close(events)
        _, status = os.waitpid(pid, 0)
        assert finished or os.WTERMSIG(status) == signal.SIGKILL
        if skip == 0:
            window = window * 0.85 if finished else min(window * 1.25, 2.0)

        copy = tmp_path / f"copy-{round_}"
        copy.mkdir()
        for suffix in ("", "-wal"):
            if Path(f"{database}{suffix}").exists():
                shutil.copy(f"{database}{suffix}", copy / f"derived.sqlite{suffix}")
        derived = DerivedStore.open(copy / "derived.sqlite")
        fresh = RevisionIndex(store, parser(store), derived)
        stored = fresh.tip
        if stored not in (stored_before, store.head()):
            interrupted += 1  # the child had committed some of its work, not all
        stored_before = stored
        assert answers(fresh, workload) == rebuilt(store, workload), f"round {round_}"
        derived.close()
    assert interrupted >= 8, "kills landed in the middle of an advance"


def _announcements(events: int, count: int) -> bytes:
    """Wait for `count` more transactions to begin (each one after the last committed), or for the end: a
    random sleep alone mostly misses an advance that takes milliseconds."""
    seen = b""
    while len(seen) < count and not seen.endswith(b"d") and (byte := os.read(events, 1)):
        seen += byte
    return seen


def _drain(events: int) -> bytes:
    out = b""
    while chunk := os.read(events, 4096):
        out += chunk
    return out
