"""`changes`: what was created, edited, moved or forgotten since a time, commit or cursor, from git history."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory_mcp.bootstrap import build_service
from memory_mcp.core import changes
from memory_mcp.core.hashing_embedder import HashingEmbedder
from memory_mcp.core.model import Access, Scope
from memory_mcp.core.service import Locator, MemoryService
from memory_mcp.errors import InvalidInput
from tests.conftest import settings_at


@pytest.fixture
def service(tmp_path: Path) -> Iterator[MemoryService]:
    """Against the hashing fake: `changes` reads git history, so no model is needed."""
    built = build_service(settings_at(tmp_path), embedder=HashingEmbedder())
    yield built
    built.close()


def kinds(page) -> list[tuple[str, str, str]]:
    return [(c.kind, c.memory.name, str(c.memory.scope)) for c in page.changes]


def test_every_kind_newest_first_with_author_and_snippet(service: MemoryService) -> None:
    service.remember(name="a", content="Alpha " * 80, scope="p", actor="ann")
    service.remember(name="b", content="Beta note.", scope="q")
    first = service.changes()
    assert kinds(first) == [("created", "b", "q"), ("created", "a", "p")]
    assert first.changes[1].commit.author.startswith("ann <")
    assert first.changes[1].snippet.endswith("…") and len(first.changes[1].snippet) <= 241

    service.edit(Locator("a", "p"), content="Alpha, second version.")
    service.move(Locator("b", "q"), to_scope="p", new_name="b2")
    service.forget(Locator("a", "p"))
    later = service.changes(cursor=first.cursor)
    assert kinds(later) == [("forgotten", "a", "p"), ("moved", "b2", "p"), ("edited", "a", "p")]
    forgotten, moved, edited = later.changes
    assert forgotten.snippet == "Alpha, second version.", "a forgotten memory shows its last content"
    assert forgotten.version is None and edited.version is not None
    assert (moved.moved_from.name, str(moved.moved_from.scope)) == ("b", "q")
    assert moved.memory.id == first.changes[0].memory.id
    assert kinds(service.changes(cursor=later.cursor)) == [], "nothing new since the last answer"


def test_pages_are_stable_while_writes_go_on(service: MemoryService) -> None:
    for i in range(5):
        service.remember(name=f"m{i}", content=f"Memory number {i}.")
    page = service.changes(limit=2)
    assert [c.memory.name for c in page.changes] == ["m4", "m3"] and page.next_cursor
    service.remember(name="late", content="Written while paging.")
    rest = []
    cursor = page.next_cursor
    while cursor:
        more = service.changes(cursor=cursor, limit=2)
        rest += [c.memory.name for c in more.changes]
        cursor = more.next_cursor
    assert rest == ["m2", "m1", "m0"], "the answer is pinned to the tip its first page saw"
    assert [c.memory.name for c in service.changes(cursor=page.cursor).changes] == ["late"]


def test_since_a_commit_or_a_time(service: MemoryService) -> None:
    old = service.remember(name="old", content="Before the mark.")
    service.remember(name="new", content="After the mark.")
    assert kinds(service.changes(since=old.commit[:10])) == [("created", "new", "global")]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert service.changes(since=future).changes == []
    assert len(service.changes(since="2000-01-01").changes) == 2
    assert len(service.changes(since="2000-01-01T00:00:00Z").changes) == 2


def test_a_scoped_caller_sees_only_its_scopes(service: MemoryService) -> None:
    service.remember(name="mine", content="Project A's note.", scope="proj-a")
    service.remember(name="theirs", content="Project B's secret.", scope="proj-b")
    service.move(Locator("theirs", "proj-b"), to_scope="proj-a")
    service.move(Locator("mine", "proj-a"), to_scope="proj-b")
    agent = Access(scopes=(Scope("proj-a"),))
    seen = kinds(service.changes(access=agent))
    # Moves across the boundary look like a creation (arrived) or a deletion (left) to this caller.
    assert seen == [
        ("forgotten", "mine", "proj-a"),
        ("created", "theirs", "proj-a"),
        ("created", "mine", "proj-a"),
    ]
    assert kinds(service.changes(scope="proj-b")) == [
        ("created", "mine", "proj-b"),
        ("forgotten", "theirs", "proj-b"),
        ("created", "theirs", "proj-b"),
    ], "a scope filter draws the same boundary"
    assert kinds(service.changes(scope="proj-a", access=agent))[0] == ("forgotten", "mine", "proj-a")


def test_changes_made_outside_the_service_are_seen(service: MemoryService) -> None:
    """Another process (or a sync) commits straight to the repository: history is the only source."""
    service.remember(name="here", content="Written by the service.")
    repo = service.store.root
    note = repo / "global" / "by-hand.md"
    note.write_text(
        "---\nid: 5b0c6c9e-0000-4000-8000-000000000001\nname: by-hand\ntags: []\nscope: global\n"
        "created_at: 2026-01-01T00:00:00.000Z\nupdated_at: 2026-01-01T00:00:00.000Z\nsource: ''\n---\n\n"
        "Committed with plain git.\n"
    )
    person = {"NAME": "someone", "EMAIL": "s@example.com"}
    env = {f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER") for key, value in person.items()}
    env["PATH"] = "/usr/bin:/bin"
    subprocess.run(["git", "-C", str(repo), "add", "global/by-hand.md"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "by hand"], check=True, env=env)
    newest = service.changes().changes[0]
    assert (newest.kind, newest.memory.name) == ("created", "by-hand")
    assert newest.commit.author == "someone <s@example.com>"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"since": "yesterday"}, "neither a commit"),
        ({"cursor": "not-a-cursor"}, "not one returned by changes"),
        ({"since": "2026-01-01", "cursor": "x"}, "not both"),
        ({"limit": 0}, "limit"),
        ({"scope": "all/x"}, "reserved"),
    ],
)
def test_bad_arguments_are_clear_errors(service: MemoryService, arguments: dict, message: str) -> None:
    service.remember(name="x", content="Something.")
    with pytest.raises(InvalidInput, match=message):
        service.changes(**arguments)


def test_a_cursor_naming_a_missing_commit_is_refused(service: MemoryService) -> None:
    service.remember(name="x", content="Something.")
    forged = changes._encode(changes._Span(None, "0" * 40, None))
    with pytest.raises(InvalidInput, match="no longer has"):
        service.changes(cursor=forged)
