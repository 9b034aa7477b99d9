"""Bearer tokens on /mcp: who may call, what each token may touch, and that secrets never leak."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import urllib.request
from pathlib import Path

import anyio
import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import HttpServer, call, call_error, free_port, http_get, server_env

pytestmark = pytest.mark.anyio

WRITER = "writer-secret-0123456789abcdef"
READER = "reader-secret-0123456789abcdef"
PROJECT_A = "project-a-secret-0123456789abcd"


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(f"""
[[token]]
name = "writer"
sha256 = "{hashlib.sha256(WRITER.encode()).hexdigest()}"

[[token]]
name = "reader"
token = "{READER}"
read_only = true

[[token]]
name = "agent-a"
sha256 = "{hashlib.sha256(PROJECT_A.encode()).hexdigest()}"
scopes = ["proj-a"]
""")
    return path


def client(server: HttpServer, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx.AsyncClient(headers=headers, timeout=30)
    return Client(streamable_http_client(f"{server.url}/mcp", http_client=http))


def status_of(server: HttpServer, token: str | None) -> int:
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
        b'"capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}'
    )
    request = urllib.request.Request(f"{server.url}/mcp", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json, text/event-stream")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def test_tokens_decide_who_may_do_what(start_server, tokens_file: Path, tmp_path: Path) -> None:
    server: HttpServer = start_server("--tokens-file", str(tokens_file))
    assert status_of(server, None) == 401
    assert status_of(server, "wrong-token-0123456789") == 401
    assert status_of(server, WRITER) == 200
    assert http_get(f"{server.url}/healthz")[0] == 200, "probes stay open"
    assert http_get(f"{server.url}/readyz")[0] == 200
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        assert response.status == 200

    async with client(server, WRITER) as writer:
        await call(writer, "remember", name="shared", content="Visible to the writer.", scope="proj-b")
        await call(writer, "remember", name="a-note", content="Project A's own note.", scope="proj-a")
        await call(writer, "remember", name="g", content="A global note.")

    async with client(server, READER) as reader:
        assert (await call(reader, "read", name="shared", scope="proj-b"))[
            "content"
        ] == "Visible to the writer."
        denied = await call_error(reader, "remember", name="x", content="nope")
        assert "Forbidden" in denied and "read-only" in denied
        assert "Forbidden" in await call_error(reader, "forget", name="g")

    async with client(server, PROJECT_A) as agent:
        assert (await call(agent, "read", name="a-note", scope="proj-a"))[
            "content"
        ] == "Project A's own note."
        hidden = await call_error(agent, "read", name="shared", scope="proj-b")
        assert "NotFound" in hidden, "another project's memory must not even be confirmed to exist"
        assert "Forbidden" in await call_error(agent, "remember", name="x", content="y", scope="proj-b")
        assert "Forbidden" in await call_error(
            agent, "move", name="a-note", from_scope="proj-a", to_scope="proj-b"
        )
        listed = await call(agent, "list")
        assert [(m["scope"], m["name"]) for m in listed["memories"]] == [("proj-a", "a-note")]
        hits = (await call(agent, "recall", query="note", scope="all", limit=10))["hits"]
        assert {h["scope"] for h in hits} == {"proj-a"}
        await call(agent, "edit", name="a-note", scope="proj-a", content="Edited by agent A.")

    author = subprocess.run(
        ["git", "-C", str(tmp_path / "repo"), "log", "-1", "--format=%an"], capture_output=True, text=True
    ).stdout.strip()
    assert author == "agent-a", "the commit records which token wrote"

    log = server.stop()
    for secret in (WRITER, READER, PROJECT_A):
        assert secret not in log


async def test_open_bind_without_tokens_refuses_to_start(tmp_path: Path, model_path: Path) -> None:
    env = server_env(tmp_path, model_path)
    refused = subprocess.run(
        [sys.executable, "-m", "memory_mcp.cli", "serve", "--bind", "0.0.0.0:0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "refusing to serve on 0.0.0.0:0 without authentication" in refused.stderr
    assert not (tmp_path / "repo").exists(), "nothing starts before the refusal"


async def test_insecure_no_auth_is_explicit(tmp_path: Path, model_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "memory_mcp.cli", "serve", "--bind", f"0.0.0.0:{port}", "--insecure-no-auth"],
        env=server_env(tmp_path, model_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(400):
            try:
                assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
                break
            except OSError:
                await anyio.sleep(0.05)
        else:
            raise AssertionError("server with --insecure-no-auth did not start")
    finally:
        process.terminate()
        process.wait(timeout=15)


async def test_bad_tokens_file_is_a_clear_error(tmp_path: Path, model_path: Path) -> None:
    bad = tmp_path / "tokens.toml"
    bad.write_text('[[token]]\nname = "short"\ntoken = "abc"\n')
    result = subprocess.run(
        [sys.executable, "-m", "memory_mcp.cli", "serve", "--tokens-file", str(bad)],
        env=server_env(tmp_path, model_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "at least 16 characters" in result.stderr
    assert "abc" not in result.stderr.replace("characters", "")
