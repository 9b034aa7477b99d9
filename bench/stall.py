"""How long a vector graph save stops the process's other threads: hnswlib in this process, against the
same call in a forked child (`run_forked`, which `VectorIndex.save` uses from `FORK_FROM_BYTES` on).

    python bench/stall.py --vectors 100000 --heap-mb 200

Builds a graph of random unit vectors with the server's parameters, then times each kind of save while a
thread sleeps 1 ms in a loop; a stall is how much later than asked that thread woke. `--heap-mb` adds small
Python objects first, standing in for the server's heap: a fork's cost grows with the pages it must share.
With `--service DIR`, the same for the server's own save (`MemoryService`'s, made due at once) in a
service holding `--vectors` generated memories embedded by the hashing embedder, built in DIR on first
use (about 5 minutes at 100k) and reopened, so its memory is a server's.

Prints JSON: per kind, each round's save time and the longest stall beside it, in ms; `idle_50ms` is the
same thread's longest stall while the caller just sleeps 50 ms, the machine's own jitter.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from corpus_generated import corpus
from inside import random_graph, save_forked, save_in_process, save_service_graph

from memory_mcp.bootstrap import build_service
from memory_mcp.config import load_settings
from memory_mcp.core.hashing_embedder import HashingEmbedder

TICK = 0.001


class Ticker:
    """A thread that asks to sleep `TICK` at a time and records how much later than that it woke."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(TICK)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - TICK)
            last = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(save, path: str, rounds: int) -> list[dict[str, float]]:
    ticker, results = Ticker(), []
    for _ in range(rounds):
        time.sleep(0.2)
        ticker.worst = 0.0
        started = time.perf_counter()
        save(path)
        took = time.perf_counter() - started
        time.sleep(0.01)
        results.append({"save_ms": round(took * 1000, 1), "longest_stall_ms": round(ticker.worst * 1000, 1)})
    ticker.stop()
    return results


def graph_report(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    index = random_graph(args.vectors, args.dimensions)
    built = time.perf_counter() - started
    heap = [str(i) * 4 for i in range(args.heap_mb * 2**20 // 64)]
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "graph.hnsw")
        return {
            "vectors": args.vectors,
            "build_s": round(built, 1),
            "heap_objects": len(heap),
            "rss_mb": round(rss_mb(), 1),
            "idle_50ms": measure(lambda _: time.sleep(0.05), path, args.rounds),
            "in_process": measure(lambda to: save_in_process(index, to), path, args.rounds),
            "forked": measure(lambda to: save_forked(index, to), path, args.rounds),
            "graph_mb": round(Path(path).stat().st_size / 2**20, 1),
        }


def service_report(args: argparse.Namespace) -> dict:
    """The server's own save in a service of `--vectors` generated memories kept in `--service`."""
    root = args.service
    settings = load_settings(
        env={"MEMORY_MCP_REPO_PATH": f"{root}/repo", "MEMORY_MCP_CACHE_DIR": f"{root}/cache",
             "MEMORY_MCP_MODEL": "", "MEMORY_MCP_LOG_LEVEL": "WARNING"}
    )
    embedder = HashingEmbedder(args.dimensions)
    service = build_service(settings, embedder=embedder)
    held = service.stats().memories
    if held < args.vectors:
        memories = corpus(args.vectors)[held:]
        for start in range(0, len(memories), 1000):
            service.save_many(memories[start : start + 1000], message=f"bench: stall corpus {held + start}")
        service.close()
        service = build_service(settings, embedder=embedder)
    try:
        return {
            "memories": service.stats().memories,
            "rss_mb": round(rss_mb(), 1),
            "idle_50ms": measure(lambda _: time.sleep(0.05), "", args.rounds),
            "in_process": measure(lambda _: save_service_graph(service, forked=False), "", args.rounds),
            "forked": measure(lambda _: save_service_graph(service, forked=True), "", args.rounds),
        }
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vectors", type=int, default=10_000)
    parser.add_argument("--dimensions", type=int, default=384)
    parser.add_argument("--heap-mb", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--service", type=Path, help="measure a service's save; its corpus is kept here")
    args = parser.parse_args()
    report = service_report(args) if args.service else graph_report(args)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
