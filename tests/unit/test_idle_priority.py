"""Background work runs at the lowest CPU priority on a thread of its own, and the caller keeps its own."""

from __future__ import annotations

import os
import threading

import pytest

from memory_mcp.idle_priority import LOWEST, run_lowered


def nice() -> int:
    """The calling thread's nice value (Linux keeps one per thread)."""
    return os.getpriority(os.PRIO_PROCESS, 0)


def test_a_lowered_call_runs_at_the_lowest_priority_and_returns_its_result() -> None:
    caller, seen = nice(), {}

    def work() -> str:
        seen["nice"], seen["thread"] = nice(), threading.get_native_id()
        return "done"

    assert run_lowered(work, "test-lowered") == "done"
    assert seen["nice"] == LOWEST
    assert seen["thread"] != threading.get_native_id(), "the call ran on the caller's thread"
    assert nice() == caller, "the caller's priority changed"


def test_a_lowered_call_raises_its_exception_in_the_caller() -> None:
    def work() -> None:
        raise LookupError("from the lowered thread")

    with pytest.raises(LookupError, match="from the lowered thread"):
        run_lowered(work, "test-lowered")


def test_threads_a_lowered_call_starts_inherit_its_priority() -> None:
    """libgit2 or llama.cpp threads started from background work must not outrank it."""
    seen = []

    def work() -> None:
        inner = threading.Thread(target=lambda: seen.append(nice()))
        inner.start()
        inner.join()

    run_lowered(work, "test-lowered")
    assert seen == [LOWEST]
