"""Replicas on one remote: convergence, clone on start, the sync tool and command, and kill -9 under writes."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.e2e.conftest import READY_TIMEOUT, HttpServer, call, http_get, server_env

pytestmark = pytest.mark.anyio


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    return bare


def replica(tmp_path: Path, model: Path, remote: Path, name: str) -> dict[str, str]:
    env = server_env(tmp_path / name, model)
    env.update(MEMORY_MCP_REMOTE_URL=str(remote), MEMORY_MCP_PUSH_DELAY="0.1", MEMORY_MCP_PULL_INTERVAL="1")
    return env


def start(env: dict[str, str]) -> HttpServer:
    server = HttpServer(env)
    server.wait_ready()
    return server


def names(memories: dict) -> set[str]:
    return {m["name"] for m in memories["memories"]}


async def test_two_replicas_converge(tmp_path: Path, model_path: Path, remote: Path) -> None:
    one = start(replica(tmp_path, model_path, remote, "one"))
    two = start(replica(tmp_path, model_path, remote, "two"))
    try:

        async def write(server: HttpServer, prefix: str) -> None:
            async with server.client() as client:
                for i in range(6):
                    await call(client, "remember", name=f"{prefix}-{i}", content=f"{prefix} fact {i}")
                await call(client, "remember", name="shared", content=f"the {prefix} version", replace=True)

        async with anyio.create_task_group() as group:
            group.start_soon(write, one, "one")
            group.start_soon(write, two, "two")
        for _ in range(3):  # each replica must see the other's pushed commits
            for server in (one, two):
                async with server.client() as client:
                    report = await call(client, "sync")
                    assert report["ok"], report
        expected = {f"{p}-{i}" for p in ("one", "two") for i in range(6)} | {"shared"}
        contents = set()
        for server in (one, two):
            async with server.client() as client:
                assert names(await call(client, "list", limit=100)) == expected
                contents.add((await call(client, "read", name="shared"))["content"])
            assert http_get(f"{server.url}/readyz")[1]["parts"]["sync"]["state"] == "ready"
        assert len(contents) == 1, "both replicas settle on the same version of the shared memory"
        log = subprocess.run(
            ["git", "-C", str(remote), "log", "--all", "-p", "--format=%s"], capture_output=True, text=True
        ).stdout
        assert "the one version" in log and "the two version" in log, "the losing version stays in history"
        assert "<<<<<<<" not in log

        fresh = start(replica(tmp_path, model_path, remote, "three"))  # empty data dir: clone on start
        try:
            async with fresh.client() as client:
                assert names(await call(client, "list", limit=100)) == expected
        finally:
            fresh.stop()
    finally:
        one.stop()
        two.stop()
    subprocess.run(["git", "-C", str(remote), "fsck", "--strict"], check=True, capture_output=True)


async def test_sync_command(tmp_path: Path, model_path: Path, remote: Path) -> None:
    env = replica(tmp_path, model_path, remote, "cli")
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "memory_mcp.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert run("remember", "offline-note", "--content", "written without a server").returncode == 0
    synced = run("sync", "--json")
    assert synced.returncode == 0, synced.stderr
    report = json.loads(synced.stdout)
    assert report["ok"] and report["pushed"] >= 1 and report["ahead"] == 0
    shown = subprocess.run(
        ["git", "-C", str(remote), "show", "main:global/offline-note.md"], capture_output=True, text=True
    )
    assert "written without a server" in shown.stdout
    env["MEMORY_MCP_REMOTE_URL"] = str(tmp_path / "nowhere.git")
    broken = run("sync")
    assert broken.returncode == 1 and "error:" in broken.stderr


async def test_kill_9_during_writes_loses_no_acknowledged_write(
    tmp_path: Path, model_path: Path, remote: Path
) -> None:
    env = replica(tmp_path, model_path, remote, "crashy")
    acknowledged: set[str] = set()
    rng = random.Random(5)
    for round_ in range(6):
        server = start(env)
        written: list[str] = []

        async def writer(
            server: HttpServer = server, round_: int = round_, written: list[str] = written
        ) -> None:
            try:
                async with server.client() as client:
                    for i in range(1000):
                        name = f"r{round_}-{i}"
                        await call(client, "remember", name=name, content=f"round {round_} write {i}")
                        acknowledged.add(name)
                        written.append(name)
            except Exception:  # noqa: BLE001 - the connection dies with the server
                pass

        async with anyio.create_task_group() as group:
            group.start_soon(writer)
            with anyio.fail_after(READY_TIMEOUT):  # a busy machine: the kill comes after writes, not instead
                while len(written) < 2:
                    await anyio.sleep(0.02)
            await anyio.sleep(rng.uniform(0.3, 1.5))  # writes keep coming: the kill lands in one of them
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            group.cancel_scope.cancel()
    final = start(env)
    repo = tmp_path / "crashy" / "repo"
    try:
        async with final.client() as client:
            present = set()
            cursor = None
            while True:
                page = await call(client, "list", limit=100, **({"cursor": cursor} if cursor else {}))
                present |= names(page)
                cursor = page["next_cursor"]
                if not cursor:
                    break
        assert acknowledged <= present, f"lost: {sorted(acknowledged - present)[:5]}"
        files = subprocess.run(
            ["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "HEAD"], capture_output=True, text=True
        ).stdout.split()
        assert len([f for f in files if f.endswith(".md")]) == len(present), (
            "the index matches the repository"
        )
        assert len(acknowledged) >= 12
    finally:
        final.stop()
    # after the stop: fsck lists the loose objects, then reads each, and a packing may remove some between
    checked = subprocess.run(["git", "-C", str(repo), "fsck", "--strict"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
