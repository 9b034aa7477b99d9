"""Bytes a process writes into a git repository while a block runs, seen file by file through inotify.

`/proc/<pid>/io` counts the server's writes to the repository and to the cache directory together, and the
repository's growth no longer tells git's share once the store packs: a packing removes the loose objects it
packed (megabytes each in a large folder) after they were written and counted. Nearly every file written
into the repository arrives whole and is never changed: loose objects, packs and their indexes, the git
index, refs, the work tree's memory files, the store's journal. Each is written under a temporary name and
then linked or renamed into place (libgit2 links, and renames over a file that exists; the store renames),
so it is counted once as it arrives, in 4 KB pages as `/proc/<pid>/io` counts it (a 300-byte blob dirties
a page). A file created under its own name is counted when it is closed. Appends in place (reflogs, a page
or two a commit) are not counted, so the rest of the process's bytes slightly overstates the cache's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
from collections import Counter
from pathlib import Path
from typing import Final, Self

IN_CLOSE_WRITE: Final = 0x008
IN_MOVED_TO: Final = 0x080
IN_CREATE: Final = 0x100
IN_ISDIR: Final = 0x40000000
_EVENT: Final = struct.Struct("iIII")
PAGE: Final = 4096
POLL_SECONDS: Final = 0.05

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def temporary(name: str) -> bool:
    """libgit2's names for files being written (`tmp_object_git2_*`, `pack_git2_*`, `*.lock`), and
    `files.write_atomic`'s (`.<name>.*.tmp`)."""
    return name.startswith(("tmp_", "pack_git2_", ".")) or name.endswith((".lock", ".tmp"))


def kind(path: Path, root: Path) -> str:
    """What a written file is: 'objects' (loose), 'packs', 'index', 'work tree' or 'other' (refs, the
    store's own files)."""
    parts = path.relative_to(root).parts
    if parts[0] != ".git":
        return "work tree"
    if parts[1:2] == ("objects",):
        return "packs" if parts[2:3] == ("pack",) else "objects"
    return "index" if parts[1:] == ("index",) else "other"


def pages(size: int) -> int:
    return -(-size // PAGE) * PAGE


class GitWrites:
    """`bytes[kind]`: what was written into the repository at `root` (its work tree and `.git`) between
    `__enter__` and `__exit__`, by `kind`, in pages."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bytes: Counter[str] = Counter()
        self._fd = -1
        self._folders: dict[int, Path] = {}
        self._created: set[Path] = set()
        """Files created under their own name, empty so far: counted when closed."""
        self._scanned: set[Path] = set()
        """Files counted by the scan of a new folder, whose arrival may also come as an event."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        for folder, _, _ in os.walk(self.root):
            self._watch(Path(folder))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()
        os.close(self._fd)

    def _watch(self, folder: Path, *, scan: bool = False) -> None:
        descriptor = _libc.inotify_add_watch(
            self._fd, os.fsencode(folder), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
        )
        if descriptor < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder} failed")
        self._folders[descriptor] = folder
        if scan:  # what arrived before the watch did
            for path in folder.iterdir():
                if path.is_dir():
                    self._watch(path, scan=True)
                elif not temporary(path.name):
                    self._scanned.add(path)
                    self._count(path)

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], POLL_SECONDS)
            if ready:
                self._drain()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                descriptor, mask, _, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
                offset += _EVENT.size + length
                folder = self._folders.get(descriptor)
                if folder is not None and name:
                    self._event(folder / os.fsdecode(name), mask)

    def _event(self, path: Path, mask: int) -> None:
        if mask & IN_ISDIR:
            if mask & (IN_CREATE | IN_MOVED_TO):
                self._watch(path, scan=True)
        elif temporary(path.name) or path in self._scanned:
            return
        elif mask & IN_CLOSE_WRITE:
            if path in self._created:
                self._created.discard(path)
                self._count(path)
        elif mask & IN_CREATE and _size(path) == 0:
            self._created.add(path)  # being written under its own name
        else:
            self._count(path)  # linked (IN_CREATE) or renamed (IN_MOVED_TO) into place

    def _count(self, path: Path) -> None:
        size = _size(path)
        if size is not None:
            self.bytes[kind(path, self.root)] += pages(size)


def _size(path: Path) -> int | None:
    """None when the file is gone already (replaced or removed: a packing comes seconds later, not sooner)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None
