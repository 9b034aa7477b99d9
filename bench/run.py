"""memory-mcp benchmark: numbers, not assertions.

    .venv/bin/python bench/run.py --model MODEL.gguf [--sizes 1000,10000,100000] [--corpus DIR] [--out FILE]
                                  [--reuse]

For each corpus size it measures, on this machine: bulk import rate next to bare llama.cpp batch embedding
of the same texts, remember and in-process recall latency (recall next to bare llama.cpp embedding of the same
queries), recall over streamable HTTP with the real MCP client, concurrent recall throughput (8 clients),
start-to-ready after a clean stop and after kill -9 (with the model calls made during start-up), peak RSS of
the server, and the size of the derived state on disk. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from memory_mcp.bootstrap import build_service
from memory_mcp.config import load_settings
from memory_mcp.core import Memory, Scope, default_threads

WORDS = (
    "database index latency cache deploy rollback kubernetes cluster node pod service ingress gateway token auth "
    "oauth session cookie rust python golang async thread lock mutex channel queue worker batch stream kafka "
    "postgres sqlite redis vector embedding model prompt agent memory context window budget invoice customer "
    "meeting standup retro sprint roadmap design review incident outage pager alert metric dashboard grafana "
    "backup restore snapshot replica shard partition migration schema column table query plan optimizer"
).split()
IMPORT_SLICE = 2000
"""Memories per `save_many` call; bare llama.cpp embeds an evenly spread sample of each slice before it."""
BARE_PER_SLICE = 200
RECALL_BLOCK = 20
"""Queries per turn when recall and bare llama.cpp take turns."""
QUERY_GAP = 0.003
"""Idle time before every timed query, on both sides: a server idles between requests."""
SETTLE = 0.05
"""Pause before each turn. llama.cpp's OpenMP threads spin for a while after a call; a call made meanwhile
in the other process ran up to 2x slower, so which side ran right after the other decided the ratio."""
STAMP = time.strftime("%Y%m%d%H%M%S")
"""Part of the names this run writes, so a run on an earlier run's corpus (--reuse) writes new memories."""
TOPICS = ["infra", "backend", "frontend", "ml", "ops", "billing", "security", "data"]


def _vocabulary(size: int = 6000, seed: int = 3) -> tuple[list[str], list[float]]:
    """Real technical words plus pronounceable made-up ones, drawn with Zipf weights like natural text."""
    rng = random.Random(seed)
    syllables = [
        "ka",
        "lo",
        "mi",
        "ter",
        "san",
        "dro",
        "vel",
        "qui",
        "par",
        "nex",
        "tor",
        "bel",
        "fin",
        "gra",
    ]
    made_up = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(size)}
    words = WORDS + sorted(made_up - set(WORDS))
    rng.shuffle(words)
    return words, [1.0 / (rank + 1) for rank in range(len(words))]


VOCABULARY, ZIPF = _vocabulary()


def corpus(size: int, seed: int = 7, directory: Path | None = None) -> list[Memory]:
    """Memories of varied length, scope and tags; or the text files of `directory`, cycled to `size`."""
    rng = random.Random(seed)
    texts = [p.read_text(errors="replace") for p in sorted(directory.rglob("*.txt"))] if directory else []
    memories = []
    for i in range(size):
        topic = rng.choice(TOPICS)
        if texts:
            content = texts[i % len(texts)][: 64 * 1024] or "empty"
        else:
            sentences = rng.choices([1, 2, 3, 5, 8, 30], weights=[25, 25, 20, 15, 12, 3])[0]
            content = " ".join(_sentence(rng, topic) for _ in range(sentences))
        scope = rng.choice(["", f"org/{topic}", f"org/{topic}/svc{rng.randint(1, 5)}"])
        tags = tuple(sorted({topic, *rng.sample(WORDS, rng.randint(0, 3))}))
        memories.append(Memory(name=f"{topic}/note-{i}", scope=Scope(scope), content=content, tags=tags))
    return memories


def _sentence(rng: random.Random, topic: str) -> str:
    words = rng.choices(VOCABULARY, weights=ZIPF, k=rng.randint(6, 14))
    return f"The {topic} team noted that {' '.join(words)}."


def queries(count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [
        f"what did the {rng.choice(TOPICS)} team say about {' '.join(rng.choices(VOCABULARY, weights=ZIPF, k=3))}"
        for _ in range(count)
    ]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


class Bare:
    """llama.cpp alone, with the embedder's settings: the yardstick for our overheads.

    It runs in a process of its own: two llama.cpp models driven from two threads of one process each run
    at about half speed (their OpenMP thread pools compete; measured 3.3 ms → 6.4 ms per query). Its timings
    are taken in turns with ours (an import slice, or RECALL_BLOCK queries, at a time), so both see the
    machine in the same state: on a shared VM the same call can take twice as long a minute later.
    """

    def __init__(self, model: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_bare_worker, args=(child, str(model)), daemon=True)
        self._process.start()
        self._connection.recv()  # loaded: loading beside our measurements slowed them (remember p99 ×5)

    def batch(self, texts: list[str]) -> float:
        """Seconds to embed `texts` in one call."""
        return self._ask("batch", texts)

    def queries(self, texts: list[str]) -> list[float]:
        """Seconds to embed each query alone (after SETTLE, with QUERY_GAP before each)."""
        return self._ask("queries", texts)

    def share_over_context(self, texts: list[str]) -> float:
        """Texts longer than the context: llama.cpp truncates them, the server embeds every chunk."""
        return self._ask("share_over_context", texts)

    def _ask(self, kind: str, texts: list[str]) -> Any:
        self._connection.send((kind, texts))
        return self._connection.recv()

    def close(self) -> None:
        self._connection.send(None)
        self._process.join(timeout=60)


def _bare_worker(connection, model: str) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=model,
        embedding=True,
        verbose=False,
        n_ctx=512,
        n_batch=512,
        n_ubatch=512,
        n_threads=default_threads(),
        n_threads_batch=default_threads(),
        flash_attn=True,
    )
    connection.send("ready")

    def timed(call, *args, pause: float = 0.0) -> float:
        time.sleep(pause)
        started = time.perf_counter()
        call(*args)
        return time.perf_counter() - started

    def queries(texts: list[str]) -> list[float]:
        time.sleep(SETTLE)
        return [timed(llm.embed, text, pause=QUERY_GAP) for text in texts]

    answers = {
        "batch": lambda texts: timed(llm.embed, texts),
        "queries": queries,
        "share_over_context": lambda texts: (
            sum(len(llm.tokenize(t.encode())) > 512 for t in texts) / max(len(texts), 1)
        ),
    }
    while (request := connection.recv()) is not None:
        kind, texts = request
        connection.send(answers[kind](texts))
    llm.close()


def in_process(
    settings, memories: list[Memory], queries_: list[str], bare: Bare, *, load: bool = True
) -> dict[str, Any]:
    """Bulk import (unless the corpus is loaded already), then remember and recall latency."""
    service = build_service(settings)
    try:
        imported = bare_texts = bare_seconds = 0.0
        for start in range(0, len(memories) if load else 0, IMPORT_SLICE):
            part = memories[start : start + IMPORT_SLICE]
            sample = [m.embedding_text() for m in part[:: max(1, len(part) // BARE_PER_SLICE)]]
            bare_seconds += bare.batch(sample)
            bare_texts += len(sample)
            started = time.perf_counter()
            service.save_many(part, message=f"bench import {start}")
            imported += time.perf_counter() - started
            print(f"  imported {start + len(part)}/{len(memories)}", file=sys.stderr, flush=True)
        remember = []
        for i in range(100):
            started = time.perf_counter()
            service.remember(
                name=f"bench/remember-{STAMP}-{i}", content=f"A fresh note number {i} about {WORDS[i % 40]}."
            )
            remember.append(time.perf_counter() - started)
        for query in queries_[:10]:  # warm-up
            service.recall(query, scope="all", limit=5)
        recall, bare_query = [], []
        for start in range(0, len(queries_), RECALL_BLOCK):
            block = queries_[start : start + RECALL_BLOCK]
            bare_query += bare.queries(block)
            time.sleep(SETTLE)
            for query in block:
                time.sleep(QUERY_GAP)
                started = time.perf_counter()
                service.recall(query, scope="all", limit=5)
                recall.append(time.perf_counter() - started)
        service.save_snapshot()
    finally:
        service.close()
    return {
        "import_per_s": round(len(memories) / imported, 1) if load else None,
        "bare_batch_texts_per_s": round(bare_texts / bare_seconds, 1) if load else None,
        "share_over_context": round(
            bare.share_over_context([m.embedding_text() for m in memories[:2000]]), 3
        ),
        "remember": percentiles(remember),
        "recall": percentiles(recall),
        "bare_query": percentiles(bare_query),
    }


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "memory_mcp.cli", "serve", "--bind", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> float:
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("server exited")
            time.sleep(0.01)

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return float("nan")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return float("nan")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(timeout=60)


async def http_recall(url: str, queries_: list[str]) -> list[float]:
    samples = []
    async with Client(f"{url}/mcp") as client:
        for query in queries_:
            started = time.perf_counter()
            result = await client.call_tool("recall", {"query": query, "scope": "all"})
            samples.append(time.perf_counter() - started)
            if result.is_error:
                raise RuntimeError(result.content[0].text)
    return samples


async def concurrent_recall(url: str, queries_: list[str], clients: int = 8) -> float:
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for i in range(clients):
            group.start_soon(http_recall, url, queries_[i::clients])
    return len(queries_) / (time.perf_counter() - started)


async def remember_over_http(url: str, count: int) -> None:
    async with Client(f"{url}/mcp") as client:
        for i in range(count):
            await client.call_tool(
                "remember", {"name": f"bench/crash-{STAMP}-{i}", "content": f"written before kill {i}"}
            )


def over_http(env: dict[str, str], queries_: list[str]) -> dict[str, Any]:
    server = Server(env)
    ready_clean = server.wait_ready()
    anyio.run(http_recall, server.url, queries_[:20])  # warm-up
    samples = anyio.run(http_recall, server.url, queries_)
    throughput = anyio.run(concurrent_recall, server.url, queries_)
    anyio.run(remember_over_http, server.url, 20)
    rss = server.peak_rss_mb()
    server.stop(signal.SIGKILL)
    crashed = Server(env)
    ready_after_kill = crashed.wait_ready()
    model_calls = crashed.metric("memory_mcp_embedding_batch_size_count")
    crashed.stop()
    return {
        "recall": percentiles(samples),
        "concurrent_recall_per_s": round(throughput, 1),
        "ready_after_clean_stop_s": round(ready_clean, 2),
        "ready_after_kill_9_s": round(ready_after_kill, 2),
        "model_calls_during_restart_after_kill_9": model_calls,
        "peak_rss_mb": rss,
    }


def _reused_root(size: int) -> Path:
    """The newest corpus of this size a previous run left in the temporary directory."""
    roots = sorted(
        Path(tempfile.gettempdir()).glob(f"memory-mcp-bench-{size}-*"), key=lambda p: p.stat().st_mtime
    )
    if not roots:
        raise SystemExit(f"--reuse: no earlier corpus of {size} memories in {tempfile.gettempdir()}")
    return roots[-1]


def disk_mb(path: Path, skip: frozenset[Path] = frozenset()) -> float:
    files = (f for f in path.rglob("*") if f.is_file() and not skip.intersection(f.parents))
    return round(sum(f.stat().st_size for f in files) / 1e6, 1)


def derived_mb(cache: Path) -> float:
    """The embedding cache and the current snapshot. A replaced snapshot folder stays a minute longer, for a
    process still loading it; counting it would report a moment, not what the server keeps."""
    stale = set()
    for manifest in cache.glob("*/snapshots/manifest.json"):
        current = json.loads(manifest.read_text())["folder"]
        stale |= {f for f in manifest.parent.iterdir() if f.is_dir() and f.name != current}
    return disk_mb(cache, frozenset(stale))


def run(size: int, model: Path, corpus_dir: Path | None, reuse: bool = False) -> dict[str, Any]:
    root = _reused_root(size) if reuse else Path(tempfile.mkdtemp(prefix=f"memory-mcp-bench-{size}-"))
    env = {
        **os.environ,
        "MEMORY_MCP_REPO_PATH": str(root / "repo"),
        "MEMORY_MCP_CACHE_DIR": str(root / "cache"),
        "MEMORY_MCP_MODEL": str(model),
        "MEMORY_MCP_LOG_LEVEL": "WARNING",
    }
    settings = load_settings({}, env)
    memories = corpus(size, directory=corpus_dir)
    queries_ = queries(200)
    # The corpus lives as long as the run: keep the collector from rescanning it. A full collection of it
    # took ~40 ms in the MCP client, and the HTTP timings counted that as the server's latency.
    gc.freeze()
    print(f"[{size}] in-process import, remember, recall (bare llama.cpp interleaved) ...", file=sys.stderr)
    bare = Bare(model)
    try:
        local = in_process(settings, memories, queries_, bare, load=not reuse)
    finally:
        bare.close()
    print(f"[{size}] over HTTP ...", file=sys.stderr, flush=True)
    http = over_http(env, queries_)
    return {
        "memories": size,
        "reused": str(root) if reuse else None,
        "in_process": local,
        "http": http,
        "import_vs_bare_batch": (
            round(local["import_per_s"] / local["bare_batch_texts_per_s"], 2) if not reuse else None
        ),
        "recall_vs_bare_query_p50": round(local["recall"]["p50_ms"] / local["bare_query"]["p50_ms"], 2),
        "derived_state_mb": derived_mb(root / "cache"),
        "repo_mb": disk_mb(root / "repo"),
    }


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        ("bulk import (memories/s)", lambda r: r["in_process"]["import_per_s"]),
        ("  bare llama.cpp batch (texts/s)", lambda r: r["in_process"]["bare_batch_texts_per_s"]),
        ("  ratio (target ≥ 0.8)", lambda r: r["import_vs_bare_batch"]),
        (
            "remember p50 / p99 (ms)",
            lambda r: f"{r['in_process']['remember']['p50_ms']} / {r['in_process']['remember']['p99_ms']}",
        ),
        (
            "recall in-process p50 / p99 (ms)",
            lambda r: f"{r['in_process']['recall']['p50_ms']} / {r['in_process']['recall']['p99_ms']}",
        ),
        ("  bare llama.cpp query p50 (ms)", lambda r: r["in_process"]["bare_query"]["p50_ms"]),
        ("  ratio (target ≤ 1.3)", lambda r: r["recall_vs_bare_query_p50"]),
        (
            "recall HTTP p50 / p99 (ms)",
            lambda r: f"{r['http']['recall']['p50_ms']} / {r['http']['recall']['p99_ms']}",
        ),
        ("concurrent recall, 8 clients (req/s)", lambda r: r["http"]["concurrent_recall_per_s"]),
        ("ready after clean stop (s)", lambda r: r["http"]["ready_after_clean_stop_s"]),
        ("ready after kill -9 (s)", lambda r: r["http"]["ready_after_kill_9_s"]),
        ("  model calls during that start", lambda r: r["http"]["model_calls_during_restart_after_kill_9"]),
        ("server peak RSS (MB)", lambda r: r["http"]["peak_rss_mb"]),
        ("derived state on disk (MB)", lambda r: r["derived_state_mb"]),
        ("git repository on disk (MB)", lambda r: r["repo_mb"]),
    ]
    header = "| measure | " + " | ".join(f"{r['memories']:,}" for r in results) + " |"
    lines = [header, "|---|" + "---|" * len(results)]
    lines += [f"| {label} | " + " | ".join(str(get(r)) for r in results) + " |" for label, get in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=os.environ.get("MEMORY_MCP_MODEL"), required=False)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument(
        "--corpus", type=Path, help="a directory of .txt files to use instead of generated text"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure again on the corpora an earlier run left in the temporary directory, without importing",
    )
    args = parser.parse_args()
    if args.model is None:
        parser.error("give --model or set MEMORY_MCP_MODEL")
    machine = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "model": args.model.name,
        "date": time.strftime("%Y-%m-%d"),
    }
    results = []
    for size in args.sizes.split(","):
        results.append(run(int(size), args.model, args.corpus, args.reuse))
        args.out.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")  # so far
        print(table(results), flush=True)


if __name__ == "__main__":
    main()
