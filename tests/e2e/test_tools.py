"""Every tool and its error paths through a real MCP client, over both transports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mcp import Client

from tests.e2e.conftest import HttpServer, call, call_error, server_env

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {"remember", "recall", "read", "edit", "forget", "list", "move", "history", "changes", "sync"}


@pytest.fixture(params=["http", "stdio"])
def connect(request: pytest.FixtureRequest, start_server, stdio_client) -> Callable[[], Client]:
    if request.param == "http":
        server: HttpServer = start_server()
        return server.client
    return stdio_client


async def test_tool_listing_is_self_describing(connect: Callable[[], Client]) -> None:
    async with connect() as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.annotations is not None
        for name, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"
    read_only = {name for name, tool in tools.items() if tool.annotations.read_only_hint}
    assert read_only == {"recall", "read", "list", "history", "changes"}
    assert tools["forget"].annotations.destructive_hint is True
    assert tools["remember"].input_schema["required"] == ["name", "content"]


async def test_full_lifecycle(connect: Callable[[], Client]) -> None:
    async with connect() as client:
        created = await call(
            client,
            "remember",
            name="infra/dns",
            content="Internal DNS is served by CoreDNS on 10.0.0.53; the zone file lives in the ops repo.",
            scope="org/platform",
            tags=["dns", "ops"],
            source="runbook",
        )
        assert created["status"] == "created" and created["scope"] == "org/platform"
        await call(
            client, "remember", name="holiday", content="The office is closed on the first Monday of May."
        )

        hits = (
            await call(
                client, "recall", query="which server resolves internal hostnames", scope="org/platform"
            )
        )["hits"]
        assert hits[0]["name"] == "infra/dns"
        assert hits[0]["match_type"] in ("semantic", "both") and 0 < hits[0]["score"] <= 1
        assert "CoreDNS" in hits[0]["snippet"]
        global_only = (await call(client, "recall", query="internal DNS server"))["hits"]
        assert all(hit["scope"] == "global" for hit in global_only)

        memory = await call(client, "read", name="infra/dns", scope="org/platform")
        assert memory["tags"] == ["dns", "ops"] and memory["source"] == "runbook"
        assert memory["id"] == created["id"] and memory["version"] == created["version"]
        assert (await call(client, "read", id=created["id"]))["name"] == "infra/dns"

        edited = await call(
            client,
            "edit",
            name="infra/dns",
            scope="org/platform",
            tags=["dns"],
            expected_version=memory["version"],
        )
        assert edited["status"] == "updated" and edited["version"] != memory["version"]
        stale = await call_error(
            client,
            "edit",
            name="infra/dns",
            scope="org/platform",
            content="stale write",
            expected_version=memory["version"],
        )
        assert "Conflict" in stale and "changed since you read it" in stale

        moved = await call(
            client,
            "move",
            name="infra/dns",
            from_scope="org/platform",
            to_scope="org/network",
            new_name="dns/internal",
        )
        assert moved["id"] == created["id"] and moved["scope"] == "org/network"

        listing = await call(client, "list", fields=["name", "scope", "tags", "version"])
        assert [(m["scope"], m["name"]) for m in listing["memories"]] == [
            ("global", "holiday"),
            ("org/network", "dns/internal"),
        ]
        assert listing["memories"][1]["tags"] == ["dns"]
        first = await call(client, "list", limit=1)
        assert first["count"] == 1 and first["next_cursor"]
        second = await call(client, "list", limit=1, cursor=first["next_cursor"])
        assert second["memories"][0]["name"] == "dns/internal" and second["next_cursor"] is None

        history = await call(client, "history", name="dns/internal", scope="org/network")
        assert [v["message"] for v in history["versions"]] == [
            "chore: move memory 'infra/dns' → 'dns/internal'",
            "chore: save memory 'infra/dns'",
            "chore: save memory 'infra/dns'",
        ]
        assert all(v["author"].startswith("e2e ") for v in history["versions"])
        original = await call(
            client,
            "history",
            name="dns/internal",
            scope="org/network",
            version=history["versions"][-1]["commit"][:10],
        )
        assert original["tags"] == ["dns", "ops"] and original["scope"] == "org/platform"

        gone = await call(client, "forget", name="dns/internal", scope="org/network")
        assert gone["status"] == "deleted"
        missing = await call_error(client, "read", name="dns/internal", scope="org/network")
        assert "NotFound" in missing


@pytest.fixture(scope="module")
def seeded_server(tmp_path_factory: pytest.TempPathFactory, model_path) -> Iterator[HttpServer]:
    """One server for the many error cases: each must leave its single memory untouched."""
    server = HttpServer(server_env(tmp_path_factory.mktemp("errors"), model_path))
    server.wait_ready()
    status = subprocess.run(
        [sys.executable, "-m", "memory_mcp.cli", "remember", "seed", "--content", "seed memory"],
        env=server_env(Path(server.log).parent, model_path),
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0, status.stderr
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("remember", {"name": "../passwd", "content": "x"}, "must not start with '.'"),
        ("remember", {"name": "/etc/passwd", "content": "x"}, "empty part"),
        ("remember", {"name": "ok", "content": "x", "scope": "all"}, "reserved"),
        ("remember", {"name": "ok", "content": "   "}, "content must not be empty"),
        ("remember", {"name": "a/b/c/d", "content": "x"}, "at most 3"),
        ("remember", {"name": "ok", "content": "x", "tags": ["x" * 100]}, "at most 64 characters"),
        ("remember", {"name": "seed", "content": "again"}, "already exists"),
        ("remember", {"name": "ok"}, "content"),
        ("recall", {"query": ""}, "query must be a non-empty string"),
        ("recall", {"query": "x", "limit": 1000}, "limit must be at most 100"),
        ("recall", {"query": "x", "min_score": 7}, "min_score"),
        ("read", {}, "give the memory's name"),
        ("read", {"name": "nope"}, "no memory named 'nope'"),
        ("read", {"id": "00000000-0000-0000-0000-000000000000"}, "no memory has id"),
        ("edit", {"name": "seed"}, "content and/or tags"),
        ("edit", {"name": "seed", "content": "x", "expected_version": "12"}, "at least 7"),
        ("forget", {"name": "nope"}, "NotFound"),
        ("list", {"fields": ["name", "password"]}, "unknown field"),
        ("list", {"cursor": "garbage"}, "cursor"),
        ("move", {"name": "seed"}, "to_scope and/or new_name"),
        ("move", {"name": "seed", "to_scope": "../x"}, "must not start with '.'"),
        ("history", {"name": "seed", "version": "zz"}, "version must be a `version` or `commit`"),
    ],
)
async def test_bad_input_is_a_tool_error_and_writes_nothing(
    seeded_server: HttpServer, tool: str, arguments: dict, expected: str
) -> None:
    async with seeded_server.client() as client:
        before = await call(client, "history", name="seed")
        message = await call_error(client, tool, **arguments)
        assert expected in message
        assert await call(client, "history", name="seed") == before
        assert (await call(client, "list"))["count"] == 1


async def test_a_taken_name_says_how_to_overwrite_in_tool_terms(seeded_server: HttpServer) -> None:
    async with seeded_server.client() as client:
        message = await call_error(client, "remember", name="seed", content="again")
    assert "AlreadyExists: " in message and "remember with replace=true" in message
    assert "--replace" not in message


async def test_path_collision_is_a_tool_error(start_server) -> None:
    server: HttpServer = start_server()
    async with server.client() as client:
        await call(client, "remember", name="b/c", content="first", scope="a")
        message = await call_error(client, "remember", name="c", content="second", scope="a/b")
        assert "Conflict" in message and "projects/a/b/c.md" in message
        assert (await call(client, "read", name="b/c", scope="a"))["content"] == "first"
