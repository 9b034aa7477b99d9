"""The use cases the web UI adds for people curating memories: restore, newest-first listing, scope counts."""

from __future__ import annotations

import pytest

from memory_mcp.core.model import Access, Scope
from memory_mcp.core.service import Locator, MemoryService
from memory_mcp.errors import Conflict, Forbidden, InvalidInput, NotFound


def test_restore_puts_an_old_version_back_as_a_new_commit(service: MemoryService) -> None:
    first = service.remember(name="plan", content="Deploy on Fridays.", tags=["ops"], scope="team")
    second = service.edit(Locator("plan", "team"), content="Never deploy on Fridays.", tags=["ops", "rule"])
    oldest = service.history(Locator("plan", "team"))[-1]

    restored = service.restore(
        Locator("plan", "team"), oldest.commit[:10], expected_version=second.entry.version, actor="alice"
    )
    memory = restored.entry.memory
    assert (memory.content, memory.tags) == ("Deploy on Fridays.", ("ops",))
    assert memory.id == first.entry.memory.id and memory.created_at == first.entry.memory.created_at
    latest = service.history(Locator("plan", "team"))
    assert len(latest) == 3, "a new commit, the edit is kept in history"
    assert latest[0].message.startswith(f"chore: restore memory 'plan' to {oldest.commit[:12]}")
    assert latest[0].author.startswith("alice ")
    _, kept = service.content_at(Locator("plan", "team"), latest[1].commit)
    assert kept.content == "Never deploy on Fridays."


def test_restore_is_guarded_by_the_expected_version(service: MemoryService) -> None:
    first = service.remember(name="note", content="one")
    service.edit(Locator("note"), content="two")
    oldest = service.history(Locator("note"))[-1]
    with pytest.raises(Conflict, match="changed since you read it"):
        service.restore(Locator("note"), oldest.commit, expected_version=first.entry.version)
    assert service.read(Locator("note")).memory.content == "two"
    with pytest.raises(InvalidInput, match="already has the content"):
        service.restore(Locator("note"), service.history(Locator("note"))[0].commit)
    with pytest.raises(NotFound):
        service.restore(Locator("note"), "abcdef12")


def test_restore_respects_access(service: MemoryService) -> None:
    service.remember(name="x", content="one", scope="a")
    service.edit(Locator("x", "a"), content="two")
    oldest = service.history(Locator("x", "a"))[-1].commit
    with pytest.raises(Forbidden, match="read-only"):
        service.restore(Locator("x", "a"), oldest, access=Access(read_only=True))
    with pytest.raises(NotFound):
        service.restore(Locator("x", "a"), oldest, access=Access(scopes=(Scope("b"),)))
    assert service.read(Locator("x", "a")).memory.content == "two"


def test_recent_lists_newest_first_a_page_at_a_time(service: MemoryService) -> None:
    for i in range(5):
        service.remember(name=f"m{i}", content=f"memory {i}", scope="s" if i % 2 else None, tags=[f"t{i % 2}"])
    service.edit(Locator("m1", "s"), content="touched last")
    seen, cursor = [], None
    while True:
        page = service.recent(limit=2, cursor=cursor)
        seen += [e.memory.name for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["m1", "m4", "m3", "m2", "m0"]
    assert [e.memory.name for e in service.recent(tags=["t0"]).entries] == ["m4", "m2", "m0"]
    assert [e.memory.name for e in service.recent(scope="s").entries] == ["m1", "m3"]
    hidden = service.recent(access=Access(scopes=(Scope(),))).entries
    assert [e.memory.name for e in hidden] == ["m4", "m2", "m0"]
    with pytest.raises(InvalidInput, match="cursor"):
        service.recent(cursor=service.list(limit=1).next_cursor)


def test_scope_counts_only_show_what_the_caller_may_see(service: MemoryService) -> None:
    service.remember(name="g", content="global one")
    service.remember(name="a1", content="a one", scope="org/a")
    service.remember(name="a2", content="a two", scope="org/a")
    service.remember(name="b1", content="b one", scope="org/b")
    assert service.scope_counts() == {Scope(): 1, Scope("org/a"): 2, Scope("org/b"): 1}
    assert service.scope_counts(access=Access(scopes=(Scope("org/a"),))) == {Scope("org/a"): 2}



def test_versions_come_from_one_history_request(service: MemoryService) -> None:
    service.remember(name="doc", content="v1", tags=["a"])
    service.edit(Locator("doc"), content="v2")
    service.edit(Locator("doc"), content="v3", tags=["b"])
    history = service.history(Locator("doc"))
    revisions, contents = service.versions(Locator("doc"), [history[2].commit[:8].upper()], newest=1)
    assert revisions == history
    assert contents[history[2].commit[:8].lower()].content == "v1"
    assert (contents[history[0].commit].content, contents[history[0].commit].tags) == ("v3", ("b",))
    assert len(contents) == 2
    assert service.versions(Locator("doc"), ["abcdef12"])[1] == {}, "a commit not in the history is left out"
    by_version = history[1].blob[:9]
    assert service.versions(Locator("doc"), [by_version])[1][by_version].content == "v2", "one meaning of version"
    for malformed in ("xyz!", history[1].commit[:6]):
        with pytest.raises(InvalidInput, match="`version` or `commit` from history"):
            service.versions(Locator("doc"), [malformed])
    with pytest.raises(NotFound):
        service.versions(Locator("doc"), [], access=Access(scopes=(Scope("elsewhere"),)))


def test_a_subtree_listing_starts_at_its_scope_and_stops_after_it(service: MemoryService) -> None:
    for scope in ("a", "a-b", "a/c", "a/c/d", "a0", "b", None):
        service.remember(name="m", content=f"in {scope}", scope=scope)
    assert [str(e.memory.scope) for e in service.list(scope="a").entries] == ["a", "a/c", "a/c/d"]
    assert [str(e.memory.scope) for e in service.list(scope="global").entries] == ["global"]
    first = service.list(scope="a", limit=1)
    assert [str(e.memory.scope) for e in service.list(scope="a", cursor=first.next_cursor).entries] == ["a/c", "a/c/d"]
    assert service.scope_counts()[Scope("a/c")] == 1
