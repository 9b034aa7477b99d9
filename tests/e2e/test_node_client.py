"""An independent client: the official TypeScript SDK (`tests/node/surface`, pinned in its package-lock.json)
reads the memory resources and prompts and receives change notifications for writes made elsewhere."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import HttpServer, call, run_cli, server_env
from tests.e2e.test_http_auth import PROJECT_A, WRITER, client, tokens_file  # noqa: F401 - fixture

pytestmark = pytest.mark.anyio

NODE_DIR = Path(__file__).resolve().parents[1] / "node" / "surface"
WAIT = 90.0
"""Seconds to wait for a line: the first includes a stdio server loading its model on a busy machine."""


class NodeClient:
    """`node watch.mjs CONFIG`: its JSON lines, read as they come."""

    def __init__(self, config: dict[str, Any], server_log: Path | None = None) -> None:
        node = shutil.which("node")
        if node is None or not (NODE_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
            pytest.fail(f"needs node and `npm ci` in {NODE_DIR} (.ci/run installs both)")
        self.process = subprocess.Popen(
            [node, "watch.mjs", json.dumps(config)],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.server_log = server_log
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def next(self, kind: str) -> dict[str, Any]:
        """The next line of this kind (other kinds on the way are kept in `seen`)."""
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"node client sent no {kind!r} within {WAIT}s{self._diagnosis()}") from None
            assert line["kind"] != "error", line
            if line["kind"] == kind:
                return line
            self.seen.append(line)

    def _diagnosis(self) -> str:
        """What the client saw on the way, and the server's log, for a wait that ran out."""
        text = f"; it sent meanwhile: {self.seen}"
        if self.server_log is not None:
            text += "\nserver log (last 60 lines):\n" + "\n".join(self.server_log.read_text().splitlines()[-60:])
        return text

    def close(self) -> list[dict[str, Any]]:
        """Stop the client; every line it had not handed out yet."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=WAIT)
        rest = list(self.seen)
        while not self.lines.empty():
            rest.append(self.lines.get())
        return rest


async def test_node_client_over_http_with_a_scoped_token(start_server, tokens_file: Path) -> None:  # noqa: F811
    server: HttpServer = start_server("--tokens-file", str(tokens_file))
    mine, theirs = "memory://proj-a/note", "memory://proj-b/secret"
    async with client(server, WRITER) as writer:
        await call(
            writer, "remember", name="note", content="Project A's plan.", scope="proj-a", tags=["pinned"]
        )
        await call(writer, "remember", name="secret", content="Project B's secret.", scope="proj-b")
        config = {
            "url": f"{server.url}/mcp",
            "token": PROJECT_A,
            "scope": "proj-a",
            "subscribe": [mine, theirs],
        }
        node = NodeClient(config, server.log)
        try:
            ready = node.next("ready")
            assert ready["capabilities"]["resources"] == {"subscribe": True, "listChanged": True}
            assert [r["uri"] for r in ready["resources"]] == [mine]
            assert ready["read"]["text"] == "Project A's plan." and ready["read"]["meta"]["tags"] == [
                "pinned"
            ]
            assert set(ready["templates"]) == {"memory://{scope}/{name}", "memory://~id/{id}"}
            assert ready["scopes"] == ["proj-a"]
            assert "## Pinned" in ready["prompt"] and "note" in ready["prompt"]
            assert [c["name"] for c in ready["changes"]["changes"]] == ["note"]
            assert "changes" in ready["instructions"] and "session-start" in ready["instructions"]

            await call(writer, "edit", name="secret", scope="proj-b", content="Changed secret.")
            await call(writer, "edit", name="note", scope="proj-a", content="Project A's new plan.")
            assert node.next("updated")["uri"] == mine
            await call(writer, "remember", name="later", content="Another note.", scope="proj-a")
            node.next("list_changed")
        finally:
            rest = node.close()
    assert not [line for line in rest if line.get("uri") == theirs], "another scope's change must stay silent"


async def test_node_client_hears_a_cli_write_beside_its_stdio_server(
    tmp_path: Path, model_path: Path
) -> None:
    env = server_env(tmp_path, model_path)
    assert run_cli(env, "remember", "handoff", "--scope", "team", "--content", "v1").returncode == 0
    uri = "memory://team/handoff"
    node = NodeClient(
        {"command": sys.executable, "args": ["-m", "memory_mcp.cli", "stdio"], "env": env, "subscribe": [uri]}
    )
    try:
        ready = node.next("ready")
        assert [r["uri"] for r in ready["resources"]] == [uri]
        written = run_cli(env, "remember", "handoff", "--scope", "team", "--content", "v2", "--replace")
        assert written.returncode == 0, written.stderr
        assert node.next("updated")["uri"] == uri
        assert run_cli(env, "forget", "handoff", "--scope", "team").returncode == 0
        node.next("list_changed")
    finally:
        node.close()
