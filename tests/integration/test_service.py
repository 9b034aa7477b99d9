"""The use cases against a real repository and the real model."""

from __future__ import annotations

import multiprocessing
import subprocess
from pathlib import Path

import pytest

from memory_mcp.bootstrap import build_service
from memory_mcp.core import markdown
from memory_mcp.core.embedder import Embedder
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.service import Locator, MemoryService
from memory_mcp.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from tests.conftest import settings_at


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def commit_count(service: MemoryService) -> int:
    return int(git(service.store.root, "rev-list", "--count", "HEAD"))


def test_remember_read_and_commit(service: MemoryService) -> None:
    saved = service.remember(
        name="db/pooling",
        content="Use pgbouncer in transaction mode.",
        scope="org/api",
        tags=["postgres", "ops"],
        source="incident-42",
    )
    entry = service.read(Locator("db/pooling", "org/api"))
    assert entry.memory.content == "Use pgbouncer in transaction mode."
    assert entry.memory.tags == ("postgres", "ops")
    assert entry.memory.source == "incident-42"
    assert entry.path == "projects/org/api/db/pooling.md"
    assert service.read(Locator(id=saved.entry.memory.id)).memory.name == "db/pooling"
    log = git(service.store.root, "log", "--format=%an|%s", "-1")
    assert log.strip() == "tester|chore: save memory 'db/pooling'"
    assert (service.store.root / entry.path).read_bytes() == service.store.blob(entry.version)
    assert git(service.store.root, "status", "--porcelain") == ""


def test_remember_refuses_to_overwrite_unless_asked(service: MemoryService) -> None:
    first = service.remember(name="note", content="first version")
    with pytest.raises(AlreadyExists, match="already exists") as refused:
        service.remember(name="note", content="second version")
    assert refused.value.replaceable, "the edges word the way out (replace=true, --replace)"
    assert service.read(Locator("note")).memory.content == "first version"
    replaced = service.remember(name="note", content="second version", replace_existing=True)
    assert replaced.replaced
    assert replaced.entry.memory.id == first.entry.memory.id
    assert replaced.entry.memory.created_at == first.entry.memory.created_at
    assert service.read(Locator("note")).memory.content == "second version"


def test_project_alias_is_the_same_scope(service: MemoryService) -> None:
    service.remember(name="n", content="aliased", scope="project:webapp")
    assert service.read(Locator("n", "webapp")).memory.scope == Scope("webapp")
    with pytest.raises(AlreadyExists):
        service.remember(name="n", content="again", scope="webapp")


def test_near_duplicates_are_reported(service: MemoryService) -> None:
    service.remember(name="deploy", content="Deploys go out every Tuesday after the standup meeting.")
    service.remember(name="unrelated", content="The cat prefers salmon flavoured food.")
    saved = service.remember(name="deploy-day", content="We deploy every Tuesday, right after the standup.")
    names = [s.entry.memory.name for s in saved.similar]
    assert names == ["deploy"]
    floor = service.indexer.embedder.info.unrelated_similarity
    assert saved.similar[0].similarity >= service.near_duplicate > floor


def test_paraphrased_query_finds_its_memory_first(service: MemoryService) -> None:
    facts = {
        "wifi": "The guest wireless network password is printed on the fridge.",
        "payroll": "Salaries are paid on the last working day of each month.",
        "parking": "Visitors must register their car plate at reception to park.",
        "standup": "The daily standup meeting starts at 9:30 in room Orion.",
        "backup": "Database snapshots are taken nightly and kept for thirty days.",
    }
    for name, content in facts.items():
        service.remember(name=name, content=content)
    queries = {
        "how do I get online as a guest": "wifi",
        "when do employees receive their pay": "payroll",
        "where can someone visiting leave their vehicle": "parking",
        "how long are db backups retained": "backup",
    }
    for query, expected in queries.items():
        hits = service.recall(query)
        assert hits[0].entry.memory.name == expected, f"{query!r} → {[h.entry.memory.name for h in hits]}"
        assert hits[0].match_type in ("semantic", "both")


def test_a_rarely_tagged_recall_ranks_its_memories_by_meaning(service: MemoryService) -> None:
    """A tag few memories carry is searched exactly among them (search.EXACT_TAGGED): with the real model,
    the paraphrase still finds its memory first, and an untagged better match stays out."""
    service.remember(name="wifi", content="The guest wireless network password is printed on the fridge.")
    tagged = {
        "wifi-office": "Guests get online with the wireless code written on the reception desk.",
        "payroll": "Salaries are paid on the last working day of each month.",
        "parking": "Visitors must register their car plate at reception to park.",
    }
    for name, content in tagged.items():
        service.remember(name=name, content=content, tags=["office"])
    hits = service.recall("how do I get online as a guest", tags=["office"])
    assert [h.entry.memory.name for h in hits][0] == "wifi-office"
    assert {h.entry.memory.name for h in hits} <= set(tagged)
    assert service.recall("how do I get online as a guest", tags=["office", "nobody-has-it"]) == []


def test_keyword_only_match_is_lexical(service: MemoryService) -> None:
    service.remember(name="codes", content="Error XK-4471 means the license server is unreachable.")
    service.remember(name="other", content="Lunch is served at noon in the cafeteria.")
    hits = service.recall("XK-4471")
    assert hits[0].entry.memory.name == "codes"
    assert hits[0].match_type == "both"


def test_name_and_tags_are_searchable(service: MemoryService) -> None:
    service.remember(
        name="kubernetes/rollback", content="Run the undo command on the deployment.", tags=["k8s"]
    )
    service.remember(name="garden", content="Water the tomatoes twice a week in summer.")
    assert service.recall("kubernetes rollback")[0].entry.memory.name == "kubernetes/rollback"
    assert service.recall("k8s")[0].entry.memory.name == "kubernetes/rollback"


def test_filters_apply_before_the_limit(service: MemoryService) -> None:
    for i in range(12):
        service.remember(name=f"cats-{i}", content=f"Cats sleep a lot, fact number {i}.", scope="zoo")
    service.remember(
        name="rare", content="Cats can also be trained to use a toilet.", scope="zoo", tags=["rare"]
    )
    service.remember(name="global-cat", content="A global note about cats sleeping.")
    service.remember(name="other-cat", content="Cats in the other scope sleep too.", scope="farm")
    hits = service.recall("cats sleeping", scope="zoo", tags=["rare"], limit=1)
    assert [h.entry.memory.name for h in hits] == ["rare"]
    scoped = service.recall("cats sleeping", scope="zoo", limit=20)
    scopes = {str(h.entry.memory.scope) for h in scoped}
    assert scopes == {"zoo", "global"}, "a path covers its subtree plus global, nothing else"
    assert {str(h.entry.memory.scope) for h in service.recall("cats", limit=20)} == {"global"}
    assert "farm" in {str(h.entry.memory.scope) for h in service.recall("cats", scope="all", limit=20)}
    strict = service.recall("cats sleeping", scope="all", limit=20, min_score=0.99)
    assert strict == []


def test_subtree_scopes(service: MemoryService) -> None:
    service.remember(name="a", content="team level note about releases", scope="org/team")
    service.remember(name="b", content="project level note about releases", scope="org/team/proj")
    service.remember(name="c", content="sibling project note about releases", scope="org/other")
    names = {h.entry.memory.name for h in service.recall("releases", scope="org/team", limit=10)}
    assert names == {"a", "b"}
    listed = service.list(scope="org/team")
    assert [e.memory.name for e in listed.entries] == ["a", "b"]


def test_snippet_shows_the_matching_part(service: MemoryService) -> None:
    filler = " ".join(f"Paragraph {i} is about nothing in particular." for i in range(80))
    service.remember(
        name="long", content=f"{filler} The rotation schedule for on-call engineers is weekly. {filler}"
    )
    hit = service.recall("on-call rotation schedule")[0]
    assert hit.truncated
    assert "rotation schedule" in hit.snippet
    assert len(hit.snippet) < 600


def test_edit_content_and_tags(service: MemoryService) -> None:
    saved = service.remember(name="fact", content="The sky is green.", tags=["wrong"])
    edited = service.edit(Locator("fact"), content="The sky is blue.")
    assert edited.entry.memory.content == "The sky is blue."
    assert edited.entry.memory.tags == ("wrong",)
    assert edited.entry.memory.id == saved.entry.memory.id
    assert edited.entry.memory.created_at == saved.entry.memory.created_at
    assert edited.entry.memory.updated_at >= saved.entry.memory.updated_at
    retagged = service.edit(Locator("fact"), tags=["fixed"])
    assert retagged.entry.memory.tags == ("fixed",)
    assert service.recall("what colour is the sky")[0].entry.memory.content == "The sky is blue."
    with pytest.raises(InvalidInput, match="content and/or tags"):
        service.edit(Locator("fact"))


def test_expected_version_detects_concurrent_change(service: MemoryService) -> None:
    saved = service.remember(name="counter", content="value 1")
    service.edit(Locator("counter"), content="value 2", expected_version=saved.entry.version)
    before = commit_count(service)
    with pytest.raises(Conflict, match="changed since you read it"):
        service.edit(Locator("counter"), content="value 3", expected_version=saved.entry.version)
    with pytest.raises(Conflict):
        service.forget(Locator("counter"), expected_version=saved.entry.version[:10])
    assert commit_count(service) == before
    assert service.read(Locator("counter")).memory.content == "value 2"


def test_forget(service: MemoryService) -> None:
    service.remember(name="temp", content="temporary thing", scope="s")
    service.forget(Locator("temp", "s"))
    with pytest.raises(NotFound, match="no memory named 'temp'"):
        service.read(Locator("temp", "s"))
    with pytest.raises(NotFound):
        service.forget(Locator("temp", "s"))
    assert service.recall("temporary thing", scope="all") == []
    assert not (service.store.root / "projects").exists(), "empty folders are pruned"


def test_not_found_hints_at_other_scopes(service: MemoryService) -> None:
    service.remember(name="hint", content="x", scope="elsewhere")
    with pytest.raises(NotFound, match="elsewhere"):
        service.read(Locator("hint"))


def test_move_keeps_identity(service: MemoryService) -> None:
    saved = service.remember(name="draft", content="Plan for the migration to the new cluster.")
    moved = service.move(Locator("draft"), to_scope="infra", new_name="plans/migration")
    assert moved.entry.memory.id == saved.entry.memory.id
    assert moved.entry.memory.created_at == saved.entry.memory.created_at
    assert moved.entry.path == "projects/infra/plans/migration.md"
    assert not (service.store.root / "global" / "draft.md").exists()
    with pytest.raises(NotFound):
        service.read(Locator("draft"))
    assert service.recall("cluster migration plan", scope="infra")[0].entry.memory.name == "plans/migration"
    service.remember(name="taken", content="occupied", scope="infra")
    with pytest.raises(AlreadyExists):
        service.move(Locator("plans/migration", "infra"), new_name="taken")
    with pytest.raises(InvalidInput, match="nothing to move"):
        service.move(Locator("taken", "infra"), to_scope="infra")


def test_history_follows_edits_and_moves(service: MemoryService) -> None:
    service.remember(name="doc", content="v1")
    service.edit(Locator("doc"), content="v2")
    service.move(Locator("doc"), to_scope="archive")
    service.edit(Locator("doc", "archive"), content="v3")
    revisions = service.history(Locator("doc", "archive"))
    assert [r.message.splitlines()[0] for r in revisions] == [
        "chore: save memory 'doc'",
        "chore: move memory 'doc' → 'doc'",
        "chore: save memory 'doc'",
        "chore: save memory 'doc'",
    ]
    assert revisions[-1].path == "global/doc.md" and revisions[0].path == "projects/archive/doc.md"
    assert all(r.author == "tester <tester@example.com>" for r in revisions)
    _, old = service.content_at(Locator("doc", "archive"), revisions[-1].commit[:8])
    assert old.content == "v1"
    assert len(service.history(Locator("doc", "archive"), limit=2)) == 2
    with pytest.raises(NotFound):
        service.content_at(Locator("doc", "archive"), "deadbeef")


def test_path_collision_is_refused(service: MemoryService) -> None:
    service.remember(name="b/c", content="first", scope="a")
    before = commit_count(service)
    with pytest.raises(Conflict, match="share the file projects/a/b/c.md"):
        service.remember(name="c", content="second", scope="a/b")
    assert commit_count(service) == before
    assert service.read(Locator("b/c", "a")).memory.content == "first"


def test_invalid_input_writes_nothing(service: MemoryService) -> None:
    service.remember(name="seed", content="x")
    before = commit_count(service)
    bad_calls = [
        dict(name="../escape", content="x"),
        dict(name="/abs", content="x"),
        dict(name="a/b/c/d", content="x"),
        dict(name="ok", content="x", scope="all"),
        dict(name="ok", content="x", scope="../up"),
        dict(name="ok", content=""),
        dict(name="ok", content="x" * (1024 * 1024 + 1)),
        dict(name="ok", content="x", tags=["a,b"]),
        dict(name="ok", content="x", tags=[f"t{i}" for i in range(40)]),
        dict(name="x" * 65, content="x"),
    ]
    for call in bad_calls:
        with pytest.raises(InvalidInput):
            service.remember(**call)
    assert commit_count(service) == before
    assert git(service.store.root, "status", "--porcelain") == ""


def test_symlinked_folder_is_never_followed(service: MemoryService, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (service.store.root / "projects").mkdir()
    (service.store.root / "projects" / "evil").symlink_to(outside)
    with pytest.raises(InvalidInput, match="symbolic link"):
        service.remember(name="x", content="escape attempt", scope="evil")
    assert list(outside.iterdir()) == []


def test_list_pagination_and_fields(service: MemoryService) -> None:
    for scope in ("global", "b", "a"):
        for i in range(3):
            service.remember(
                name=f"m{i}", content=f"{scope} {i}", scope=scope, tags=["even"] if i % 2 == 0 else []
            )
    seen, cursor = [], None
    while True:
        page = service.list(limit=4, cursor=cursor)
        seen += [(str(e.memory.scope), e.memory.name) for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [(s, f"m{i}") for s in ("global", "a", "b") for i in range(3)]
    assert len(service.list(tags=["even"]).entries) == 6
    assert [e.memory.name for e in service.list(scope="global").entries] == ["m0", "m1", "m2"]
    with pytest.raises(InvalidInput, match="cursor"):
        service.list(cursor="not-a-cursor!")


def test_external_commits_are_picked_up(service: MemoryService, tmp_path: Path) -> None:
    """A human (or git pull) adds, edits and deletes files; the next call sees it."""
    service.remember(name="mine", content="written through the service")
    root = service.store.root
    outsider = Memory(
        name="theirs", scope=Scope("team"), content="Added by hand with plain git about zebras."
    )
    (root / "projects" / "team").mkdir(parents=True)
    (root / "projects" / "team" / "theirs.md").write_bytes(markdown.render(outsider))
    (root / "global" / "mine.md").unlink()
    git(root, "add", "-A")
    git(root, "-c", "user.name=h", "-c", "user.email=h@x", "commit", "-qm", "by hand")
    assert service.read(Locator("theirs", "team")).memory.content.startswith("Added by hand")
    assert service.recall("zebras", scope="all")[0].entry.memory.name == "theirs"
    with pytest.raises(NotFound):
        service.read(Locator("mine"))


def test_unreadable_file_hides_nothing_else(service: MemoryService) -> None:
    service.remember(name="good", content="a perfectly fine memory")
    root = service.store.root
    (root / "global" / "bad.md").write_bytes(b"---\nid: [unclosed\n---\n\nbody")
    (root / "global" / "binary.md").write_bytes(b"\xff\xfe\x00garbage")
    git(root, "add", "-A")
    git(root, "-c", "user.name=h", "-c", "user.email=h@x", "commit", "-qm", "garbage")
    assert [e.memory.name for e in service.list().entries] == ["good"]
    assert set(service.catalog.problems) == {"global/bad.md", "global/binary.md"}
    with pytest.raises(Conflict, match="cannot be read"):
        service.remember(name="bad", content="would overwrite the unreadable file")
    assert (root / "global" / "bad.md").read_bytes().startswith(b"---\nid: [unclosed")


def test_restart_uses_cached_vectors(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build_service(settings_at(tmp_path), embedder=embedder)
    for i in range(5):
        first.remember(name=f"n{i}", content=f"note number {i} about restarting")
    calls = []
    original = embedder.embed_documents
    monkeypatch.setattr(
        embedder, "embed_documents", lambda texts, **kw: calls.append(texts) or original(texts, **kw)
    )
    second = build_service(settings_at(tmp_path), embedder=embedder)
    assert len(second.catalog) == 5
    assert calls == [], "a restart must not re-embed text whose vectors are cached"
    assert second.recall("restarting notes", limit=5)
    second.indexer.rebuild(reembed=True)
    assert sum(len(batch) for batch in calls) == 5


def _remember_many(root: str, model: str, prefix: str, count: int) -> None:
    service = build_service(settings_at(Path(root)), embedder=Embedder(Path(model)))
    for i in range(count):
        service.remember(name=f"{prefix}-{i}", content=f"note {i} written by process {prefix}")


def test_two_processes_lose_no_write(tmp_path: Path, embedder: Embedder, model_path: Path) -> None:
    build_service(settings_at(tmp_path), embedder=embedder)  # initialise the repository first
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_remember_many, args=(str(tmp_path), str(model_path), name, 15))
        for name in ("p", "q")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    service = build_service(settings_at(tmp_path), embedder=embedder)
    names = {e.memory.name for e in service.list(limit=100).entries}
    assert names == {f"{p}-{i}" for p in ("p", "q") for i in range(15)}
    assert commit_count(service) == 30
    subprocess.run(
        ["git", "-C", str(service.store.root), "fsck", "--strict"], check=True, capture_output=True
    )


def test_a_bulk_import_leaves_the_keyword_index_merged(service: MemoryService) -> None:
    """Each write adds an index segment that every search then probes; an import merges them afterwards."""
    notes = [
        Memory(name=f"note-{i}", scope=Scope(), content=f"imported note {i} about tea") for i in range(40)
    ]
    imported = service.save_many(notes, message="test: import")
    assert len(imported.created) == 40
    assert not service.indexer.catalog.lexical.merge_step(), "nothing is left to merge"
    assert len(service.recall("imported tea", limit=50)) == 40


def test_saving_a_snapshot_merges_the_keyword_index_first(service: MemoryService) -> None:
    for i in range(12):
        service.remember(name=f"single-{i}", content=f"written one at a time, number {i}")
    assert service.indexer.save_snapshot(final=True), "a clean stop's save"
    assert not service.indexer.catalog.lexical.merge_step(), "the saved (and the live) index is merged"
