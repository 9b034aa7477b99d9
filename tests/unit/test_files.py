"""The one OS lock helper: a lock file is private to its user, a locked folder is shared, and a waiter hears
about the holder until it lets go."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from memory_mcp.files import locked


def test_a_lock_file_is_created_private(tmp_path: Path) -> None:
    with locked(tmp_path / "write.lock"):
        pass
    assert stat.S_IMODE((tmp_path / "write.lock").stat().st_mode) == 0o600


def test_a_waiter_is_told_while_another_holds_a_folder_lock(tmp_path: Path) -> None:
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with locked(tmp_path):
            held.set()
            release.wait()

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()
    told: list[bool] = []

    def waiting() -> None:
        told.append(release.is_set())
        release.set()  # the holder lets go only once the waiter has been told

    with locked(tmp_path, waiting, poll=0.01):
        assert told and told[0] is False, "the waiter was told while the lock was held"
    thread.join()
    assert list(tmp_path.iterdir()) == [], "a folder lock creates no file"
