"""Bytes a process writes into a git directory while a block runs, seen file by file through inotify.

`/proc/<pid>/io` counts the server's writes to the repository and to the cache directory together, and the
repository's growth no longer tells git's share once the store packs: a packing removes the loose objects it
packed (megabytes each in a large folder) after they were written and counted. Every file git writes is
written once and never changed (loose objects, packs and their indexes, the git index, refs), each under a
temporary name and then linked, or renamed, into place (libgit2 links, and renames over a file that exists),
so its bytes are its size when it arrives: each arrival in a watched folder (the git directory itself, for
the index; `objects` and its folders) counts the file once. Refs (41 bytes a commit) and reflogs, appended
in place, are not counted.
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

IN_MOVED_TO: Final = 0x080
IN_CREATE: Final = 0x100
IN_ISDIR: Final = 0x40000000
IN_NONBLOCK: Final = os.O_NONBLOCK
IN_CLOEXEC: Final = os.O_CLOEXEC
_EVENT: Final = struct.Struct("iIII")
POLL_SECONDS: Final = 0.05

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def temporary(name: str) -> bool:
    """libgit2's names for files being written (`tmp_object_git2_*`, `pack_git2_*`, `*.lock`), and
    `files.write_atomic`'s (`.<name>.*.tmp`)."""
    return name.startswith(("tmp_", "pack_git2_", ".")) or name.endswith((".lock", ".tmp"))


def kind(path: Path, git_dir: Path) -> str:
    """What a written file is: 'objects' (loose), 'packs', 'index' or 'other' (refs, logs, config)."""
    parts = path.relative_to(git_dir).parts
    if parts[0] == "objects":
        return "packs" if parts[1:2] == ("pack",) else "objects"
    return "index" if parts == ("index",) else "other"


class GitWrites:
    """`bytes[kind]`: what was written into `git_dir` between `__enter__` and `__exit__`, by `kind`."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir
        self.bytes: Counter[str] = Counter()
        self._fd = -1
        self._folders: dict[int, Path] = {}
        self._scanned: set[Path] = set()
        """Files counted by the scan of a new folder, whose rename may also come as an event."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._watch(self.git_dir)
        self._watch(self.git_dir / "objects")
        for folder in sorted((self.git_dir / "objects").iterdir()):
            if folder.is_dir():
                self._watch(folder)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()
        os.close(self._fd)

    def _watch(self, folder: Path, *, scan: bool = False) -> None:
        mask = IN_MOVED_TO | IN_CREATE
        descriptor = _libc.inotify_add_watch(self._fd, os.fsencode(folder), mask)
        if descriptor < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder} failed")
        self._folders[descriptor] = folder
        if scan:  # files that arrived before the watch did
            for path in folder.iterdir():
                if not temporary(path.name):
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
            if mask & IN_CREATE and path.parent == self.git_dir / "objects":
                self._watch(path, scan=True)
        elif not temporary(path.name) and path not in self._scanned:
            self._count(path)  # linked (IN_CREATE) or renamed (IN_MOVED_TO) into place

    def _count(self, path: Path) -> None:
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # replaced or removed already (a packing runs seconds later, not sooner)
            return
        self.bytes[kind(path, self.git_dir)] += size
