"""Background work at the lowest CPU priority, so that it takes only the CPU that requests leave.

On two cores, one busy background thread beside llama.cpp's two threads slowed every embedding several-fold:
a model call waits at each layer's barrier for its slowest thread, and the scheduler shares the cores three
ways. At nice 19 the background thread gets about 1.5% of a core while requests want both, and all of it when
they are idle. Linux keeps a nice value per thread (the one place this matters here); elsewhere the value is
the whole process's, so nothing is lowered there.

Only work that runs outside the GIL is lowered: a low-priority thread holding the GIL would make every
thread wait for it, which is worse than sharing the CPU.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Final, TypeVar

T = TypeVar("T")
LOWEST: Final = 19
PER_THREAD = sys.platform == "linux"


def lower_this_thread() -> None:
    """The calling thread (with the threads it starts from now on) at the lowest priority, for good: an
    unprivileged process cannot raise it again. Where nice values are not per thread, nothing changes."""
    if PER_THREAD:
        os.setpriority(os.PRIO_PROCESS, 0, LOWEST)


def run_lowered(call: Callable[[], T], name: str) -> T:
    """`call()` on a new thread at the lowest priority, waiting for it (outside the GIL) and returning its
    result or raising its exception."""
    outcome: Future[T] = Future()

    def run() -> None:
        lower_this_thread()
        try:
            outcome.set_result(call())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return outcome.result()
