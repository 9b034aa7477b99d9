"""Real server processes on loopback and a real MCP client, over streamable HTTP and stdio."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(root: Path, model: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_MCP_")}
    env.update(
        MEMORY_MCP_REPO_PATH=str(root / "repo"),
        MEMORY_MCP_CACHE_DIR=str(root / "cache"),
        MEMORY_MCP_AUTHOR_NAME="e2e",
        MEMORY_MCP_LOG_LEVEL="INFO",
    )
    if model is not None:
        env["MEMORY_MCP_MODEL"] = str(model)
    return env


def run_cli(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 120, **options: Any):
    """`memory-mcp ARGS` in a child process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "memory_mcp.cli", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **options,
    )


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body)
        except ValueError:
            return error.code, body.decode()


class HttpServer:
    """`memory-mcp serve` in a child process."""

    def __init__(self, env: dict[str, str], *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(env["MEMORY_MCP_CACHE_DIR"]).parent / f"server-{self.port}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "memory_mcp.cli", "serve", "--bind", f"127.0.0.1:{self.port}", *extra],
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_listening(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log.read_text()}")
            try:
                http_get(f"{self.url}/healthz")
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"server never listened:\n{self.log.read_text()}")

    def wait_ready(self) -> None:
        self.wait_listening()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if http_get(f"{self.url}/readyz")[0] == 200:
                return
            time.sleep(0.05)
        raise AssertionError(f"server never became ready:\n{self.log.read_text()}")

    def client(self) -> Client:
        return Client(f"{self.url}/mcp")

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text()


@pytest.fixture
def start_server(tmp_path: Path, model_path: Path) -> Iterator[Callable[..., HttpServer]]:
    servers: list[HttpServer] = []

    def start(
        *extra: str, root: Path = tmp_path, model: Path | None = model_path, ready: bool = True
    ) -> HttpServer:
        server = HttpServer(server_env(root, model), *extra)
        servers.append(server)
        server.wait_ready() if ready else server.wait_listening()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def stdio_client(tmp_path: Path, model_path: Path) -> Callable[[], Client]:
    def make() -> Client:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "memory_mcp.cli", "stdio"],
            env=server_env(tmp_path, model_path),
        )
        return Client(params)

    return make


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool}({arguments}) failed: {result.content}"
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool}({arguments}) should have failed but returned {result.structured_content}"
    return result.content[0].text
