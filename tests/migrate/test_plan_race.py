"""An import is planned (create this, replace that) before it is written: whatever changes in between makes
the real run refuse the whole batch, never overwrite a memory the plan did not see."""

from __future__ import annotations

import pytest

from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.service import Locator, MemoryService
from memory_mcp.errors import AlreadyExists, Conflict
from memory_mcp.migrate.plan import Batch, Candidate, apply, classify, same_source

SOURCE = "import:notes.jsonl"


def planned(service: MemoryService) -> Batch:
    service.remember(name="owned", content="imported earlier, version one", source=SOURCE)
    incoming = {"owned": "version two", "fresh": "new from the import"}
    candidates = [
        Candidate(Memory(name=name, scope=Scope(), content=text, source=SOURCE), f"line {i}", name)
        for i, (name, text) in enumerate(incoming.items(), 1)
    ]
    return Batch("jsonl", candidates=candidates)


def content(service: MemoryService, name: str) -> str:
    return service.read(Locator(name)).memory.content


def test_a_memory_created_after_planning_is_not_overwritten(service: MemoryService) -> None:
    plan = classify(service, planned(service), same_source)
    names = ([c.memory.name for c in plan.replace], [c.memory.name for c in plan.create])
    assert names == (["owned"], ["fresh"])
    service.remember(name="fresh", content="someone else's note, written after the plan")
    with pytest.raises(AlreadyExists, match="after the import was planned"):
        apply(service, plan)
    assert content(service, "fresh") == "someone else's note, written after the plan"
    assert content(service, "owned") == "imported earlier, version one", "all or nothing"


def test_a_memory_changed_after_planning_is_not_overwritten(service: MemoryService) -> None:
    plan = classify(service, planned(service), same_source)
    service.edit(Locator("owned"), content="edited by hand after the plan")
    with pytest.raises(Conflict, match="after the import was planned"):
        apply(service, plan)
    assert content(service, "owned") == "edited by hand after the plan"
    with pytest.raises(Exception, match="no memory named 'fresh'"):
        service.read(Locator("fresh"))


def test_the_plan_is_written_when_nothing_changed(service: MemoryService) -> None:
    plan = classify(service, planned(service), same_source)
    assert apply(service, plan) is not None
    assert content(service, "owned") == "version two" and content(service, "fresh") == "new from the import"


def test_a_batch_never_creates_a_second_memory_with_an_existing_id(service: MemoryService) -> None:
    taken = service.remember(name="holder", content="holds the id").entry.memory
    twin = Memory(name="twin", scope=Scope(), content="same id, other name", id=taken.id)
    with pytest.raises(AlreadyExists, match="never share an id"):
        service.save_many([twin], message="test: import")
    with pytest.raises(Exception, match="no memory named 'twin'"):
        service.read(Locator("twin"))
