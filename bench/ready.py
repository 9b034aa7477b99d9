"""Start-to-ready of `memory-mcp serve` on a corpus an earlier `run.py` left, repeated: after a clean stop
and after kill -9, with /readyz's seconds per part and the model calls made while starting.

    .venv/bin/python bench/ready.py DIR [--rounds N] [--label TEXT]

DIR is a run's temporary directory (`memory-mcp-bench-debian-10000-*`, holding repo/ and cache/). One start
first warms the page cache and stops cleanly; then each round starts (after a clean stop), is killed with
SIGKILL, starts again (after kill -9) and stops cleanly. The load average is printed beside every round:
on this shared VM the times follow it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import urllib.request
from pathlib import Path

from served import Server


def _start(env: dict[str, str], stop: int) -> tuple[float, dict[str, float], float]:
    server = Server(env)
    try:
        ready = server.wait_ready()
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=5) as response:
            parts = {name: part.get("seconds") for name, part in json.loads(response.read())["parts"].items()}
        calls = server.metric("memory_mcp_embedding_batch_size_count")
    finally:
        server.stop(stop)
    return round(ready, 2), parts, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="")
    parser.add_argument("--model", default=os.environ.get("MEMORY_MCP_MODEL"))
    args = parser.parse_args()
    env = {
        **os.environ,
        "MEMORY_MCP_REPO_PATH": str(args.dir / "repo"),
        "MEMORY_MCP_CACHE_DIR": str(args.dir / "cache"),
        "MEMORY_MCP_MODEL": args.model,
        "MEMORY_MCP_LOG_LEVEL": "WARNING",
    }
    _start(env, signal.SIGTERM)
    clean, killed = [], []
    for _ in range(args.rounds):
        load = os.getloadavg()[0]
        after_stop, parts_stop, _ = _start(env, signal.SIGKILL)
        after_kill, parts_kill, calls = _start(env, signal.SIGTERM)
        clean.append(after_stop)
        killed.append(after_kill)
        print(json.dumps({
            "label": args.label, "load_1min": round(load, 2), "after_clean_stop_s": after_stop,
            "parts": parts_stop, "after_kill_9_s": after_kill, "parts_after_kill": parts_kill,
            "model_calls_after_kill": calls,
        }), flush=True)
    print(f"{args.label}: median after clean stop {statistics.median(clean)} s, after kill -9 "
          f"{statistics.median(killed)} s", flush=True)


if __name__ == "__main__":
    main()
