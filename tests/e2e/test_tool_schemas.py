"""Every tool publishes a precise outputSchema, and what it returns validates against it: checked by an
independent validator (jsonschema) on what a real MCP client receives from a real HTTP server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jsonschema
import pytest
from mcp import Client

from tests.e2e.conftest import HttpServer

pytestmark = pytest.mark.anyio


async def _checked(client: Client, schemas: dict, tool: str, **arguments) -> dict:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool}({arguments}) failed: {result.content}"
    jsonschema.validate(result.structured_content, schemas[tool])
    return result.structured_content


async def test_structured_results_match_the_published_schemas(start_server) -> None:
    server: HttpServer = start_server()
    async with server.client() as client:
        tools = (await client.list_tools()).tools
        schemas = {tool.name: tool.output_schema for tool in tools}
        for name, schema in schemas.items():
            jsonschema.Draft202012Validator.check_schema(schema)
            assert schema["type"] == "object" and schema.get("properties"), name
            assert schema.get("additionalProperties") is False, f"{name} publishes an open object"
        assert set(schemas["recall"]["properties"]) == {"hits", "count"}

        text = "CoreDNS serves the internal zone on 10.0.0.53."
        first = await _checked(client, schemas, "remember", name="dns", content=text)
        twin = await _checked(client, schemas, "remember", name="dns-2", content=text)
        assert [s["name"] for s in twin["similar"]] == ["dns"] and twin["hint"]
        again = await _checked(client, schemas, "remember", name="dns", content="Zone moved.", replace=True)
        assert again["status"] == "replaced"
        hits = await _checked(client, schemas, "recall", query="who serves the zone", limit=3)
        assert hits["count"] == len(hits["hits"]) >= 1
        await _checked(client, schemas, "read", name="dns")
        await _checked(client, schemas, "edit", name="dns", tags=["ops"], expected_version=again["version"])
        await _checked(client, schemas, "list", fields=["name", "content_length"], limit=1)
        await _checked(client, schemas, "list")
        await _checked(client, schemas, "move", name="dns-2", to_scope="infra")
        history = await _checked(client, schemas, "history", name="dns")
        await _checked(client, schemas, "history", name="dns", version=history["versions"][-1]["commit"])
        await _checked(client, schemas, "forget", name="dns")
        assert first["status"] == "created"

        wrong = {**hits, "count": "three"}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schemas["recall"])
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**first, "surprise": 1}, schemas["remember"])


async def test_changes_and_sync_results_match_their_schemas(start_server, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    server: HttpServer = start_server("--remote-url", str(remote))
    async with server.client() as client:
        schemas = {tool.name: tool.output_schema for tool in (await client.list_tools()).tools}
        saved = await _checked(client, schemas, "remember", name="dns", content="CoreDNS serves the zone.")
        version = saved["version"]
        await _checked(client, schemas, "edit", name="dns", content="Zone moved.", expected_version=version)
        await _checked(client, schemas, "forget", name="dns")
        page = await _checked(client, schemas, "changes", limit=2)
        assert [c["kind"] for c in page["changes"]] == ["forgotten", "edited"] and page["next_cursor"]
        await _checked(client, schemas, "changes", cursor=page["next_cursor"])
        report = await _checked(client, schemas, "sync")
        assert report["ok"] and not report["errors"]
