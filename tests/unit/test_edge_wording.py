"""Each edge words the next step in its own terms: tool names for agents, commands and flags for people."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory_mcp import cli
from memory_mcp.bootstrap import build_service
from memory_mcp.core import AlreadyExists, Conflict, Locator, MemoryMcpError, MemoryService, NotFound
from memory_mcp.core.hashing_embedder import HashingEmbedder
from memory_mcp.server import agent_wording
from tests.conftest import settings_at


@pytest.fixture
def service(tmp_path: Path) -> MemoryService:
    built = build_service(settings_at(tmp_path), embedder=HashingEmbedder())
    yield built
    built.close()


@pytest.mark.parametrize(
    "where", [Locator(name="nowhere", scope="team"), Locator(id="01J00000000000000000000000")]
)
def test_a_findable_miss_names_the_tools_to_an_agent_and_the_commands_to_a_person(
    service: MemoryService, where: Locator
) -> None:
    service.remember(name="nowhere", content="in another scope", scope="elsewhere")
    for attempt in (service.read, service.history):
        with pytest.raises(NotFound) as caught:
            attempt(where)
        assert caught.value.findable
        assert "recall" not in str(caught.value), "the core's message names no edge's tools"
        assert agent_wording.error_text(caught.value).endswith("; use list or recall to find memories")
        assert "`memory-mcp recall QUERY`" in cli._next_step(caught.value)
        if where.name and attempt == service.read:
            assert "elsewhere" in str(caught.value), "a miss says which scopes have that name"


def test_replaceable_names_the_replace_argument_or_the_flag() -> None:
    taken = AlreadyExists("'a' already exists in scope 'global'", replaceable=True)
    assert "remember with replace=true" in agent_wording.error_text(taken)
    assert "--replace" in cli._next_step(taken) and "replace=true" not in cli._next_step(taken)


@pytest.mark.parametrize(
    "error",
    [NotFound("version 'abc' is not among the last versions"), AlreadyExists("taken"), Conflict("changed")],
)
def test_no_hint_where_none_helps(error: MemoryMcpError) -> None:
    assert agent_wording.error_text(error) == f"{type(error).__name__}: {error}"
    assert cli._next_step(error) == ""
