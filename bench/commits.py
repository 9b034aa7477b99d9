"""What a remember costs as its folder grows, with the model left out: one service grown to each size in
turn, every memory in one folder as the Debian corpus has them (`global/debian/`), embedded by the hashing
embedder, so what is timed is the store's and the indexes' own work. Beside it, in turns, the bare pygit2
commit of the same file into a copy of the repository (`BareCommit`, run.py's yardstick).

    python bench/commits.py --sizes 10000,60000,100000

The service is built in a temporary folder, removed at the end. Prints JSON: per size, remember's and the
bare commit's p50 / p99 in ms, and each p50 against the first size's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import inside
from baselines import QUERY_GAP, SETTLE, BareCommit, percentiles
from corpus_generated import corpus

from memory_mcp.bootstrap import build_service
from memory_mcp.config import load_settings
from memory_mcp.core import Memory, Scope
from memory_mcp.core.hashing_embedder import HashingEmbedder

SLICE = 2000
REMEMBERS, BLOCK = 60, 10


def numbered_memory(i: int, content: str) -> Memory:
    return Memory(name=f"debian/d{i:06d}", scope=Scope(""), content=content)


def model_free_service(root: Path):
    """A service in `root` embedding with the hashing embedder: the store's and the indexes' work alone."""
    settings = load_settings(
        env={
            "MEMORY_MCP_REPO_PATH": f"{root}/repo",
            "MEMORY_MCP_CACHE_DIR": f"{root}/cache",
            "MEMORY_MCP_MODEL": "",
            "MEMORY_MCP_LOG_LEVEL": "WARNING",
        }
    )
    return build_service(settings, embedder=HashingEmbedder(384))


def grow(service, held: int, size: int) -> None:
    texts = corpus(size)
    for start in range(held, size, SLICE):
        part = [numbered_memory(i, texts[i].content) for i in range(start, min(size, start + SLICE))]
        service.save_many(part, message=f"bench: commits corpus {start}")


def _timed(service, root: Path, size: int) -> dict[str, dict[str, float]]:
    """Remembers in turns with bare commits of the same files, after the copy for those is on disk."""
    commits = BareCommit(root / "repo", root / "bare-commit")
    os.sync()
    remember, bare = [], []
    for start in range(0, REMEMBERS, BLOCK):
        block = [
            numbered_memory(10_000_000 + size + i, f"A fresh note number {i}.")
            for i in range(start, start + BLOCK)
        ]
        time.sleep(SETTLE)
        bare += [commits.commit(*inside.stored_file(m)) for m in block]
        time.sleep(SETTLE)
        for memory in block:
            time.sleep(QUERY_GAP)
            started = time.perf_counter()
            service.remember(name=memory.name, content=memory.content)
            remember.append(time.perf_counter() - started)
    return {"remember": percentiles(remember), "bare_commit": percentiles(bare)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,60000,100000")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="memory-mcp-commits-"))
    service = model_free_service(root)
    results, held = [], 0
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            grow(service, held, size)
            held = size
            results.append({"memories": service.stats().memories, **_timed(service, root, size)})
    finally:
        service.close()
        shutil.rmtree(root, ignore_errors=True)
    first = results[0]
    for result in results:
        for kind in ("remember", "bare_commit"):
            result[kind]["p50_vs_first"] = round(result[kind]["p50_ms"] / first[kind]["p50_ms"], 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
