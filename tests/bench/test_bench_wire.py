"""The bench's bare MCP client (`served.Wire`) against a real server: its calls do what the SDK client's do,
and a call the server refuses raises instead of being timed as a fast answer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest
from served import Server, Wire

from memory_mcp.server.http_serve import IDLE_TIMEOUT


def test_the_bare_client_calls_tools_and_fails_loudly_on_an_error(tmp_path: Path, model_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEMORY_MCP_")}
    env.update(
        MEMORY_MCP_REPO_PATH=str(tmp_path / "repo"),
        MEMORY_MCP_CACHE_DIR=str(tmp_path / "cache"),
        MEMORY_MCP_MODEL=str(model_path),
        MEMORY_MCP_AUTHOR_NAME="bench",
    )
    server = Server(env)
    try:
        server.wait_ready()
        wire = Wire(server.url)
        assert wire.call("remember", {"name": "espresso", "content": "Grind the coffee beans finely."}) > 0
        assert asyncio.run(wire.recall("how fine should coffee be ground")) > 0
        _, result = wire.exchange("recall", {"query": "coffee grinding", "scope": "all"})
        assert [hit["name"] for hit in result["structuredContent"]["hits"]] == ["espresso"]
        assert asyncio.run(wire.remember("kettle", "Descale the kettle with citric acid monthly.")) > 0
        _, result = wire.exchange("read", {"name": "kettle"})
        assert "citric acid" in json.dumps(result["structuredContent"])
        with pytest.raises(RuntimeError, match="unknown argument 'colour'"):
            wire.call("recall", {"query": "coffee", "colour": "red"})
        with pytest.raises(RuntimeError, match="no-such-tool"):
            wire.call("no-such-tool", {})
        wire.close()
    finally:
        server.stop(signal.SIGTERM)


def test_the_bare_client_reconnects_when_the_server_closed_an_idle_connection(
    tmp_path: Path, model_path: Path
) -> None:
    """The server drops a keep-alive connection idle past its timeout; the next call goes out anew, once."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEMORY_MCP_")}
    env.update(
        MEMORY_MCP_REPO_PATH=str(tmp_path / "repo"),
        MEMORY_MCP_CACHE_DIR=str(tmp_path / "cache"),
        MEMORY_MCP_MODEL=str(model_path),
    )
    server = Server(env)
    try:
        server.wait_ready()
        wire = Wire(server.url)
        assert asyncio.run(wire.remember("first", "Written before the idle pause.")) > 0
        time.sleep(IDLE_TIMEOUT + 1.5)
        assert asyncio.run(wire.remember("second", "Written after the server closed the connection.")) > 0
        _, result = wire.exchange("list", {})
        assert sorted(m["name"] for m in result["structuredContent"]["memories"]) == ["first", "second"]
        wire.close()
    finally:
        server.stop(signal.SIGTERM)
