"""`bench/stall.py`'s ticker sees a call that holds the GIL as a stall as long as the call, and the same call
run by `run_forked` as almost none. The call is a regular expression that backtracks for at least 0.15 s
(`HOLD`): `re` never lets go of the GIL while it matches. Its service mode saves a service's own graph."""

from __future__ import annotations

import re
import time
from functools import cache
from pathlib import Path

from corpus_generated import corpus
from inside import save_service_graph
from stall import Ticker

from memory_mcp.bootstrap import build_service
from memory_mcp.config import load_settings
from memory_mcp.core.hashing_embedder import HashingEmbedder
from memory_mcp.forked import run_forked

BACKTRACKING = re.compile(r"(a+)+$")
HOLD = 0.15
"""Seconds the call should hold the GIL at the least: its length is found on this machine, each `a` more
doubling the time (22 of them took 0.25 s on one VM and 0.096 s on a faster one)."""


def _match(length: int) -> float:
    started = time.perf_counter()
    assert BACKTRACKING.match("a" * length + "b") is None
    return time.perf_counter() - started


@cache
def _length() -> int:
    length = 16
    while _match(length) < HOLD:
        length += 1
    return length


def hold_the_gil() -> float:
    return _match(_length())


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
    run_forked(hold_the_gil, timeout=60)
    forked = time.perf_counter() - started
    ticker.stop()
    assert forked > 0.5 * took, "the child did not run the call"
    assert ticker.worst < 0.5 * took, f"stalled {ticker.worst * 1000:.0f} ms of {took * 1000:.0f}"


def test_the_service_mode_saves_the_services_own_graph_both_ways(tmp_path: Path) -> None:
    settings = load_settings(
        env={"MEMORY_MCP_REPO_PATH": str(tmp_path / "repo"), "MEMORY_MCP_CACHE_DIR": str(tmp_path / "cache"),
             "MEMORY_MCP_MODEL": ""}
    )
    service = build_service(settings, embedder=HashingEmbedder())
    try:
        service.save_many(corpus(300), message="corpus")
        graphs = []
        for forked in (True, False, True):
            assert save_service_graph(service, forked=forked)
            (graph,) = {p for p in (tmp_path / "cache").rglob("graph-*.hnsw")} - set(graphs)
            graphs.append(graph)
    finally:
        service.close()
    assert len(set(graphs)) == 3, "each save wrote a graph file of its own"
