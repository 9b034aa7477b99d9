"""The session-start briefing and the handoff: what the service picks for a session's first message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_mcp.bootstrap import build_service
from memory_mcp.core import briefing
from memory_mcp.core.hashing_embedder import HashingEmbedder
from memory_mcp.core.model import Access, Scope
from memory_mcp.core.service import MemoryService
from memory_mcp.errors import InvalidInput
from tests.conftest import settings_at


@pytest.fixture
def service(tmp_path: Path) -> Iterator[MemoryService]:
    built = build_service(settings_at(tmp_path), embedder=HashingEmbedder())
    yield built
    built.close()


def names(items: list[briefing.BriefItem]) -> list[str]:
    return [item.entry.memory.name for item in items]


def test_pinned_first_then_newest_in_the_scope_and_global(service: MemoryService) -> None:
    service.remember(name="rule", content="Always run the tests.", scope="org/p", tags=["pinned"])
    for name in ("first", "second", "third"):
        service.remember(name=name, content=f"The {name} note.", scope="org/p")
    service.remember(name="global-fact", content="Shared by every project.")
    service.remember(name="elsewhere", content="Another project's note.", scope="org/q")
    service.remember(name="deeper", content="A sub-project's note.", scope="org/p/sub")
    found = service.briefing("org/p")
    assert names(found.pinned) == ["rule"]
    assert names(found.recent) == ["deeper", "global-fact", "third", "second", "first"]
    assert found.omitted == 0
    assert found.recent[0].snippet == "A sub-project's note."


def test_the_budget_bounds_the_message(service: MemoryService) -> None:
    for i in range(30):
        service.remember(name=f"note-{i:02}", content=f"Note {i}: " + "words " * 200, scope="p")
    small = service.briefing("p", budget=200)
    large = service.briefing("p", budget=5000)
    assert 0 < len(small.recent) < len(large.recent)
    chars = sum(briefing.ITEM_OVERHEAD + len(i.snippet) + len(i.entry.memory.name) + 1 for i in small.recent)
    assert chars <= 200 * briefing.CHARS_PER_TOKEN
    assert small.omitted == 30 - len(small.recent)
    assert names(small.recent)[0] == "note-29", "the newest come first"
    assert all(len(i.snippet) <= briefing.RECENT_SNIPPET + 1 for i in large.recent)


def test_a_scoped_caller_sees_only_its_scopes(service: MemoryService) -> None:
    service.remember(name="mine", content="Project A.", scope="proj-a")
    service.remember(name="global-secret", content="Global, not for agent A.")
    agent = Access(scopes=(Scope("proj-a"),))
    assert names(service.briefing("proj-a", access=agent).recent) == ["mine"]
    assert names(service.briefing("proj-b", access=agent).recent) == []


def test_the_handoff_is_found_only_in_its_scope(service: MemoryService) -> None:
    assert service.handoff("org/p") is None
    service.remember(name=briefing.HANDOFF_NAME, content="Next: ship it.", scope="org/p")
    assert service.handoff("org/p").memory.content == "Next: ship it."
    assert service.handoff("org/q") is None
    assert service.handoff("org/p", access=Access(scopes=(Scope("org/q"),))) is None


@pytest.mark.parametrize("budget", [0, 99, 10**6, True])
def test_a_bad_budget_is_refused(service: MemoryService, budget: int) -> None:
    with pytest.raises(InvalidInput, match="budget"):
        service.briefing("p", budget=budget)
