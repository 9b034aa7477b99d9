"""Web UI page times, server side: numbers, not assertions.

    .venv/bin/python bench/ui.py (--model MODEL.gguf | --hashing) [--size 10000] [--commits 500] [--samples 20]
                                 [--dir DIR] [--out FILE]

Builds a corpus of `size` memories in scopes and tags (imported in slices, so history has many commits), then
`commits` single edits spread over it, so the oldest memory's history spans all of them. Then it starts
the server's parts as `memory-mcp serve` does (a `Supervisor` with the real model), builds the same Starlette
app and requests every page through ASGI in this process: the time is the server's, from request to the
last byte of HTML, with no network. Requests are paced under the UI's per-client rate limit. The CPU time is
the whole process's (every thread) per request: on a shared machine it says what a page costs when the wall
times say mostly how busy the machine was.

`--hashing` builds and serves with the hashing test embedder instead of a GGUF model: the pages are the same,
only the search page then leaves out the query's embedding (a few milliseconds with a real model, measured
by `bench/run.py`). It makes a 10k corpus take minutes instead of an hour on a busy machine.

`MEMORY_MCP_THREADS` in the environment sets the model's threads, as for the server.

`--dir` keeps the corpus (repository, index, embedding cache) in DIR and reuses it when a later run asks for
the same size, commits and embedder, so code changes can be measured before and after on one corpus.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx

from memory_mcp.bootstrap import build_service
from memory_mcp.config import load_settings
from memory_mcp.core import Locator, Memory, Scope
from memory_mcp.core.hashing_embedder import HashingEmbedder
from memory_mcp.server.http_app import build_http_app
from memory_mcp.server.mcp_app import build_mcp_server
from memory_mcp.supervisor import Supervisor

WORDS = (
    "database index latency cache deploy rollback kubernetes cluster node pod service ingress gateway token auth "
    "oauth session cookie rust python golang async thread lock mutex channel queue worker batch stream kafka "
    "postgres sqlite redis vector embedding model prompt agent memory context window budget invoice customer "
    "meeting standup retro sprint roadmap design review incident outage pager alert metric dashboard grafana"
).split()
TOPICS = ["infra", "backend", "frontend", "ml", "ops", "billing", "security", "data"]
SLICE = 500
PACE = 0.06
"""Seconds between requests: under the UI's 20 requests per second per client."""


def corpus(size: int, rng: random.Random) -> list[Memory]:
    memories = []
    for i in range(size):
        topic = TOPICS[i % len(TOPICS)]
        scope = Scope(f"org/{topic}/team-{i % 5}") if i % 10 else Scope()
        words = rng.choices(WORDS, k=rng.randint(60, 200))
        content = f"# Note {i} about {topic}\n\n" + " ".join(words) + f"\n\n- step one {words[0]}\n- step two"
        memories.append(Memory(name=f"{topic}/note-{i:06d}", scope=scope, content=content,
                               tags=(topic, rng.choice(WORDS)), source="bench"))
    return memories


def build(settings: Any, embedder: Any, size: int, commits: int, rng: random.Random) -> tuple[Memory, str]:
    """The corpus on disk; returns the oldest memory (longest history walk) and a query for it."""
    started = time.perf_counter()
    service = build_service(settings, embedder=embedder)
    try:
        memories = corpus(size, rng)
        for start in range(0, size, SLICE):
            service.save_many(memories[start : start + SLICE], message=f"bench: import {start}")
        for n in range(commits):
            target = memories[rng.randrange(1, size)]
            service.edit(Locator(target.name, str(target.scope)), content=f"{target.content}\n\nedit {n}")
        first = memories[0]
        service.edit(Locator(first.name, str(first.scope)), content=first.content + "\n\nthe latest edit")
    finally:
        service.close()
    print(f"corpus: {size} memories, {size // SLICE + commits + 1} commits in {time.perf_counter() - started:.0f} s")
    return first, " ".join(first.content.split()[5:9])


async def measure(app: Any, paths: dict[str, str], samples: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for label, path in paths.items():
            times, cpu = [], []
            for n in range(samples + 1):
                await anyio.sleep(PACE)
                started, cpu_started = time.perf_counter(), time.process_time()
                response = await client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
                if n:  # the first request warms caches (templates, the sorted catalog)
                    times.append(elapsed)
                    cpu.append((time.process_time() - cpu_started) * 1000)
            times.sort()
            results[label] = {
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                "max_ms": round(times[-1], 1),
                "cpu_p50_ms": round(statistics.median(cpu), 1),
                "bytes": len(response.content),
            }
            print(f"{label:28} p50 {results[label]['p50_ms']:6.1f} ms   p95 {results[label]['p95_ms']:6.1f} ms"
                  f"   max {results[label]['max_ms']:6.1f} ms   CPU p50 {results[label]['cpu_p50_ms']:5.1f} ms"
                  f"   {len(response.content) // 1024} KiB")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="GGUF embedding model file")
    model.add_argument("--hashing", action="store_true", help="the hashing test embedder instead of a model")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--dir", type=Path, help="keep the corpus here, and reuse it when it matches")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = random.Random(7)
    summary = {"size": args.size, "commits": args.commits, "embedder": "hashing" if args.hashing else args.model}
    with contextlib.ExitStack() as stack:
        root = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="memory-mcp-ui-bench-")))
        threads = {"MEMORY_MCP_THREADS": os.environ["MEMORY_MCP_THREADS"]} if "MEMORY_MCP_THREADS" in os.environ else {}
        settings = load_settings(
            env={"MEMORY_MCP_REPO_PATH": f"{root}/repo", "MEMORY_MCP_CACHE_DIR": f"{root}/cache",
                 "MEMORY_MCP_MODEL": args.model or "", "MEMORY_MCP_LOG_LEVEL": "WARNING", **threads}
        )
        embedder = HashingEmbedder() if args.hashing else None
        first, query = _corpus(root, summary, lambda: build(settings, embedder, args.size, args.commits, rng))
        supervisor = Supervisor(settings, embedder=embedder)
        supervisor.start()
        service = supervisor.wait(300)
        service.index_history()  # steady state: the revision index the start-up builds is ready
        summary["history_commits_read"] = service.revisions.walked
        print(f"revision index: {service.revisions.walked} commits read from git since start-up")
        app = build_http_app(supervisor, build_mcp_server(supervisor))
        where = f"/ui/memories/{first.scope}/{first.name}"
        cursor_page = "/ui/memories?cursor=" + _cursor_after(supervisor, args.size // 2)
        paths = {
            "list by name (first page)": "/ui/memories",
            "list, a middle page": cursor_page,
            "list by update time": "/ui/memories?sort=updated",
            "list, tag filter": f"/ui/memories?tags={TOPICS[1]}",
            "list, a tag no memory has": "/ui/memories?tags=no-such-tag",
            "list, one scope subtree": f"/ui/memories?scope=org/{TOPICS[2]}",
            "search": f"/ui/search?q={query.replace(' ', '+')}",
            "search, tag filter": f"/ui/search?q={query.replace(' ', '+')}&tags={TOPICS[1]}",
            "memory page": where,
            "history + diff (oldest)": f"{where}/history",
            "status": "/ui/status",
        }
        try:
            results = anyio.run(measure, app, paths, args.samples)
        finally:
            supervisor.close()
    if args.out:
        args.out.write_text(json.dumps({**summary, "pages": results}, indent=2))


def _corpus(root: Path, summary: dict[str, Any], make: Callable[[], tuple[Memory, str]]) -> tuple[Memory, str]:
    """The corpus `root` holds if it was built for `summary`, else a new one (recorded for the next run)."""
    record = root / "corpus.json"
    if record.exists() and json.loads(record.read_text())["summary"] == summary:
        kept = json.loads(record.read_text())
        print(f"corpus: reusing {root}")
        return Memory(name=kept["name"], scope=Scope.parse(kept["scope"]), content=kept["content"]), kept["query"]
    if (root / "repo").exists():
        raise SystemExit(f"{root} holds another corpus; pass an empty or new --dir")
    first, query = make()
    kept = {"summary": summary, "name": first.name, "scope": str(first.scope), "content": first.content}
    record.write_text(json.dumps({**kept, "query": query}))
    return first, query


def _cursor_after(supervisor: Supervisor, position: int) -> str:
    """A `list` cursor about `position` memories in, as a person paging far would hold."""
    service = supervisor.wait(0)
    page = service.list(limit=100)
    for _ in range(position // 100 - 1):
        if page.next_cursor is None:
            break
        page = service.list(limit=100, cursor=page.next_cursor)
    return page.next_cursor or ""


if __name__ == "__main__":
    main()
