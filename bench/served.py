"""The server as a client sees it: a `memory-mcp serve` process on loopback, its /metrics and /proc figures,
and timed tool calls through the real MCP client over streamable HTTP, and through a bare one (`Wire`)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mcp import Client


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
        """Seconds from the process start until /readyz answers 200."""
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

    def metrics(self) -> dict[str, float]:
        """Every unlabelled sample of /metrics, by name."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            lines = response.read().decode().splitlines()
        samples = {}
        for line in lines:
            name, _, value = line.partition(" ")
            if line and not line.startswith("#") and "{" not in name:
                samples[name] = float(value)
        return samples

    def metric(self, name: str) -> float:
        return self.metrics().get(name, float("nan"))

    def _proc(self, file: str, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/{file}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
        raise RuntimeError(f"no {field} in /proc/{self.process.pid}/{file}")

    def peak_rss_mb(self) -> float:
        return round(self._proc("status", "VmHWM:") / 1024, 1)

    def written_bytes(self) -> int:
        """Bytes this process has sent towards storage so far: pages it dirtied, less those it truncated or
        deleted before they were written back (a file rewritten within seconds reaches the disk once)."""
        return self._proc("io", "write_bytes:") - self._proc("io", "cancelled_write_bytes:")

    def stop(self, sig: int) -> None:
        self.process.send_signal(sig)
        self.process.wait(timeout=60)


class Session:
    """One MCP client session; each call returns its seconds."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def call(self, tool: str, arguments: dict) -> float:
        started = time.perf_counter()
        result = await self._client.call_tool(tool, arguments)
        elapsed = time.perf_counter() - started
        if result.is_error:
            raise RuntimeError(f"{tool}: {result.content[0].text}")
        return elapsed

    async def recall(self, query: str) -> float:
        return await self.call("recall", {"query": query, "scope": "all"})

    async def remember(self, name: str, content: str) -> float:
        return await self.call("remember", {"name": name, "content": content})


class Wire:
    """A bare MCP client: protocol 2026-07-28's self-contained `tools/call` POSTs (no handshake, no session)
    over one keep-alive connection, answers parsed by the standard library. Timed beside the SDK's client, it
    splits a call over HTTP into the server's share and the client's: the SDK's client validates each result
    against the tool's output schema and runs httpx and pydantic, several milliseconds per call here."""

    VERSION = "2026-07-28"

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self._connection = http.client.HTTPConnection(host, int(port), timeout=120)
        self._id = 0

    def call(self, tool: str, arguments: dict) -> float:
        return self.exchange(tool, arguments)[0]

    def exchange(self, tool: str, arguments: dict) -> tuple[float, dict]:
        """Seconds from sending the request to having its answer parsed, and the result; an error raises."""
        self._id += 1
        meta = {
            "io.modelcontextprotocol/protocolVersion": self.VERSION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "memory-mcp-bench-wire", "version": "1"},
        }
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": self._id,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments, "_meta": meta},
            }
        )
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": self.VERSION,
            "Mcp-Method": "tools/call",
            "Mcp-Name": tool,
        }
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self._connection.request("POST", "/mcp", body, headers)
                response = self._connection.getresponse()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The server closes a connection idle past its keep-alive timeout (`IDLE_TIMEOUT`), as
                # between turns that copy a large repository; a request sent into it was never read.
                self._connection.close()
                if attempt == 2:
                    raise
        reply = json.loads(response.read())
        elapsed = time.perf_counter() - started
        result = reply.get("result") if isinstance(reply, dict) else None
        if response.status != 200 or result is None or result.get("isError"):
            raise RuntimeError(f"{tool}: HTTP {response.status}: {json.dumps(reply)[:500]}")
        return elapsed, result

    async def recall(self, query: str) -> float:
        return self.call("recall", {"query": query, "scope": "all"})

    async def remember(self, name: str, content: str) -> float:
        return self.call("remember", {"name": name, "content": content})

    def close(self) -> None:
        self._connection.close()
