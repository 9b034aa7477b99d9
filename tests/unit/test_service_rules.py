"""The service's rules against the hashing fake embedder and a real repository: no model needed.

The same rules are exercised with the real model in tests/integration/test_service.py; here each one is
pinned down in milliseconds, built through the composition root like every other service.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from memory_mcp.bootstrap import build_service
from memory_mcp.core import catalog, search
from memory_mcp.core.hashing_embedder import HashingEmbedder
from memory_mcp.core.model import Access, Memory, Scope
from memory_mcp.core.service import Locator, MemoryService
from memory_mcp.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from tests.conftest import settings_at


@pytest.fixture
def fake() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def service(tmp_path: Path, fake: HashingEmbedder) -> MemoryService:
    built = build_service(settings_at(tmp_path), embedder=fake)
    yield built
    built.close()


def commits(service: MemoryService) -> int:
    out = subprocess.run(
        ["git", "-C", str(service.store.root), "rev-list", "--count", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout
    return int(out or 0)


# ---------------------------------------------------------------- the fake itself


def test_the_fake_is_deterministic_and_normalised(fake: HashingEmbedder) -> None:
    a = fake.embed_query("Deploys go out on Tuesday")
    assert np.array_equal(a, HashingEmbedder().embed_query("deploys GO out on tuesday"))
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-6
    (rows,) = fake.embed_documents(["Deploys go out on Tuesday"])
    assert rows.shape == (1, fake.info.dimensions) and float(rows[0] @ a) > 0.999
    unrelated = fake.embed_query("salmon flavoured cat food")
    assert float(a @ unrelated) < 0.5
    fake.close()
    with pytest.raises(Unavailable):
        fake.embed_query("closed")


def test_a_lent_embedder_stays_open_after_the_service_closes(tmp_path: Path, fake: HashingEmbedder) -> None:
    build_service(settings_at(tmp_path), embedder=fake).close()
    assert fake.embed_query("still usable").shape == (fake.info.dimensions,)


# ---------------------------------------------------------------- no overwrite


def test_remember_never_overwrites_unless_asked(service: MemoryService) -> None:
    first = service.remember(name="note", content="first version", tags=["a"])
    before = commits(service)
    with pytest.raises(AlreadyExists, match="already exists in scope 'global'"):
        service.remember(name="note", content="second version")
    assert commits(service) == before
    assert service.read(Locator("note")).memory.content == "first version"
    again = service.remember(name="note", content="second version", replace_existing=True)
    assert again.replaced and not first.replaced
    assert again.entry.memory.id == first.entry.memory.id
    assert again.entry.memory.created_at == first.entry.memory.created_at
    assert service.read(Locator("note")).memory.content == "second version"


def test_the_same_name_in_another_scope_is_another_memory(service: MemoryService) -> None:
    one = service.remember(name="note", content="global one")
    two = service.remember(name="note", content="team one", scope="team")
    assert one.entry.memory.id != two.entry.memory.id
    assert service.read(Locator("note", "team")).memory.content == "team one"


def test_two_names_sharing_one_file_are_refused(service: MemoryService) -> None:
    service.remember(name="b/c", content="first", scope="a")
    before = commits(service)
    with pytest.raises(Conflict, match="share the file"):
        service.remember(name="c", content="second", scope="a/b")
    assert commits(service) == before


# ---------------------------------------------------------------- near-duplicates


def test_near_duplicates_are_listed_and_unrelated_memories_are_not(service: MemoryService) -> None:
    service.remember(name="deploy", content="deploys go out every tuesday after the standup")
    service.remember(name="cat", content="the cat prefers salmon flavoured food")
    saved = service.remember(name="deploy-2", content="Deploys go out every Tuesday after the standup!")
    assert [s.entry.memory.name for s in saved.similar] == ["deploy"]
    assert saved.similar[0].similarity >= 0.8
    alone = service.remember(name="garden", content="water tomatoes twice weekly in summer")
    assert alone.similar == ()


def test_near_duplicates_name_only_memories_the_caller_may_read(service: MemoryService) -> None:
    """A caller limited to some scopes hears of no twin outside them; an unlimited one hears of every twin."""
    service.remember(name="deploy", content="deploys go out every tuesday after the standup")
    service.remember(name="deploy", content="deploys go out every tuesday after the standup", scope="team")
    limited = Access(scopes=(Scope("other"),))
    saved = service.remember(
        name="twin", content="Deploys go out every Tuesday after the standup!", scope="other", access=limited
    )
    assert saved.similar == ()
    unlimited = service.remember(name="twin-2", content="Deploys go out every Tuesday after the standup!")
    assert sorted(str(s.entry.memory.scope) for s in unlimited.similar) == ["global", "other", "team"]


def test_an_edit_reports_near_duplicates_too(service: MemoryService) -> None:
    service.remember(name="a", content="rotate the api keys every ninety days")
    service.remember(name="b", content="something else entirely")
    edited = service.edit(Locator("b"), content="rotate the API keys every ninety days")
    assert [s.entry.memory.name for s in edited.similar] == ["a"]


# ---------------------------------------------------------------- conflicts


def test_expected_version_turns_a_lost_update_into_a_conflict(service: MemoryService) -> None:
    saved = service.remember(name="counter", content="value 1")
    edited = service.edit(Locator("counter"), content="value 2", expected_version=saved.entry.version)
    before = commits(service)
    with pytest.raises(Conflict, match="changed since you read it"):
        service.edit(Locator("counter"), content="value 3", expected_version=saved.entry.version)
    with pytest.raises(Conflict):
        service.move(Locator("counter"), to_scope="x", expected_version=saved.entry.version[:7])
    with pytest.raises(Conflict):
        service.forget(Locator("counter"), expected_version=saved.entry.version)
    with pytest.raises(InvalidInput, match="at least 7"):
        service.forget(Locator("counter"), expected_version="abc")
    assert commits(service) == before
    assert service.read(Locator("counter")).memory.content == "value 2"
    service.forget(Locator("counter"), expected_version=edited.entry.version[:7].upper())
    with pytest.raises(NotFound):
        service.read(Locator("counter"))


# ---------------------------------------------------------------- scopes


def _scoped(service: MemoryService) -> None:
    service.remember(name="g", content="release notes global")
    service.remember(name="t", content="release notes team", scope="org/team")
    service.remember(name="p", content="release notes project", scope="org/team/proj")
    service.remember(name="o", content="release notes other", scope="org/other")


def _names(hits) -> set[str]:
    return {hit.entry.memory.name for hit in hits}


def test_recall_scope_rules(service: MemoryService) -> None:
    _scoped(service)
    assert _names(service.recall("release notes", limit=10)) == {"g"}, "omitted: global only"
    assert _names(service.recall("release notes", scope="org/team", limit=10)) == {"g", "t", "p"}
    assert _names(service.recall("release notes", scope="project:org/other", limit=10)) == {"g", "o"}
    assert _names(service.recall("release notes", scope="all", limit=10)) == {"g", "t", "p", "o"}
    assert service.recall("release notes", scope="all", min_score=0.999) == []


def test_list_scope_rules(service: MemoryService) -> None:
    _scoped(service)
    assert [e.memory.name for e in service.list().entries] == ["g", "o", "t", "p"], "omitted: everything"
    assert [e.memory.name for e in service.list(scope="org/team").entries] == ["t", "p"], "subtree only"
    assert [e.memory.name for e in service.list(scope="global").entries] == ["g"]


def test_a_scoped_token_sees_only_its_scopes(service: MemoryService) -> None:
    _scoped(service)
    team = Access(scopes=(Scope("org/team"),), who="token 'team'")
    assert _names(service.recall("release notes", scope="all", limit=10, access=team)) == {"t", "p"}
    with pytest.raises(NotFound):
        service.read(Locator("g"), access=team)
    with pytest.raises(Forbidden):
        service.remember(name="x", content="outside", scope="org/other", access=team)
    reader = Access(read_only=True, who="token 'reader'")
    with pytest.raises(Forbidden, match="read-only"):
        service.edit(Locator("g"), content="changed", access=reader)


def test_tags_filter_recall_and_list(service: MemoryService) -> None:
    service.remember(name="a", content="cats sleep a lot", tags=["rare"])
    service.remember(name="b", content="cats sleep a lot too")
    assert _names(service.recall("cats sleep", tags=["rare"])) == {"a"}
    assert [e.memory.name for e in service.list(tags=["rare"]).entries] == ["a"]



@pytest.mark.parametrize("exact", [-1, 1_000], ids=["graph search", "exact among the tagged"])
def test_a_tag_filtered_recall_respects_scope_and_token_either_way(
    service: MemoryService, monkeypatch: pytest.MonkeyPatch, exact: int
) -> None:
    """Whether the tagged few are compared exactly (search.EXACT_TAGGED) or found by the filtered graph
    search, a recall returns the same memories: tagged, in the scopes asked for, readable by the token."""
    monkeypatch.setattr(search, "EXACT_TAGGED", exact)
    memories = [
        Memory(name=f"n{i:02d}", scope=Scope(["", "org/a", "org/b"][i % 3]), content=f"deploy notes {i}",
               tags=("rare",) if i % 4 == 0 else ("common",))
        for i in range(36)
    ]
    service.save_many(memories, message="bulk")
    names = lambda hits: sorted(h.entry.memory.name for h in hits)  # noqa: E731
    rare = [m for m in memories if "rare" in m.tags]
    everywhere = service.recall("deploy notes", scope="all", tags=["rare"], limit=50)
    assert names(everywhere) == [m.name for m in rare]
    in_a = [m.name for m in rare if m.scope.path in ("", "org/a")]
    assert names(service.recall("deploy notes", scope="org/a", tags=["rare"], limit=50)) == in_a
    token = Access(scopes=(Scope("org/b"),))
    only_b = [m.name for m in rare if m.scope.path == "org/b"]
    assert names(service.recall("deploy notes", scope="all", tags=["rare"], limit=50, access=token)) == only_b
    assert service.recall("deploy notes", scope="all", tags=["rare", "never-used"]) == []
    best = service.recall("deploy notes 8", scope="all", tags=["rare"], limit=1)
    assert best[0].entry.memory.name == "n08"


@pytest.mark.parametrize("few", [0, 1_000], ids=["walking the whole order", "sorting the few tagged"])
def test_a_tag_filtered_listing_pages_alike_either_way(
    service: MemoryService, monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    """A rarely used tag's listing sorts just its memories (catalog.FEW_TAGGED); the pages, cursors and
    filters must be the ones the walk over every memory gives, and follow edits and forgets."""
    monkeypatch.setattr(catalog, "FEW_TAGGED", few)
    memories = [
        Memory(name=f"n{i:02d}", scope=Scope("org/a" if i % 3 else "org/b"), content=f"note {i}",
               tags=("rare", "x") if i % 4 == 0 else ("common",))
        for i in range(24)
    ]
    service.save_many(memories, message="bulk")
    service.edit(Locator("n01", "org/a"), tags=["rare", "x"])  # gains the tag
    service.edit(Locator("n04", "org/a"), tags=["common"])  # loses it
    service.forget(Locator("n08", "org/a"))
    rare = ["n00", "n01", "n12", "n16", "n20"]  # scope org/b holds n00 and n12 (i % 3 == 0)
    first = service.list(tags=["rare", "x"], limit=2)
    rest = service.list(tags=["rare", "x"], limit=10, cursor=first.next_cursor)
    in_order = [(str(e.memory.scope), e.memory.name) for e in [*first.entries, *rest.entries]]
    assert in_order == sorted((str(m.scope), m.name) for m in memories if m.name in rare)
    assert rest.next_cursor is None
    assert [e.memory.name for e in service.list(tags=["rare"], scope="org/b").entries] == ["n00", "n12"]
    newest = service.recent(tags=["rare"], limit=1)
    assert newest.entries[0].memory.name == "n01", "the edit made it the newest"
    assert len(service.recent(tags=["rare"], cursor=newest.next_cursor).entries) == 4
    assert service.list(tags=["never-used"]).entries == []
    scoped = Access(scopes=(Scope("org/b"),))
    assert [e.memory.name for e in service.list(tags=["rare"], access=scoped).entries] == ["n00", "n12"]


# ---------------------------------------------------------------- move


def test_move_keeps_id_and_creation_time(service: MemoryService) -> None:
    saved = service.remember(name="draft", content="plan for the cluster migration")
    moved = service.move(Locator("draft"), to_scope="infra", new_name="plans/migration")
    assert moved.entry.memory.id == saved.entry.memory.id
    assert moved.entry.memory.created_at == saved.entry.memory.created_at
    assert moved.entry.path == "projects/infra/plans/migration.md"
    assert service.read(Locator(id=saved.entry.memory.id)).memory.name == "plans/migration"
    assert not (service.store.root / "global" / "draft.md").exists()
    with pytest.raises(NotFound):
        service.read(Locator("draft"))
    service.remember(name="taken", content="occupied", scope="infra")
    with pytest.raises(AlreadyExists):
        service.move(Locator("plans/migration", "infra"), new_name="taken")
    with pytest.raises(InvalidInput, match="nothing to move"):
        service.move(Locator("taken", "infra"), to_scope="infra")
    with pytest.raises(InvalidInput):
        service.move(Locator("taken", "infra"))


def test_history_follows_a_move(service: MemoryService) -> None:
    service.remember(name="doc", content="v1")
    service.move(Locator("doc"), to_scope="archive")
    revisions = service.history(Locator("doc", "archive"))
    assert [r.path for r in revisions] == ["projects/archive/doc.md", "global/doc.md"]
    _, old = service.content_at(Locator("doc", "archive"), revisions[-1].commit[:8])
    assert old.content == "v1"


def test_a_memory_deleted_outside_the_server_has_a_history_by_id(service: MemoryService) -> None:
    """Another writer's commit (`git rm`, a pull) names no id: the deleted file says whose it was."""
    saved = service.remember(name="doc", content="v1", scope="a")
    service.edit(Locator("doc", "a"), content="v2")
    with service.store.write_lock():
        service.store.commit({}, ["projects/a/doc.md"], "tidy up")
    memory_id = saved.entry.memory.id
    revisions = service.history(Locator(id=memory_id))
    assert len(revisions) == 3 and revisions[0].message == "tidy up" and revisions[0].blob is None
    assert service.history(Locator("doc", "a")) == revisions
    assert service.content_at(Locator(id=memory_id), revisions[2].blob or "")[1].content == "v1"
    with pytest.raises(NotFound, match="has or had id"):
        service.history(Locator(id=memory_id), access=Access(scopes=(Scope("b"),)))
    service.remember(name="doc", content="a new memory, the same name", scope="a")
    assert len(service.history(Locator("doc", "a"))) == 1, "the new memory's own history"
    assert len(service.history(Locator(id=memory_id))) == 3, "the old one's stays"


# ---------------------------------------------------------------- pagination


def test_pages_cover_every_memory_once_in_order(service: MemoryService) -> None:
    expected = []
    for scope in ("global", "b", "a"):
        for i in range(3):
            service.remember(name=f"m{i}", content=f"{scope} {i}", scope=scope)
    for scope in ("global", "a", "b"):
        expected += [(scope, f"m{i}") for i in range(3)]
    seen, cursor, pages = [], None, 0
    while True:
        page = service.list(limit=4, cursor=cursor)
        pages += 1
        seen += [(str(e.memory.scope), e.memory.name) for e in page.entries]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected and pages == 3
    exact = service.list(limit=9)
    assert len(exact.entries) == 9 and exact.next_cursor is None, "a full last page has no next cursor"


def test_a_cursor_survives_deletes_and_bad_cursors_are_refused(service: MemoryService) -> None:
    for i in range(4):
        service.remember(name=f"n{i}", content=f"note {i}")
    first = service.list(limit=2)
    service.forget(Locator("n1"))
    rest = service.list(limit=2, cursor=first.next_cursor)
    assert [e.memory.name for e in rest.entries] == ["n2", "n3"]
    with pytest.raises(InvalidInput, match="cursor"):
        service.list(cursor="not-a-cursor!")
    with pytest.raises(InvalidInput):
        service.list(limit=0)
