"""The HTTP edge and multi-process behaviour with real server processes."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import anyio
import pytest

from memory_mcp import __version__
from tests.e2e.conftest import HttpServer, call, call_error, http_get, server_env

pytestmark = pytest.mark.anyio


def post_initialize(url: str, host: str | None = None, origin: str | None = None) -> int:
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
        b'"capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}'
    )
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json, text/event-stream")
    if host:
        request.add_header("Host", host)
    if origin:
        request.add_header("Origin", origin)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def test_probe_endpoints(start_server) -> None:
    server: HttpServer = start_server()
    assert http_get(f"{server.url}/healthz") == (200, {"status": "ok"})
    status, body = http_get(f"{server.url}/readyz")
    assert status == 200 and body["ready"] is True
    assert {part["state"] for part in body["parts"].values()} == {"ready"}
    assert http_get(f"{server.url}/version") == (200, {"name": "memory-mcp", "version": __version__})


async def test_missing_model_is_not_ready_and_says_why(start_server, tmp_path: Path) -> None:
    server: HttpServer = start_server(model=tmp_path / "missing.gguf", ready=False)
    assert http_get(f"{server.url}/healthz")[0] == 200
    for _ in range(100):
        status, body = http_get(f"{server.url}/readyz")
        if body["parts"]["model"]["state"] == "failed":
            break
        await anyio.sleep(0.05)
    assert status == 503 and body["ready"] is False
    assert "MEMORY_MCP_MODEL" in body["parts"]["model"]["detail"]
    async with server.client() as client:
        message = await call_error(client, "recall", query="anything")
    assert "Unavailable" in message and "MEMORY_MCP_MODEL" in message


async def test_dns_rebinding_protection(start_server) -> None:
    server: HttpServer = start_server("--allowed-host", "memories.example.org")
    mcp = f"{server.url}/mcp"
    assert post_initialize(mcp) == 200
    assert post_initialize(mcp, host="evil.example.com") == 421
    assert post_initialize(mcp, host="memories.example.org") == 200
    assert post_initialize(mcp, host="memories.example.org:443", origin="https://memories.example.org") == 200
    assert post_initialize(mcp, origin="http://evil.example.com") == 403


async def test_two_servers_on_one_repo_lose_no_write(start_server, tmp_path: Path) -> None:
    first: HttpServer = start_server()
    second: HttpServer = start_server()

    async def write(server: HttpServer, prefix: str) -> None:
        async with server.client() as client:
            for i in range(10):
                await call(client, "remember", name=f"{prefix}-{i}", content=f"fact {i} from {prefix}")
            await call(client, "remember", name="shared", content=f"from {prefix}", replace=True)

    async with anyio.create_task_group() as group:
        group.start_soon(write, first, "one")
        group.start_soon(write, second, "two")

    expected = {f"{p}-{i}" for p in ("one", "two") for i in range(10)} | {"shared"}
    for server in (first, second):
        async with server.client() as client:
            names = {m["name"] for m in (await call(client, "list", limit=100))["memories"]}
            assert names == expected
            hits = (await call(client, "recall", query="fact 7 from two", limit=3))["hits"]
            assert "two-7" in [hit["name"] for hit in hits]
    repo = tmp_path / "repo"
    count = subprocess.run(
        ["git", "-C", str(repo), "rev-list", "--count", "HEAD"], capture_output=True, text=True
    )
    assert int(count.stdout) == 22
    subprocess.run(["git", "-C", str(repo), "fsck", "--strict"], check=True, capture_output=True)


async def test_cli_beside_a_running_server(start_server, tmp_path: Path, model_path: Path) -> None:
    server: HttpServer = start_server()
    env = server_env(tmp_path, model_path)
    written = subprocess.run(
        [sys.executable, "-m", "memory_mcp.cli", "remember", "from-cli", "--scope", "tools", "--tag", "cli"],
        input="The CLI wrote this note about the espresso machine.",
        env=env,
        capture_output=True,
        text=True,
    )
    assert written.returncode == 0, written.stderr
    assert "created 'from-cli'" in written.stdout
    async with server.client() as client:
        hits = (await call(client, "recall", query="coffee maker", scope="tools"))["hits"]
        assert hits[0]["name"] == "from-cli"
        await call(client, "edit", name="from-cli", scope="tools", content="Edited by the server.")
    shown = subprocess.run(
        [sys.executable, "-m", "memory_mcp.cli", "read", "from-cli", "--scope", "tools", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert '"content": "Edited by the server."' in shown.stdout


async def test_stdio_logs_only_to_stderr(tmp_path: Path, model_path: Path) -> None:
    """stdout carries JSON-RPC alone: a stray log line there would break every stdio client."""
    env = server_env(tmp_path, model_path)
    request = (
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}\n'
    )
    process = subprocess.run(
        [sys.executable, "-m", "memory_mcp.cli", "stdio"],
        input=request,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in process.stdout.splitlines() if line.strip()]
    assert lines and all(line.startswith('{"jsonrpc":"2.0"') or line.startswith('{"id"') for line in lines), (
        lines
    )
    assert '"result"' in lines[0] and "memory-mcp" in lines[0]
    assert "loaded embedding model" in process.stderr or "initialising memory repository" in process.stderr
