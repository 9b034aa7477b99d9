"""Run one long call that holds the GIL in a forked child, so the process's other threads keep running.

A native call that never releases the GIL (hnswlib's `save_index` writes a whole graph that way) stalls every
thread for as long as it runs. A forked child runs it on a copy-on-write snapshot of memory while the parent's
calling thread waits outside the GIL. The fork itself holds the GIL only while the kernel copies page tables.

The child is made harmless: it closes every inherited descriptor but its report pipe (so it holds no lock,
socket or database open past the fork), ignores the signals meant for its parent, and dies with its parent's
thread (a kill -9 of the server leaves no orphan writing). It runs at the lowest CPU priority, taking what
requests leave (`idle_priority`). It reports an error's text and exits with `os._exit`, running no
finalizer and no at-exit handler.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import time
import warnings
from collections.abc import Callable
from typing import NoReturn

from memory_mcp.idle_priority import lower_this_thread

PR_SET_PDEATHSIG = 1
FORKS = sys.platform == "linux"
"""Only Linux gives a child a signal when its parent dies; elsewhere the call runs in this process (and has
no timeout)."""
_libc = ctypes.CDLL(None, use_errno=True) if FORKS else None


class ChildFailed(OSError):
    """The child did not finish the call: the text it reported, or how it ended."""


def run_forked(call: Callable[[], object], timeout: float) -> None:
    """Run `call` in a forked child and return once it has finished; raise `ChildFailed` if it did not,
    killing a child still running after `timeout` seconds (so a hung child never holds its caller).

    The child sees memory as it was at the fork, so the caller keeps what `call` reads unchanged until the
    fork returns (only until then: the child's copy is its own)."""
    if not FORKS:
        call()
        return
    read, write = os.pipe()
    parent = os.getpid()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork in a multi-threaded process
            pid = os.fork()
    except BaseException:
        os.close(read)
        os.close(write)
        raise
    if pid == 0:
        _child(call, write, parent)
    os.close(write)
    report = _report(read, timeout)
    if report is None:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if report is None:
        raise ChildFailed(f"the child process did not finish within {timeout:g} s and was killed")
    code = os.waitstatus_to_exitcode(status)
    if code or report:
        ended = f"exit status {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
        raise ChildFailed(report.decode(errors="replace") or f"the child process ended with {ended}")


def _report(read: int, timeout: float) -> bytes | None:
    """All the child writes to its pipe until it exits (closing the pipe); None if that takes too long."""
    deadline, report = time.monotonic() + timeout, b""
    with os.fdopen(read, "rb", buffering=0) as pipe:
        while select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = pipe.read(4096)
            if not chunk:
                return report
            report += chunk
    return None


def _child(call: Callable[[], object], report: int, parent: int) -> NoReturn:
    code = 1
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        assert _libc is not None
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(code)
        os.closerange(3, report)
        os.closerange(report + 1, os.sysconf("SC_OPEN_MAX"))
        lower_this_thread()  # the child's only thread: its work is background work
        call()
        code = 0
    except BaseException as error:  # noqa: BLE001 - every failure is reported to the parent
        os.write(report, f"{type(error).__name__}: {error}".encode())
    finally:
        os._exit(code)
