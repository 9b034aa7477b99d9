"""A real server under stress: kill -9 and restart, a long write beside quick requests, metrics."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import anyio
import pytest

from tests.e2e.conftest import HttpServer, call, http_get

pytestmark = pytest.mark.anyio


def metric(text: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}{re.escape('{' + selector + '}') if labels else ''} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name} {labels} not in metrics"
    return float(match.group(1))


def scrape(server: HttpServer) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()


async def test_kill_9_loses_nothing_and_reembeds_nothing(start_server, tmp_path: Path) -> None:
    server: HttpServer = start_server()
    async with server.client() as client:
        for i in range(12):
            await call(
                client, "remember", name=f"fact-{i}", content=f"Acknowledged fact {i} about tidal energy."
            )
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()

    restarted: HttpServer = start_server()
    text = scrape(restarted)
    assert metric(text, "memory_mcp_embedding_batch_size_count") == 0, "start-up must not call the model"
    assert metric(text, "memory_mcp_memories") == 12
    async with restarted.client() as client:
        names = {m["name"] for m in (await call(client, "list", limit=100))["memories"]}
        assert names == {f"fact-{i}" for i in range(12)}
        hits = (await call(client, "recall", query="tidal energy fact 5", limit=3))["hits"]
        assert "fact-5" in [h["name"] for h in hits]


def derived_meta(root: Path) -> dict[str, object]:
    """The derived store's meta rows (which head its tables reflect, the saved graph), read as a second
    process would."""
    (path,) = (root / "cache").glob("*/derived/derived.sqlite")
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM meta")}


def revision_tip(root: Path) -> str | None:
    """The newest commit the revision index (history) holds."""
    (path,) = (root / "cache").glob("*/derived/derived.sqlite")
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT commit_id FROM rev_commits ORDER BY position DESC LIMIT 1").fetchone()
    return row[0] if row else None


def git_head(root: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(root / "repo"), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


async def test_a_clean_stop_saves_the_snapshot_first(start_server, tmp_path: Path) -> None:
    """SIGTERM (what Kubernetes sends) must end with the vector graph saved, so the next start reads no
    vector from the cache: uvicorn raises the signal again after its graceful shutdown, past any `finally`.
    The revision index holds the last write too, so the next start diffs no commit this one made."""
    server: HttpServer = start_server()
    async with server.client() as client:
        await call(client, "remember", name="last-words", content="Written just before a clean stop.")
    log = server.stop()
    assert server.process.returncode in (0, -signal.SIGTERM), log
    meta = derived_meta(tmp_path)
    assert meta["head"] == git_head(tmp_path), "the derived state reflects the last write"
    assert meta["graph"] and meta["graph_next_label"] == meta["counters"][1], "the graph holds every vector"
    assert revision_tip(tmp_path) == git_head(tmp_path), "the history index reaches the last write"


async def test_kill_9_during_a_stream_of_writes(start_server, tmp_path: Path) -> None:
    """Each write changes the derived state in place; a kill -9 while writers stream leaves it at one
    committed head, and the restart catches up from there: no acknowledged write lost, no model call."""
    server: HttpServer = start_server()
    acknowledged: list[str] = []
    stopped = anyio.Event()

    async def writer(number: int) -> None:
        try:
            async with server.client() as client:
                for i in range(10_000):
                    if stopped.is_set():
                        return
                    name = f"stream-{number}-{i}"
                    content = f"Streamed note {i} from writer {number} about glacier {i % 7}."
                    await call(client, "remember", name=name, content=content)
                    acknowledged.append(name)
        except Exception:  # noqa: BLE001 - the kill cuts the connection mid-request
            return

    with anyio.fail_after(240):
        async with anyio.create_task_group() as group:
            for number in range(3):
                group.start_soon(writer, number)
            while len(acknowledged) < 40:
                await anyio.sleep(0.02)
            server.process.send_signal(signal.SIGKILL)
            stopped.set()
    server.process.wait()
    killed_at = derived_meta(tmp_path)["head"]

    restarted: HttpServer = start_server()
    text = scrape(restarted)
    assert metric(text, "memory_mcp_embedding_batch_size_count") == 0, "start-up must not call the model"
    files = subprocess.run(
        ["git", "-C", str(tmp_path / "repo"), "ls-files", "*.md"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert metric(text, "memory_mcp_memories") == len(files) >= len(acknowledged)
    async with restarted.client() as client:
        names: set[str] = set()
        page = await call(client, "list", limit=100)
        while True:
            names |= {m["name"] for m in page["memories"]}
            if not page["next_cursor"]:
                break
            page = await call(client, "list", limit=100, cursor=page["next_cursor"])
        assert set(acknowledged) <= names, "an acknowledged write was lost"
        hits = (await call(client, "recall", query="streamed note from writer about glacier", limit=3))["hits"]
        assert hits and hits[0]["name"].startswith("stream-")
    meta = derived_meta(tmp_path)
    assert meta["head"] == git_head(tmp_path), f"caught up from {killed_at} to the branch tip"


async def test_quick_requests_are_served_during_a_long_write(start_server) -> None:
    server: HttpServer = start_server()
    huge = " ".join(f"Line {i} of a very long design document about storage engines." for i in range(2500))
    timings: list[float] = []
    finished: list[str] = []

    async def long_write() -> None:
        async with server.client() as client:
            await call(client, "remember", name="design-doc", content=huge)
        finished.append("write")

    async def quick_requests() -> None:
        await anyio.sleep(0.3)  # let the write reach the model
        async with server.client() as client:
            for _ in range(5):
                started = time.perf_counter()
                assert http_get(f"{server.url}/healthz")[0] == 200
                await call(client, "list")
                timings.append(time.perf_counter() - started)
                if finished:
                    break
        finished.append("quick")

    async with anyio.create_task_group() as group:
        group.start_soon(long_write)
        group.start_soon(quick_requests)
    assert timings and max(timings) < 2.0, "list and /healthz must not wait for a long embedding"


async def test_metrics_count_tools_and_commits(start_server) -> None:
    server: HttpServer = start_server()
    async with server.client() as client:
        await call(client, "remember", name="m", content="metrics test memory")
        await call(client, "recall", query="metrics")
        result = await client.call_tool("read", {"name": "absent"})
        assert result.is_error
    text = scrape(server)
    assert metric(text, "memory_mcp_tool_calls_total", tool="remember", outcome="ok") == 1
    assert metric(text, "memory_mcp_tool_calls_total", tool="read", outcome="NotFound") == 1
    assert metric(text, "memory_mcp_tool_duration_seconds_count", tool="recall") == 1
    assert metric(text, "memory_mcp_git_commit_duration_seconds_count") == 1
    assert metric(text, "memory_mcp_embedding_batch_size_count") >= 2
    assert metric(text, "memory_mcp_memories") == 1
    assert metric(text, "memory_mcp_index_vectors") >= 1
    assert metric(text, "memory_mcp_embedding_queue_depth") == 0


async def test_metrics_count_a_cancelled_call(start_server) -> None:
    """A call the client gives up on (the MCP client sends `notifications/cancelled`) is counted as
    cancelled, not as a success or a crash, and writes nothing."""
    server: HttpServer = start_server()
    content = " ".join(f"Sentence {i} of a memory whose caller changes its mind." for i in range(200))
    async with server.client() as client:
        await call(client, "list")  # started
        with anyio.move_on_after(0.3) as waited:
            await client.call_tool("remember", {"name": "given-up", "content": content})
        assert waited.cancelled_caught, "the call finished before it could be cancelled: not a test"
        deadline = time.monotonic() + 30
        while 'tool="remember"' not in scrape(server) and time.monotonic() < deadline:
            await anyio.sleep(0.1)
        assert (await call(client, "list"))["count"] == 0
    text = scrape(server)
    assert metric(text, "memory_mcp_tool_calls_total", tool="remember", outcome="cancelled") == 1
    assert 'outcome="ok",tool="remember"' not in text and 'outcome="crash"' not in text
