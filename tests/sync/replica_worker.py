"""One replica in its own process, for the randomized replica test: the real service and syncer built by the
composition root from `MEMORY_MCP_*` variables (the token comes from `MEMORY_MCP_GITHUB_TOKEN`, the real
token path). It reads one JSON command per line on stdin and answers one JSON line on stdout, so the test can
kill it with SIGKILL at any moment and start it again on the same folder.

Commands: remember {name, content}, replace {id, content}, edit {id, content}, move {id, name},
forget {id}, import {items: [{name, content} | {id, content}]}, sync, check. Every answer carries `ids`: the
memories this replica sees, so the test picks targets from them.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from typing import Any

from memory_mcp.bootstrap import build_embedder, build_store, open_service
from memory_mcp.config import load_settings
from memory_mcp.core.catalog import Entry
from memory_mcp.core.model import Memory, Scope, format_time
from memory_mcp.core.service import Locator, MemoryService
from memory_mcp.core.sync import Syncer
from memory_mcp.errors import MemoryMcpError


def written(entry: Entry) -> dict[str, Any]:
    memory = entry.memory
    return {
        "id": memory.id,
        "name": memory.name,
        "path": entry.path,
        "content": memory.content,
        "updated_at": format_time(memory.updated_at),
    }


def by_id(service: MemoryService, memory_id: str) -> Entry:
    return service.read(Locator(id=memory_id))


def run(service: MemoryService, syncer: Syncer, command: dict[str, Any]) -> dict[str, Any]:
    op = command["op"]
    if op == "remember":
        saved = service.remember(name=command["name"], content=command["content"])
        return {"writes": [written(saved.entry)]}
    if op == "replace":
        name = by_id(service, command["id"]).memory.name
        saved = service.remember(name=name, content=command["content"], replace_existing=True)
        return {"writes": [written(saved.entry)]}
    if op == "edit":
        saved = service.edit(Locator(id=command["id"]), content=command["content"])
        return {"writes": [written(saved.entry)]}
    if op == "move":
        saved = service.move(Locator(id=command["id"]), new_name=command["name"])
        return {"writes": [written(saved.entry)]}
    if op == "forget":
        return {"forgot": service.forget(Locator(id=command["id"])).entry.memory.id}
    if op == "import":
        memories = []
        for item in command["items"]:
            name = item.get("name") or by_id(service, item["id"]).memory.name
            memories.append(Memory(name=name, scope=Scope(), content=item["content"], source="replica-test"))
        imported = service.save_many(memories, message="test: import", replace_existing=True)
        return {"writes": [written(e) for e in imported.created + imported.replaced]}
    if op == "sync":
        report = syncer.sync()
        service.indexer.ensure_fresh()
        return {"report": {**asdict(report), "ok": report.ok}}
    if op == "check":
        return check(service)
    raise ValueError(f"unknown op {op!r}")


def check(service: MemoryService) -> dict[str, Any]:
    """The replica's tree as its index sees it, and the memories recall does not find by their own text."""
    service.indexer.ensure_fresh()
    with service.indexer.viewing:
        entries = list(service.catalog.entries())
    unfound = []
    for entry in entries:
        hits = service.recall(entry.memory.content, scope="all", limit=10)
        if entry.memory.id not in {hit.entry.memory.id for hit in hits}:
            unfound.append(entry.memory.id)
    return {
        "head": service.store.head(),
        "memories": sorted((written(e) for e in entries), key=lambda w: w["path"]),
        "unfound": unfound,
    }


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = load_settings()
    store, syncer = build_store(settings)
    service = open_service(settings, store, build_embedder(settings))
    assert syncer is not None, "MEMORY_MCP_REMOTE_URL must be set"
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        try:
            answer: dict[str, Any] = {"ok": True, **run(service, syncer, command)}
        except MemoryMcpError as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        with service.indexer.viewing:
            answer["ids"] = sorted(e.memory.id for e in service.catalog.entries())
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
