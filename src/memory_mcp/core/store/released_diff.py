"""libgit2's diff of two trees, called with the GIL released.

pygit2 holds the GIL for all of `Tree.diff_to_tree`, including the reading of every subtree that differs from
the packs. At 60,000 memories in one folder that is ~25 ms a side, and the revision index reads a diff for
every commit it did not see made (after a kill -9, after a pull): back to back, they held every writer up for
seconds. The same libgit2 function called through `ctypes` releases the GIL for the call, and pygit2 wraps
the `git_diff` it returns as usual.

The library is the one pygit2 already loaded (found in this process's memory map, so the same instance and
the same pointers); where there is none to find (not Linux, or libgit2 linked statically), pygit2's own call
is used.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pygit2

log = logging.getLogger(__name__)

MAPS = Path("/proc/self/maps")


def diff_trees(repo: pygit2.Repository, old: pygit2.Tree, new: pygit2.Tree) -> pygit2.Diff:
    """`old.diff_to_tree(new)` (default options), the GIL released while libgit2 reads and compares."""
    function = _diff_function()
    pointers = [_address(repo), _address(old), _address(new)]
    if function is None or not all(pointers):  # a tree pygit2 has not loaded yet: its own call loads it
        return old.diff_to_tree(new)
    out = ctypes.c_void_p()
    error = function(ctypes.byref(out), *pointers, None)
    if error < 0 or out.value is None:
        return old.diff_to_tree(new)  # pygit2 raises libgit2's error with its message
    return pygit2.Diff.from_c(out.value.to_bytes(ctypes.sizeof(ctypes.c_void_p), sys.byteorder), repo)


def releases_gil() -> bool:
    """Whether `diff_trees` can release the GIL in this process."""
    return _diff_function() is not None


@functools.cache
def _diff_function() -> Callable[..., int] | None:
    path = _loaded_libgit2()
    if path is None:
        log.debug("no shared libgit2 in this process: tree diffs hold the GIL")
        return None
    try:
        function = ctypes.CDLL(path).git_diff_tree_to_tree
    except (OSError, AttributeError) as exc:
        log.debug("could not call libgit2 at %s (tree diffs hold the GIL): %s", path, exc)
        return None
    function.argtypes = [ctypes.POINTER(ctypes.c_void_p)] + [ctypes.c_void_p] * 4
    function.restype = ctypes.c_int
    return function


def _loaded_libgit2() -> str | None:
    """The path of the libgit2 shared library mapped into this process (by pygit2's import), if any."""
    try:
        lines = MAPS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(maxsplit=5)  # address, permissions, offset, device, inode, path
        if len(fields) == 6 and Path(fields[5]).name.startswith("libgit2") and ".so" in fields[5]:
            return fields[5]
    return None


def _address(obj: pygit2.Repository | pygit2.Tree) -> int:
    """The libgit2 pointer a pygit2 object wraps (pygit2's own bridge to its cffi calls)."""
    return int.from_bytes(obj._pointer, sys.byteorder)  # type: ignore[attr-defined]
