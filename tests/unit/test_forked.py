"""A large graph's save runs in a forked child: other threads run meanwhile, the child holds none of its
parent's descriptors, dies with its parent, reports its failures and is killed if it hangs. Each save here
writes into a named pipe, so it cannot finish until the pipe has a reader: the test decides how long a save
lasts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from memory_mcp.core import vector_index
from memory_mcp.core.vector_index import VectorIndex
from memory_mcp.files import try_hold
from memory_mcp.forked import ChildFailed, run_forked
from memory_mcp.idle_priority import LOWEST

DIM = 8


@pytest.fixture(autouse=True)
def fork_every_save(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server forks for large graphs only; these small ones stand in for them."""
    monkeypatch.setattr(vector_index, "FORK_FROM_BYTES", 0)


def filled_index(count: int = 300) -> VectorIndex:
    index = VectorIndex(DIM)
    index.add(list(range(count)), np.random.default_rng(7).standard_normal((count, DIM)).astype(np.float32))
    return index


def children(pid: int) -> set[int]:
    return {
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    }


def forked_child(pid: int, others: set[int]) -> int:
    """The one child of `pid` not in `others`, once it exists."""
    wait_for(lambda: children(pid) - others, "no child was forked")
    (child,) = children(pid) - others
    return child


def wait_for(condition, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


class LateReader:
    """Reads a named pipe only after `seconds` (or when told to): until then a save into it cannot finish.
    The delay keeps a save that holds the GIL from hanging the test."""

    def __init__(self, folder: Path, seconds: int = 10) -> None:
        self.pipe, self._arrived = folder / "graph", folder / "reader-arrived"
        os.mkfifo(self.pipe)
        script = f'sleep {seconds} & wait; touch "$1"; exec cat "$0"'
        command = ["sh", "-c", script, self.pipe, self._arrived]
        self._reader = subprocess.Popen(command, stdout=subprocess.PIPE)

    @property
    def pid(self) -> int:
        return self._reader.pid

    @property
    def arrived(self) -> bool:
        return self._arrived.exists()

    def read(self) -> bytes:
        """Arrive now and return all that was written."""
        for sleeping in children(self._reader.pid):
            os.kill(sleeping, signal.SIGTERM)
        return self._reader.communicate(timeout=30)[0]

    def close(self) -> None:
        for process in (*children(self._reader.pid), self._reader.pid):
            os.kill(process, signal.SIGKILL)
        self._reader.wait(30)


def test_other_threads_run_while_a_graph_is_saved(tmp_path: Path) -> None:
    """hnswlib holds the GIL while it writes: in this process the save would stop this thread until the
    pipe's reader arrived."""
    index = filled_index()
    reader = LateReader(tmp_path)
    saver = threading.Thread(target=index.save, args=(str(reader.pipe),))
    saver.start()
    time.sleep(0.3)
    ran_during_the_save = saver.is_alive() and not reader.arrived
    written = reader.read()
    saver.join(30)
    assert ran_during_the_save, "this thread did not run until the save had its reader"
    saved = tmp_path / "saved.hnsw"
    saved.write_bytes(written)
    reopened = VectorIndex.load(str(saved), DIM, set(range(300)), {})
    assert reopened is not None
    query = np.random.default_rng(8).standard_normal(DIM).astype(np.float32)
    assert reopened.nearest(query, 5, list(range(300))) == index.nearest(query, 5, list(range(300)))


def test_the_child_keeps_no_lock_its_parent_lets_go(tmp_path: Path) -> None:
    """A forked child shares its parent's open files, and a lock on one lasts until every holder closes it:
    the child closes its copies first, so a lock released during a save is free at once."""
    lock = tmp_path / "lock"
    held = try_hold(lock)
    assert held is not None
    others = children(os.getpid())
    reader = LateReader(tmp_path)
    saver = threading.Thread(target=filled_index().save, args=(str(reader.pipe),))
    saver.start()
    child = forked_child(os.getpid(), others | {reader.pid})
    wait_for(lambda: len(os.listdir(f"/proc/{child}/fd")) <= 4, "the child kept its parent's descriptors", 5)
    os.close(held)
    probe = (
        "import sys, pathlib; from memory_mcp.files import try_hold; "
        "sys.exit(try_hold(pathlib.Path(sys.argv[1])) is None)"
    )
    taken = subprocess.run([sys.executable, "-c", probe, str(lock)], check=False).returncode
    reader.read()
    saver.join(30)
    assert taken == 0, "the lock stayed held by the saving child"


def test_a_saving_child_dies_with_its_killed_parent(tmp_path: Path) -> None:
    """kill -9 of the server mid-save leaves no orphan writing the graph or holding its files."""
    reader = LateReader(tmp_path, seconds=60)
    script = textwrap.dedent(
        f"""
        import sys, threading
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from memory_mcp.core import vector_index
        from test_forked import filled_index
        vector_index.FORK_FROM_BYTES = 0
        threading.Thread(target=filled_index().save, args=({str(reader.pipe)!r},)).start()
        print("saving", flush=True)
        threading.Event().wait()
        """
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        assert server.stdout is not None and server.stdout.readline() == "saving\n"
        child = forked_child(server.pid, set())
        assert not dead(child)
        server.kill()
        server.wait(30)
        wait_for(lambda: dead(child), "the saving child outlived its parent", seconds=10)
    finally:
        server.kill()
        if child is not None and not dead(child):
            os.kill(child, signal.SIGKILL)
        reader.close()


def test_a_child_reports_its_failure() -> None:
    with pytest.raises(ChildFailed, match="ZeroDivisionError: division by zero"):
        run_forked(lambda: 1 / 0, timeout=30)
    with pytest.raises(ChildFailed, match="signal SIGKILL"):
        run_forked(lambda: os.kill(os.getpid(), signal.SIGKILL), timeout=30)
    run_forked(lambda: None, timeout=30)


def test_a_child_that_does_not_finish_in_time_is_killed() -> None:
    others = children(os.getpid())
    started = time.monotonic()
    with pytest.raises(ChildFailed, match="did not finish within 0.5 s and was killed"):
        run_forked(lambda: time.sleep(60), timeout=0.5)
    assert time.monotonic() - started < 30
    assert children(os.getpid()) <= others, "the child was left behind"


def test_a_child_runs_at_the_lowest_priority_and_its_parent_keeps_its_own() -> None:
    parent = os.getpriority(os.PRIO_PROCESS, 0)

    def check() -> None:
        if (found := os.getpriority(os.PRIO_PROCESS, 0)) != LOWEST:
            raise RuntimeError(f"the child runs at nice {found}")

    run_forked(check, timeout=30)
    assert os.getpriority(os.PRIO_PROCESS, 0) == parent
