"""memory-mcp benchmark: numbers, not assertions.

    .venv/bin/python bench/run.py --model MODEL.gguf [--corpus debian|generated|DIR]
                                  [--sizes 1000,10000,full] [--out FILE] [--reuse]

For each corpus size it measures, on this machine, each figure beside its yardstick timed in turns with it:
- bulk import rate, next to bare llama.cpp batch embedding of the same texts;
- quality (real corpus): R@1, R@5 and MRR@10 of recall beside BM25, vector-only and RRF baselines
  (`quality.py`) over the same texts and vectors;
- in-process recall, and recall over streamable HTTP with the real MCP client and with a bare one (the
  server's share of the call), next to bare llama.cpp embedding the same queries;
- remember over HTTP, next to a bare embedding of the same text plus a bare pygit2 commit of one file into
  a copy of the server's repository (`baselines.py`);
- bytes the server process writes per remember (/proc/<pid>/io) over a window spanning snapshot saves, and
  remember p99 in that window;
- concurrent recall throughput, start-to-ready after a clean stop and after kill -9 (with the model calls
  made during start-up), peak RSS, and the size of the derived state on disk.
Prints a table and the targets (✓/✗ with the ratio) and writes JSON. `--reuse` measures again on the corpus
an earlier run left in the temporary directory (sizes without one are built).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import inside
import quality
import report
from baselines import QUERY_GAP, SETTLE, Bare, BareCommit, percentiles
from corpora import STAMP, Corpus, debian, fresh_memory, generated
from git_writes import GitWrites
from mcp import Client
from served import Server, Session, Wire

from memory_mcp.bootstrap import build_service
from memory_mcp.config import load_settings
from memory_mcp.core import Memory

IMPORT_SLICE = 2000
"""Memories per `save_many` call; bare llama.cpp embeds an evenly spread sample of each slice before it."""
BARE_PER_SLICE = 200
RECALL_BLOCK = 20
"""Queries per turn when recall and bare llama.cpp take turns."""
REMEMBER_BLOCK = 10
REMEMBERS = 80
"""Timed remembers over HTTP (in turns with their yardstick), and in-process."""
IO_WRITES, IO_IDLE = 40.0, 40.0
"""The write window: remembers for IO_WRITES seconds, then IO_IDLE idle (a snapshot save comes every 30 s
while writes happen), with the process's written bytes read before and after."""


# ------------------------------------------------------------------ in-process


def in_process(settings, corpus: Corpus, bare: Bare, *, load: bool) -> dict[str, Any]:
    """Bulk import (unless the corpus is loaded already), quality, then remember and recall latency."""
    service = build_service(settings)
    try:
        imported = bare_texts = bare_seconds = 0.0
        memories = corpus.memories
        for start in range(0, len(memories) if load else 0, IMPORT_SLICE):
            part = memories[start : start + IMPORT_SLICE]
            sample = [m.embedding_text() for m in part[:: max(1, len(part) // BARE_PER_SLICE)]]
            bare_seconds += bare.batch(sample)
            bare_texts += len(sample)
            started = time.perf_counter()
            service.save_many(part, message=f"bench import {start}")
            imported += time.perf_counter() - started
            print(f"  imported {start + len(part)}/{len(memories)}", file=sys.stderr, flush=True)
        scores = _quality(service, corpus) if corpus.relevant is not None else None
        remember = []
        for i in range(REMEMBERS):
            memory = fresh_memory(corpus, i, "local")
            started = time.perf_counter()
            service.remember(name=memory.name, content=memory.content)
            remember.append(time.perf_counter() - started)
        queries = corpus.timed_queries
        for query in queries[:10]:  # warm-up
            service.recall(query, scope="all", limit=5)
        recall, bare_query = [], []
        for start in range(0, len(queries), RECALL_BLOCK):
            block = queries[start : start + RECALL_BLOCK]
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
        "quality": scores,
        "remember": percentiles(remember),
        "recall": percentiles(recall),
        "bare_query": percentiles(bare_query),
    }


def _quality(service, corpus: Corpus) -> dict[str, Any]:
    """Recall (limit 10) and the baselines over the vectors the server holds (read back from its cache)."""
    print(f"  quality over {len(corpus.queries)} queries ...", file=sys.stderr, flush=True)
    position = {m.name: i for i, m in enumerate(corpus.memories)}

    def recall(query: str) -> list[int]:
        hits = service.recall(query, scope="all", limit=quality.TOP)
        return [position[h.entry.memory.name] for h in hits if h.entry.memory.name in position]

    scores = quality.evaluate(
        [m.embedding_text() for m in corpus.memories],
        inside.memory_vectors(service, corpus.memories),
        corpus.queries,
        [inside.query_vector(service, q) for q in corpus.queries],
        corpus.relevant,
        recall,
    )
    return {"queries": len(corpus.queries), **scores, "beats_best_baseline": quality.beats_baselines(scores)}


# ------------------------------------------------------------------ over HTTP


async def _http_phase(
    server: Server, corpus: Corpus, bare: Bare, root: Path, io_window: bool
) -> dict[str, Any]:
    wire = Wire(server.url)
    async with Client(f"{server.url}/mcp") as client:
        session = Session(client)
        queries = corpus.timed_queries
        for query in queries[:20]:  # warm-up
            await session.recall(query)
            await wire.recall(query)
        recall, recall_wire, bare_query = [], [], []
        for start in range(0, len(queries), RECALL_BLOCK):
            block = queries[start : start + RECALL_BLOCK]
            bare_query += bare.queries(block)
            for timed, caller in ((recall, session), (recall_wire, wire)):
                time.sleep(SETTLE)
                for query in block:
                    time.sleep(QUERY_GAP)
                    timed.append(await caller.recall(query))
        remember, remember_wire, bare_remember = await _remember_in_turns(session, wire, corpus, bare, root)
        wire.close()
        window = await _write_window(server, session, corpus, root) if io_window else None
    return {
        "recall": percentiles(recall),
        "recall_wire": percentiles(recall_wire),
        "bare_query": percentiles(bare_query),
        "remember": percentiles(remember),
        "remember_wire": percentiles(remember_wire),
        "bare_remember": bare_remember,
        "write_window": window,
    }


async def _remember_in_turns(
    session: Session, wire: Wire, corpus: Corpus, bare: Bare, root: Path
) -> tuple[list[float], list[float], dict[str, Any]]:
    """Remembers over HTTP from the SDK's client and the bare one (other names, so no vector is cached) in
    turns with their yardstick: bare llama.cpp embedding each text, and a bare pygit2 commit of its file."""
    commits = BareCommit(root / "repo", root / "bare-commit")
    remember, remember_wire, embed, commit = [], [], [], []
    for start in range(0, REMEMBERS, REMEMBER_BLOCK):
        block = [fresh_memory(corpus, i, "http") for i in range(start, start + REMEMBER_BLOCK)]
        embed += bare.queries([m.embedding_text() for m in block])
        commit += [commits.commit(*inside.stored_file(m)) for m in block]
        for timed, caller, kind in ((remember, session, "http"), (remember_wire, wire, "wire")):
            time.sleep(SETTLE)
            for i in range(start, start + REMEMBER_BLOCK):
                time.sleep(QUERY_GAP)
                timed.append(await caller.remember(*_named(fresh_memory(corpus, i, kind))))
    sums = [e + c for e, c in zip(embed, commit, strict=True)]
    yardstick = {"embed": percentiles(embed), "commit": percentiles(commit), "sum": percentiles(sums)}
    return remember, remember_wire, yardstick


async def _write_window(server: Server, session: Session, corpus: Corpus, root: Path) -> dict[str, Any]:
    """Remembers for IO_WRITES seconds, then IO_IDLE idle: the process's written bytes per remember (net of
    pages deleted before writeback), with the repository's share apart, file by file
    (`git_writes.GitWrites`): objects, packs, refs and the work tree's files, and the git index, which
    libgit2 rewrites whole (937 KB at 10k) but not at every commit. Whether a rewrite reaches the disk
    before the next replaces it is not known here, so the derived state's share is given as a range: the
    rest less every index rewrite seen, and the rest with none of them. And the remember latencies
    meanwhile, which include any wait on a snapshot save or a packing."""
    print("  write window ...", file=sys.stderr, flush=True)
    written, repo = server.written_bytes(), _disk_bytes(root / "repo")
    latencies: list[float] = []
    deadline = time.perf_counter() + IO_WRITES
    with GitWrites(root / "repo") as git:
        while time.perf_counter() < deadline:
            latencies.append(await session.remember(*_named(fresh_memory(corpus, len(latencies), "io"))))
        await anyio.sleep(IO_IDLE)
    total = server.written_bytes() - written
    index = git.bytes["index"]
    objects = sum(git.bytes.values()) - index  # everything else git and the work tree received
    per = len(latencies) * 1024
    return {
        "remembers": len(latencies),
        "seconds": IO_WRITES + IO_IDLE,
        "written_per_remember_kb": round(total / per, 1),
        "git_per_remember_kb": round(objects / per, 1),
        "git_packs_per_remember_kb": round(git.bytes["packs"] / per, 1),
        "git_index_per_remember_kb": round(index / per, 1),
        "repo_growth_per_remember_kb": round((_disk_bytes(root / "repo") - repo) / per, 1),
        "derived_per_remember_kb": round(max(0, total - objects) / per, 1),
        "derived_net_of_index_per_remember_kb": round(max(0, total - objects - index) / per, 1),
        "remember": percentiles(latencies),
        "wait_metrics": {k: v for k, v in server.metrics().items() if "wait" in k and "queue" not in k},
    }


def _named(memory: Memory) -> tuple[str, str]:
    return memory.name, memory.content


async def _concurrent_recall(url: str, queries: list[str], clients: int = 8) -> float:
    async def one(part: list[str]) -> None:
        async with Client(f"{url}/mcp") as client:
            session = Session(client)
            for query in part:
                await session.recall(query)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for i in range(clients):
            group.start_soon(one, queries[i::clients])
    return len(queries) / (time.perf_counter() - started)


async def _remember_some(url: str, count: int) -> None:
    async with Client(f"{url}/mcp") as client:
        session = Session(client)
        for i in range(count):
            await session.remember(f"bench/crash-{STAMP}-{i}", f"written before kill {i}")


def over_http(env: dict[str, str], corpus: Corpus, bare: Bare, root: Path, io_window: bool) -> dict[str, Any]:
    server = Server(env)
    ready_clean = server.wait_ready()
    try:
        timed = anyio.run(_http_phase, server, corpus, bare, root, io_window)
        throughput = anyio.run(_concurrent_recall, server.url, corpus.timed_queries)
        anyio.run(_remember_some, server.url, 20)
        rss = server.peak_rss_mb()
    finally:
        server.stop(signal.SIGKILL)
    crashed = Server(env)
    try:
        ready_after_kill = crashed.wait_ready()
        model_calls = crashed.metric("memory_mcp_embedding_batch_size_count")
    finally:
        crashed.stop(signal.SIGTERM)
    return {
        **timed,
        "concurrent_recall_per_s": round(throughput, 1),
        "ready_after_clean_stop_s": round(ready_clean, 2),
        "ready_after_kill_9_s": round(ready_after_kill, 2),
        "model_calls_during_restart_after_kill_9": model_calls,
        "peak_rss_mb": rss,
    }


# ------------------------------------------------------------------ a run


def _root(label: str, size: int, reuse: bool) -> tuple[Path, bool]:
    """The run's directory, and whether it holds an earlier run's corpus (only with `reuse`)."""
    prefix = f"memory-mcp-bench-{size}-" if label == "generated" else f"memory-mcp-bench-{label}-{size}-"
    earlier = sorted(Path(tempfile.gettempdir()).glob(prefix + "*"), key=lambda p: p.stat().st_mtime)
    if reuse and earlier:
        return earlier[-1], True
    return Path(tempfile.mkdtemp(prefix=prefix)), False


def _disk_bytes(path: Path, skip: frozenset[Path] = frozenset()) -> int:
    """The files' bytes below `path`, while a server may be removing some (a packing, a replaced graph)."""
    total = 0
    for file in path.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if file.is_file() and not skip.intersection(file.parents):
                total += file.stat().st_size
    return total


def derived_mb(cache: Path) -> float:
    """The embedding cache and the current snapshot. A replaced snapshot folder stays a minute longer, for a
    process still loading it; counting it would report a moment, not what the server keeps."""
    stale = set()
    for manifest in cache.glob("*/snapshots/manifest.json"):
        current = json.loads(manifest.read_text()).get("folder")
        stale |= {f for f in manifest.parent.iterdir() if f.is_dir() and f.name != current}
    return round(_disk_bytes(cache, frozenset(stale)) / 1e6, 1)


def run(corpus: Corpus, model: Path, reuse: bool, window_from: int) -> dict[str, Any]:
    size = len(corpus.memories)
    root, reused = _root(corpus.label, size, reuse)
    env = {
        **os.environ,
        "MEMORY_MCP_REPO_PATH": str(root / "repo"),
        "MEMORY_MCP_CACHE_DIR": str(root / "cache"),
        "MEMORY_MCP_MODEL": str(model),
        "MEMORY_MCP_LOG_LEVEL": "WARNING",
    }
    settings = load_settings({}, env)
    # The corpus lives as long as the run: keep the collector from rescanning it. A full collection of it
    # took ~40 ms in the MCP client, and the HTTP timings counted that as the server's latency.
    gc.freeze()
    bare = Bare(model)
    try:
        print(f"[{corpus.label} {size}] in-process, bare llama.cpp in turns ...", file=sys.stderr, flush=True)
        local = in_process(settings, corpus, bare, load=not reused)
        print(f"[{corpus.label} {size}] over HTTP ...", file=sys.stderr, flush=True)
        http = over_http(env, corpus, bare, root, io_window=size >= window_from)
    finally:
        bare.close()
    return {
        "corpus": corpus.label,
        "memories": size,
        "reused": str(root) if reused else None,
        "in_process": local,
        "http": http,
        "derived_state_mb": derived_mb(root / "cache"),
        "repo_mb": round(_disk_bytes(root / "repo") / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=os.environ.get("MEMORY_MCP_MODEL"), required=False)
    parser.add_argument("--corpus", default="debian", help="debian, generated, or a directory of .txt files")
    parser.add_argument("--sizes", default="1000,10000", help="memories per run; `full`: every Debian text")
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument(
        "--reuse", action="store_true", help="measure again on corpora an earlier run left, without importing"
    )
    parser.add_argument(
        "--window-from", type=int, default=10_000, help="the smallest size measured with the write window"
    )
    args = parser.parse_args()
    if args.model is None:
        parser.error("give --model or set MEMORY_MCP_MODEL")
    machine = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "model": args.model.name,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_at_start": os.getloadavg(),
    }
    results = []
    for size in args.sizes.split(","):
        if args.corpus == "debian":
            corpus = debian(None if size == "full" else int(size))
        else:
            corpus = generated(int(size), None if args.corpus == "generated" else Path(args.corpus))
        measured = run(corpus, args.model, args.reuse, args.window_from)
        results.append({**measured, "load_average_after": os.getloadavg()})
        targets = report.targets(results)
        args.out.write_text(
            json.dumps({"machine": machine, "results": results, "targets": targets}, indent=2) + "\n"
        )  # so far
        print(report.table(results), flush=True)
        print(report.checklist(targets), flush=True)


if __name__ == "__main__":
    main()
