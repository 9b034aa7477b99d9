"""Resources, prompts and `changes` through a real MCP client over stdio and HTTP, with scoped and read-only
tokens; and change notifications reaching clients when another connection or process writes."""

from __future__ import annotations

import json
import sys
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from tests.e2e.conftest import HttpServer, call, call_error, run_cli, server_env
from tests.e2e.test_http_auth import PROJECT_A, READER, WRITER, client, tokens_file  # noqa: F401 - fixture
from tests.e2e.test_tools import connect  # noqa: F401 - the fixture: each test over HTTP and over stdio

pytestmark = pytest.mark.anyio

TIPS = "memory://org%2Fbackend/rust%2Fasync-tips"
TEMPLATE = ResourceTemplateReference(uri="memory://{scope}/{name}")
NOTIFY_TIMEOUT = 20.0
"""The watch loop looks every second; the rest is slack for a machine busy with other tests."""


async def test_resources_prompts_and_changes(connect: Callable[[], Client]) -> None:  # noqa: F811
    async with connect() as mcp:
        tips = "Prefer spawn_blocking for CPU-bound work in async Rust."
        await call(
            mcp, "remember", name="rust/async-tips", content=tips, scope="org/backend", tags=["pinned"]
        )
        await call(mcp, "remember", name="g", content="A global fact about coffee.")

        listed = {r.uri: r for r in (await mcp.list_resources()).resources}
        assert set(listed) == {TIPS, "memory://global/g"}
        assert listed[TIPS].mime_type == "text/markdown" and listed[TIPS].meta["tags"] == ["pinned"]
        read = (await mcp.read_resource(TIPS)).contents[0]
        assert read.text == tips
        assert {k: read.meta[k] for k in ("name", "scope", "tags")} == {
            "name": "rust/async-tips",
            "scope": "org/backend",
            "tags": ["pinned"],
        }
        assert read.meta["id_uri"] == f"memory://~id/{read.meta['id']}"
        assert (await mcp.read_resource(read.meta["id_uri"])).contents[0].text == tips
        with pytest.raises(MCPError, match="not a memory URI"):
            await mcp.read_resource("https://example.com/x")
        with pytest.raises(MCPError, match="NotFound"):
            await mcp.read_resource("memory://global/missing")

        templates = {t.uri_template for t in (await mcp.list_resource_templates()).resource_templates}
        assert templates == {"memory://{scope}/{name}", "memory://~id/{id}"}
        assert (await mcp.complete(TEMPLATE, {"name": "scope", "value": ""})).completion.values == [
            "global",
            "org/backend",
        ]
        names = await mcp.complete(
            TEMPLATE, {"name": "name", "value": "rust/"}, context_arguments={"scope": "org/backend"}
        )
        assert names.completion.values == ["rust/async-tips"]
        prompt_scope = await mcp.complete(PromptReference(name="session-start"), {"name": "scope", "value": "org"})
        assert prompt_scope.completion.values == ["org/backend"]

        assert {p.name for p in (await mcp.list_prompts()).prompts} == {"session-start", "save-handoff"}
        start = (await mcp.get_prompt("session-start", {"scope": "org/backend"})).messages[0].content.text
        assert "## Pinned" in start and "rust/async-tips" in start and "global fact" in start
        assert start.index("rust/async-tips") < start.index("global fact"), "pinned memories come first"
        handoff = (await mcp.get_prompt("save-handoff", {"scope": "org/backend"})).messages[0].content.text
        assert "session-handoff" in handoff and "No handoff exists yet" in handoff
        with pytest.raises(MCPError, match="InvalidInput"):
            await mcp.get_prompt("session-start", {"scope": "not a scope"})

        await call(mcp, "remember", name="session-handoff", content="Next: ship it.", scope="org/backend")
        handoff = (await mcp.get_prompt("save-handoff", {"scope": "org/backend"})).messages[0].content.text
        assert "Next: ship it." in handoff and "expected_version" in handoff

        changed = await call(mcp, "changes", limit=2)
        assert [(c["kind"], c["name"]) for c in changed["changes"]] == [
            ("created", "session-handoff"),
            ("created", "g"),
        ]
        assert changed["changes"][0]["author"].startswith("e2e <") and changed["next_cursor"]
        rest = await call(mcp, "changes", cursor=changed["next_cursor"])
        assert [c["name"] for c in rest["changes"]] == ["rust/async-tips"] and rest["next_cursor"] is None
        await call(mcp, "forget", name="g")
        gone = (await call(mcp, "changes", cursor=rest["cursor"]))["changes"]
        assert [(c["kind"], c["snippet"]) for c in gone] == [("forgotten", "A global fact about coffee.")]
        assert "InvalidInput" in await call_error(mcp, "changes", since="last tuesday")


async def test_tokens_decide_what_resources_prompts_and_changes_show(
    start_server,
    tokens_file: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    model_path: Path,
) -> None:
    moment = "2026-01-01T00:00:00.000Z"
    lines = [
        json.dumps(
            {
                "id": str(uuid.uuid4()),
                "name": f"bulk-{i:03}",
                "scope": "proj-b",
                "content": f"Bulk memory {i}.",
                "tags": [],
                "source": "",
                "created_at": moment,
                "updated_at": moment,
            }
        )
        for i in range(101)
    ]
    (tmp_path / "bulk.jsonl").write_text("\n".join(lines) + "\n")
    imported = run_cli(
        server_env(tmp_path, model_path), "import", "jsonl", str(tmp_path / "bulk.jsonl"), "--no-progress"
    )
    assert imported.returncode == 0, imported.stderr
    server: HttpServer = start_server("--tokens-file", str(tokens_file))
    async with client(server, WRITER) as writer:
        await call(
            writer, "remember", name="a-note", content="Project A's plan.", scope="proj-a", tags=["pinned"]
        )
        secret = await call(writer, "remember", name="secret", content="Project B's secret.", scope="proj-b")

    async with client(server, READER) as reader:
        first = await reader.list_resources()
        assert len(first.resources) == 100 and first.next_cursor, "resources are listed a page at a time"
        second = await reader.list_resources(cursor=first.next_cursor)
        assert len(first.resources) + len(second.resources) == 103 and second.next_cursor is None
        assert (await reader.read_resource("memory://proj-b/secret")).contents[
            0
        ].text == "Project B's secret."
        assert "Forbidden" in await call_error(reader, "remember", name="x", content="nope")
        assert (await call(reader, "changes", limit=1))["changes"][0]["name"] == "secret"

    async with client(server, PROJECT_A) as agent:
        assert [r.uri for r in (await agent.list_resources()).resources] == ["memory://proj-a/a-note"]
        for hidden in ("memory://proj-b/secret", f"memory://~id/{secret['id']}"):
            with pytest.raises(MCPError, match="NotFound"):
                await agent.read_resource(hidden)
        scopes = await agent.complete(TEMPLATE, {"name": "scope", "value": ""})
        assert scopes.completion.values == ["proj-a"]
        names = await agent.complete(
            TEMPLATE, {"name": "name", "value": ""}, context_arguments={"scope": "proj-b"}
        )
        assert names.completion.values == []
        start = (await agent.get_prompt("session-start", {"scope": "proj-b"})).messages[0].content.text
        assert "secret" not in start and "bulk" not in start
        assert (
            "a-note"
            in (await agent.get_prompt("session-start", {"scope": "proj-a"})).messages[0].content.text
        )
        seen = (await call(agent, "changes"))["changes"]
        assert [(c["name"], c["scope"]) for c in seen] == [("a-note", "proj-a")]


class Inbox:
    """Collects the resource notifications a client receives, from either protocol era."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str | None]] = []

    async def handler(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if method in ("notifications/resources/list_changed", "notifications/resources/updated"):
            self.items.append((method.rsplit("/", 1)[1], getattr(message.params, "uri", None)))

    async def until(self, item: tuple[str, str | None]) -> None:
        with anyio.fail_after(NOTIFY_TIMEOUT):
            while item not in self.items:
                await anyio.sleep(0.1)


async def expect_listen(mcp: Client, uris: list[str], write: Callable, wanted: list, unwanted: list) -> None:
    """On a 2026-07-28 connection: open a listen stream, `write`, and collect events until `wanted` came."""
    events: list[tuple[str, str | None]] = []
    async with mcp.listen(resources_list_changed=True, resource_subscriptions=uris) as stream:
        await write()
        with anyio.fail_after(NOTIFY_TIMEOUT):
            async for event in stream:
                uri = getattr(event, "uri", None)
                events.append(("updated" if uri else "list_changed", uri))
                if all(w in events for w in wanted):
                    break
    assert not [u for u in unwanted if u in events], events


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_cli_write_beside_a_stdio_server_reaches_its_client(
    mode: str, tmp_path: Path, model_path: Path
) -> None:
    env = server_env(tmp_path, model_path)
    assert (
        run_cli(env, "remember", "rust/async-tips", "--scope", "org/backend", "--content", "v1").returncode
        == 0
    )
    inbox = Inbox()
    params = StdioServerParameters(command=sys.executable, args=["-m", "memory_mcp.cli", "stdio"], env=env)

    async def write() -> None:
        for args in (("rust/async-tips", "--content", "v2", "--replace"), ("new-one", "--content", "hi")):
            command = ("remember", *args, "--scope", "org/backend")
            written = await anyio.to_thread.run_sync(lambda command=command: run_cli(env, *command))
            assert written.returncode == 0, written.stderr

    async with Client(params, mode=mode, message_handler=inbox.handler) as mcp:
        assert len((await mcp.list_resources()).resources) == 1
        if mode == "legacy":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await mcp.subscribe_resource(TIPS)
            await write()
            await inbox.until(("updated", TIPS))
            await inbox.until(("list_changed", None))
        else:
            await expect_listen(mcp, [TIPS], write, [("updated", TIPS), ("list_changed", None)], [])
        assert (await mcp.read_resource(TIPS)).contents[0].text == "v2"


async def test_http_sessions_and_listen_streams_hear_only_their_scopes(
    start_server,
    tokens_file: Path,  # noqa: F811
) -> None:
    server: HttpServer = start_server("--tokens-file", str(tokens_file))
    mine, theirs = "memory://proj-a/note", "memory://proj-b/secret"
    async with client(server, WRITER) as writer:
        await call(writer, "remember", name="note", content="v1", scope="proj-a")
        await call(writer, "remember", name="secret", content="v1", scope="proj-b")
        await anyio.sleep(1.5)  # the server's next look at the branch announces these before anyone listens

        async def write() -> None:
            await call(writer, "edit", name="secret", scope="proj-b", content="v2")
            await anyio.sleep(1.5)  # a separate look at the branch: the other scope's change comes first
            await call(writer, "edit", name="note", scope="proj-a", content="v2")

        headers = {"Authorization": f"Bearer {PROJECT_A}"}
        inbox = Inbox()
        http = httpx.AsyncClient(headers=headers, timeout=30)
        transport = streamable_http_client(f"{server.url}/mcp", http_client=http)
        async with Client(transport, mode="legacy", message_handler=inbox.handler) as session:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await session.subscribe_resource(mine)
                await session.subscribe_resource(theirs)
            await write()
            await inbox.until(("updated", mine))
            assert ("updated", theirs) not in inbox.items and ("list_changed", None) not in inbox.items

        async with client(server, PROJECT_A) as modern:
            assert modern.protocol_version == "2026-07-28"
            await expect_listen(modern, [mine, theirs], write, [("updated", mine)], [("updated", theirs)])
