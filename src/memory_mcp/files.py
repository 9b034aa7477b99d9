"""Crash-safe file writes, shared by everything that persists: a reader sees the old bytes or the new ones,
never a torn file, and `durable` writes survive power loss once this returns. And the one OS lock helper
that serialises writers across processes."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def write_atomic(
    target: Path, data: bytes, *, mode: int = 0o600, scratch: Path | None = None, durable: bool = True
) -> None:
    """Write `data` to a temporary file (created with `mode` before a byte is written), then rename it over
    `target`. `scratch` is where the temporary lives (same filesystem; default: beside the target)."""
    fd, temporary = tempfile.mkstemp(dir=scratch or target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if durable:
        fsync_path(target.parent)


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entry to disk (a folder after a rename makes the rename durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def locked(path: Path, waiting: Callable[[], object] | None = None, poll: float = 0.2) -> Iterator[None]:
    """Hold an exclusive OS lock on `path` until the block ends; the kernel releases it when the descriptor
    closes, also when the process dies, so a crash never leaves a stale lock.

    A file is created 0600 if missing (this user's processes share it); a folder is locked itself, so every
    user who may read it shares the lock. With `waiting`, it is called every `poll` seconds while another
    process holds the lock (to report what that one is doing)."""
    fd = _open_lock(path)
    try:
        if waiting is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            while not _try_lock(fd):
                waiting()
                time.sleep(poll)
        yield
    finally:
        os.close(fd)


def try_hold(path: Path) -> int | None:
    """Take `locked`'s lock without waiting and keep it for as long as the returned descriptor stays open
    (the owner of a file for a process's lifetime); None when another process holds it."""
    fd = _open_lock(path)
    if _try_lock(fd):
        return fd
    os.close(fd)
    return None


def _open_lock(path: Path) -> int:
    if path.is_dir():
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
