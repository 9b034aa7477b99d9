"""The worst requests a read-only token can make, measured: server CPU seconds and peak RSS per attack.

    .venv/bin/python bench/hostile.py --model MODEL.gguf [--memories 200] [--out FILE]

Starts `memory-mcp serve` with a tokens file holding one read-only token, fills the repository with a few
hundred memories (as the writer), then sends each attack with the read-only token and reads the server's
CPU time (/proc/PID/stat) and peak RSS (VmHWM) before and after. Numbers, not assertions; results are in
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

READER = "reader-secret-0123456789abcdef"
WRITER = "writer-secret-0123456789abcdef"
CLOCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


def rss_mb(pid: int, key: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def post(port: int, token: str, body: bytes, timeout: float = 120) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json, text/event-stream")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return -1


def call(name: str, arguments: dict) -> bytes:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    return json.dumps(message).encode()


def attacks() -> dict[str, list[bytes]]:
    tags_60k = [f"tag-{i}" for i in range(60_000)]
    big_query = "storage " * 950_000  # ~7.6 MiB in one string
    return {
        "recall, 60k tags (0.56 MiB)": [call("recall", {"query": "x", "tags": tags_60k})],
        "recall, 400k tags (3.8 MiB)": [call("recall", {"query": "x", "tags": [f"t{i}" for i in range(400_000)]})],
        "recall, largest valid (4096-char query, 32 tags, limit 100)": [
            call("recall", {"query": "storage cache " * 292, "tags": [f"t{i}" for i in range(32)], "limit": 100})
        ],
        "list, every field of 100 memories": [call("list", {"limit": 100, "fields": ["content", "id", "name"]})],
        "list, cursor of 100k '['": [call("list", {"cursor": "[" * 100_000})],
        "30 concurrent 7.6 MiB bodies": [call("recall", {"query": big_query})] * 30,
        "8 MiB of nested JSON arrays": [b"[" * (4 * 1024 * 1024) + b"]" * (4 * 1024 * 1024 - 16)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--memories", type=int, default=200)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results-hostile.json")))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="memory-mcp-hostile-"))
    tokens = root / "tokens.toml"
    tokens.write_text(
        f'[[token]]\nname = "writer"\ntoken = "{WRITER}"\n\n'
        f'[[token]]\nname = "reader"\ntoken = "{READER}"\nread_only = true\n'
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_MCP_")}
    env.update(
        MEMORY_MCP_REPO_PATH=str(root / "repo"),
        MEMORY_MCP_CACHE_DIR=str(root / "cache"),
        MEMORY_MCP_MODEL=args.model,
        MEMORY_MCP_TOKENS_FILE=str(tokens),
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "memory_mcp.cli", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5):
                    break
            except OSError:
                time.sleep(0.2)
        for i in range(args.memories):
            text = f"Memory {i} about storage engines, caches and replication, part {i % 17}. " * 8
            post(port, WRITER, call("remember", {"name": f"m-{i}", "content": text}))
        results = {}
        for label, bodies in attacks().items():
            cpu, started = cpu_seconds(server.pid), time.perf_counter()
            statuses: list[int] = []
            threads = [threading.Thread(target=lambda b=b: statuses.append(post(port, READER, b))) for b in bodies]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            results[label] = {
                "server_cpu_s": round(cpu_seconds(server.pid) - cpu, 3),
                "wall_s": round(time.perf_counter() - started, 3),
                "peak_rss_mb": round(rss_mb(server.pid), 1),
                "rss_now_mb": round(rss_mb(server.pid, "VmRSS"), 1),
                "statuses": sorted(set(statuses)),
            }
            print(f"{label:62} {json.dumps(results[label])}", flush=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
