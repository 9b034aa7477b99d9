"""`bench/stall.py`'s ticker sees a call that holds the GIL as a stall as long as the call, and the same call
run by `run_forked` as almost none. The call is a regular expression that backtracks for a quarter of a
second: `re` never lets go of the GIL while it matches."""

from __future__ import annotations

import re
import time

from stall import Ticker

from memory_mcp.forked import run_forked

BACKTRACKING = re.compile(r"(a+)+$")


def hold_the_gil() -> float:
    started = time.perf_counter()
    assert BACKTRACKING.match("a" * 22 + "b") is None
    return time.perf_counter() - started


def test_the_ticker_sees_a_call_that_holds_the_gil() -> None:
    ticker = Ticker()
    time.sleep(0.05)
    took = hold_the_gil()
    time.sleep(0.05)
    ticker.stop()
    assert took > 0.1 and ticker.worst > 0.8 * took


def test_a_forked_call_leaves_the_ticker_running() -> None:
    took = hold_the_gil()
    ticker = Ticker()
    time.sleep(0.05)
    started = time.perf_counter()
    run_forked(hold_the_gil)
    forked = time.perf_counter() - started
    ticker.stop()
    assert forked > 0.5 * took, "the child did not run the call"
    assert ticker.worst < 0.5 * took, f"stalled {ticker.worst * 1000:.0f} ms of {took * 1000:.0f}"
