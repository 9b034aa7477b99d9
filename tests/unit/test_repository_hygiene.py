"""Files someone with push access (or a hand edit) put into the repository: symbolic links on the way to a
memory, files that reuse an id or a name, files that claim a scope their folder is not. A real repository and
real git; the hashing fake embedder, since no rule here depends on meaning."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from memory_mcp.bootstrap import build_service
from memory_mcp.core.hashing_embedder import HashingEmbedder
from memory_mcp.core.model import Access, Scope
from memory_mcp.core.service import Locator, MemoryService
from memory_mcp.errors import NotFound
from tests.conftest import settings_at


@pytest.fixture
def service(tmp_path: Path) -> MemoryService:
    built = build_service(settings_at(tmp_path), embedder=HashingEmbedder())
    yield built
    built.close()


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def commit_file(service: MemoryService, path: str, text: str) -> None:
    repo = service.store.root
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    git(repo, "-c", "user.name=hand", "-c", "user.email=hand@example.com", "add", path)
    git(repo, "-c", "user.name=hand", "-c", "user.email=hand@example.com", "commit", "-qm", f"hand: {path}")
    service.refresh()


def memory_file(memory_id: str, name: str, scope: str, body: str) -> str:
    return (
        f"---\nid: {memory_id}\nname: {name}\ntags: []\nscope: {scope}\ncreated_at: 2025-03-01T10:00:00Z\n"
        f"updated_at: 2025-03-01T10:00:00Z\nsource: ''\n---\n\n{body}\n"
    )


def test_a_scope_folder_replaced_by_a_link_is_never_read_through(service: MemoryService, tmp_path: Path) -> None:
    service.remember(name="note", content="The real note.", scope="proj")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "note.md").write_text(memory_file("x", "note", "proj", "Outside secrets."))
    (outside / "extra.md").write_text(memory_file("y", "extra", "proj", "More outside secrets."))
    folder = service.store.root / "projects" / "proj"
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    folder.symlink_to(outside, target_is_directory=True)
    assert service.store.uncommitted_files() == [], "nothing below a linked folder is read"
    reopened = build_service(settings_at(tmp_path), embedder=HashingEmbedder())
    try:
        contents = {entry.memory.content for entry in reopened.catalog.entries()}
        assert not any("Outside" in text for text in contents), contents
    finally:
        reopened.close()


def test_clashing_and_misplaced_files_are_reported_with_a_fixed_winner(service: MemoryService) -> None:
    real = service.remember(name="plan", content="The real plan.", scope="proj-a").entry
    commit_file(service, "projects/proj-a/zcopy.md", memory_file(real.memory.id, "zcopy", "proj-a", "Same id."))
    commit_file(service, "projects/proj-b/plan.md", memory_file("z-1", "plan", "proj-a", "Claims proj-a."))
    problems = service.unreadable()
    assert "also used by projects/proj-a/plan.md" in problems["projects/proj-a/zcopy.md"]
    assert "projects/proj-a/plan.md" in problems["projects/proj-b/plan.md"]
    assert service.read(Locator(id=real.memory.id)).path == "projects/proj-a/plan.md", "the real file wins"
    assert service.read(Locator("plan", "proj-a")).memory.content == "The real plan."
    assert service.reindex().unreadable == problems, "reindex reports the same problems"

    # Rights follow the folder: a proj-a token cannot reach the file that lies in proj-b's folder.
    agent = Access(scopes=(Scope("proj-a"),), who="agent-a")
    service.forget(Locator("plan", "proj-a"), access=agent)
    with pytest.raises(NotFound):
        service.forget(Locator("plan", "proj-a"), access=agent)
    assert (service.store.root / "projects/proj-b/plan.md").exists()
    assert service.read(Locator("plan", "proj-a")).path == "projects/proj-b/plan.md", "now the only holder"
    assert "projects/proj-a/zcopy.md" not in service.unreadable(), "its id is its own once the clash is gone"


@pytest.mark.parametrize("clash", [True, False], ids=["clashing-ids", "misplaced-only"])
def test_a_restart_reports_the_same_files_and_the_same_winner(tmp_path: Path, clash: bool) -> None:
    """Start-up links every memory at once unless two share an id or a name (then one by one, as each write
    does); either way the restarted service must agree with the one that saw the files arrive."""
    service = build_service(settings_at(tmp_path), embedder=HashingEmbedder())
    try:
        real = service.remember(name="plan", content="The real plan.", scope="proj-a").entry
        service.remember(name="tagged", content="Carries a tag.", scope="proj-a", tags=["keep"])
        if clash:
            same_id = memory_file(real.memory.id, "zcopy", "proj-a", "Id.")
            commit_file(service, "projects/proj-a/zcopy.md", same_id)
        misplaced = memory_file("z-1", "other", "proj-a", "Claims proj-a.")
        commit_file(service, "projects/proj-b/other.md", misplaced)
        before = service.unreadable()
    finally:
        service.close()
    reopened = build_service(settings_at(tmp_path), embedder=HashingEmbedder())
    try:
        assert reopened.unreadable() == before and "projects/proj-b/other.md" in before
        assert ("projects/proj-a/zcopy.md" in before) is clash
        assert reopened.read(Locator(id=real.memory.id)).path == "projects/proj-a/plan.md"
        assert [entry.memory.name for entry in reopened.list(tags=["keep"]).entries] == ["tagged"]
        assert reopened.recall("Claims", scope="proj-a")[0].entry.path == "projects/proj-b/other.md"
    finally:
        reopened.close()


def test_unsafe_paths_and_oversized_files_are_reported_and_never_written(service: MemoryService) -> None:
    """A commit that arrives by pull (here: made by hand and moved onto with the store's branch move)."""
    repo, store = service.store.root, service.store
    service.remember(name="base", content="Something to start from.")
    old = store.head()
    git(repo, "checkout", "-q", "-b", "incoming")
    (repo / "global" / "..md").write_text(memory_file("d-1", "dots", "global", "A dot-led name."))
    (repo / "global" / "huge.md").write_bytes(memory_file("h-1", "huge", "global", "x").encode() + b"y" * 3_000_000)
    git(repo, "add", "-f", "global/..md", "global/huge.md")
    git(repo, "-c", "user.name=hand", "-c", "user.email=hand@example.com", "commit", "-qm", "pushed by hand")
    new = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    git(repo, "checkout", "-q", "main")
    (repo / "global" / "..md").unlink(missing_ok=True)
    (repo / "global" / "huge.md").unlink(missing_ok=True)
    with store.write_lock():
        store.move_branch(old, new.strip(), "pull")
    assert not (repo / "global" / "huge.md").exists(), "an oversized blob is never written into the work tree"
    assert not (repo / "global" / "..md").exists()
    service.refresh()
    problems = service.unreadable()
    assert "starts with '.'" in problems["global/..md"] and "larger than" in problems["global/huge.md"]
    assert {entry.path for entry in service.catalog.entries()} == {"global/base.md"}
