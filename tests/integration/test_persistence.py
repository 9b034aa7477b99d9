"""Derived state survives restarts: snapshots, incremental catch-up, model changes, uncommitted files."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pygit2
import pytest

from memory_mcp.bootstrap import build_service
from memory_mcp.config import load_settings
from memory_mcp.core import markdown
from memory_mcp.core.embedder import Embedder
from memory_mcp.core.hashing_embedder import HashingEmbedder
from memory_mcp.core.indexer import Indexer
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.service import Locator
from memory_mcp.core.store import GitStore
from memory_mcp.core.vector_index import VectorIndex
from memory_mcp.errors import Busy
from tests.conftest import settings_at


class Counting:
    """Counts the expensive calls a start-up makes: model calls and blob parses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
        self.embedded: list[str] = []
        self.blobs = 0
        original_embed = embedder.embed_documents
        original_blob = GitStore.blob

        def embed(texts: list[str], **options):
            self.embedded.extend(texts)
            return original_embed(texts, **options)

        def blob(store: GitStore, blob_id: str) -> bytes:
            self.blobs += 1
            return original_blob(store, blob_id)

        monkeypatch.setattr(embedder, "embed_documents", embed)
        monkeypatch.setattr(GitStore, "blob", blob)


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=h", "-c", "user.email=h@x", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def write_by_hand(repo: Path, memory: Memory, path: str) -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_bytes(markdown.render(memory))


def test_clean_restart_loads_the_snapshot(tmp_path: Path, embedder: Embedder, monkeypatch) -> None:
    first = build_service(settings_at(tmp_path), embedder=embedder)
    for i in range(30):
        first.remember(name=f"note-{i}", content=f"Observation number {i} about the staging cluster.")
    first.indexer.save_snapshot()
    counting = Counting(monkeypatch, embedder)
    second = build_service(settings_at(tmp_path), embedder=embedder)
    assert len(second.catalog) == 30
    assert counting.embedded == [] and counting.blobs == 0, "a restart must neither parse nor embed"
    assert second.recall("staging cluster observation 7", limit=3)[0].entry.memory.name == "note-7"
    assert second.read(Locator("note-12")).memory.content.startswith("Observation number 12")


def test_catch_up_from_snapshot_is_incremental(tmp_path: Path, embedder: Embedder, monkeypatch) -> None:
    first = build_service(settings_at(tmp_path), embedder=embedder)
    for i in range(10):
        first.remember(name=f"n{i}", content=f"Fact {i} about lighthouses.")
    first.indexer.save_snapshot()
    repo = first.store.root
    write_by_hand(
        repo,
        Memory(name="added", scope=Scope("ops"), content="Added by a git pull: about owls."),
        "projects/ops/added.md",
    )
    (repo / "global/n3.md").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pulled changes")
    counting = Counting(monkeypatch, embedder)
    second = build_service(settings_at(tmp_path), embedder=embedder)
    assert counting.blobs == 1, "only the added file is read"
    assert len(counting.embedded) == 1
    names = {e.memory.name for e in second.list(limit=100).entries}
    assert "added" in names and "n3" not in names and len(names) == 10
    assert second.recall("owls", scope="all")[0].entry.memory.name == "added"


def test_unsaved_writes_are_caught_up_without_embedding(
    tmp_path: Path, embedder: Embedder, monkeypatch
) -> None:
    """What a kill -9 leaves: commits newer than the snapshot, vectors in the cache."""
    first = build_service(settings_at(tmp_path), embedder=embedder)  # saves an empty snapshot at start-up
    for i in range(8):
        first.remember(name=f"k{i}", content=f"Written before the crash, item {i}.")
    counting = Counting(monkeypatch, embedder)
    second = build_service(settings_at(tmp_path), embedder=embedder)  # `first` never saved again: as if killed
    assert len(second.catalog) == 8
    assert counting.embedded == [], "vectors of committed memories come from the cache"


def test_a_snapshot_folder_of_an_older_version_is_rebuilt_without_embedding(
    tmp_path: Path, embedder: Embedder, monkeypatch
) -> None:
    """Versions before the derived store kept whole snapshot folders: they are removed, and the catalog is
    rebuilt from git with the cached vectors."""
    first = build_service(settings_at(tmp_path), embedder=embedder)
    for i in range(6):
        first.remember(name=f"v{i}", content=f"Lighthouse keeper log {i}: the lamp was trimmed at dusk.")
    first.close()
    state = settings_at(tmp_path).state_dir
    shutil.rmtree(state / "derived")
    (state / "snapshots" / "0123abcd").mkdir(parents=True)
    (state / "snapshots" / "manifest.json").write_text(json.dumps({"format": 3, "folder": "0123abcd"}))
    counting = Counting(monkeypatch, embedder)
    second = build_service(settings_at(tmp_path), embedder=embedder)
    assert counting.embedded == [] and counting.blobs == 6
    assert not (state / "snapshots").exists()
    hits = second.recall("lighthouse keeper log 5", limit=1)
    assert hits[0].entry.memory.name == "v5" and hits[0].match_type == "both"
    second.close()


def test_damaged_derived_state_is_rebuilt_from_git(tmp_path: Path, embedder: Embedder, monkeypatch) -> None:
    first = build_service(settings_at(tmp_path), embedder=embedder)
    first.remember(name="survivor", content="Still here after the derived state was damaged.")
    assert first.indexer.save_snapshot(final=True)
    first.close()
    derived = settings_at(tmp_path).state_dir / "derived"
    (graph,) = derived.glob("graph-*.hnsw")
    graph.write_bytes(b"garbage")
    counting = Counting(monkeypatch, embedder)
    second = build_service(settings_at(tmp_path), embedder=embedder)
    assert second.recall("who is still here")[0].entry.memory.name == "survivor"
    assert counting.embedded == [] and counting.blobs == 0, "a bad graph costs only reading the cache"
    second.close()
    (derived / "derived.sqlite").write_bytes(b"not a database at all" * 100)
    third = build_service(settings_at(tmp_path), embedder=embedder)
    assert [e.memory.name for e in third.list().entries] == ["survivor"]
    assert counting.embedded == [] and counting.blobs == 1, "rebuilt from git, vectors from the cache"
    third.close()


def test_model_change_serves_keywords_then_rebuilds_vectors(
    tmp_path: Path, embedder: Embedder, model_path
) -> None:
    first = build_service(settings_at(tmp_path), embedder=embedder)
    first.remember(name="volcano", content="Mount Etna erupted again last spring.")
    first.remember(name="bread", content="Sourdough needs a mature starter and a long proof.")
    first.indexer.save_snapshot()
    other = Embedder(model_path, document_prefix="passage: ")  # a different embedding space
    try:
        service = build_service(settings_at(tmp_path), embedder=other)
        indexer = service.indexer
        assert indexer.pending_vectors == 2
        hits = service.recall("Etna", scope="all")
        assert [h.entry.memory.name for h in hits] == ["volcano"] and hits[0].match_type == "lexical"
        indexer.fill_vectors()
        assert indexer.pending_vectors == 0
        hits = service.recall("which mountain had a volcanic eruption", scope="all")
        assert hits[0].entry.memory.name == "volcano" and hits[0].match_type in ("semantic", "both")
    finally:
        other.close()


def test_uncommitted_files_are_indexed(tmp_path: Path, embedder: Embedder) -> None:
    first = build_service(settings_at(tmp_path), embedder=embedder)
    first.remember(name="committed", content="The original committed text about rivers.")
    first.indexer.save_snapshot()
    repo = first.store.root
    edited = first.read(Locator("committed")).memory
    write_by_hand(
        repo, edited.revised(content="Edited by hand, not committed: about glaciers."), "global/committed.md"
    )
    write_by_hand(
        repo,
        Memory(name="fresh", scope=Scope(), content="A new uncommitted note about deserts."),
        "global/fresh.md",
    )
    second = build_service(settings_at(tmp_path), embedder=embedder)
    assert second.read(Locator("committed")).memory.content.startswith("Edited by hand")
    assert second.recall("deserts")[0].entry.memory.name == "fresh"
    second.indexer.save_snapshot()
    git(repo, "checkout", "--", "global/committed.md")
    (repo / "global/fresh.md").unlink()
    third = build_service(settings_at(tmp_path), embedder=embedder)
    assert third.read(Locator("committed")).memory.content.startswith("The original committed text")
    assert [e.memory.name for e in third.list().entries] == ["committed"]


def test_a_file_committed_after_the_work_tree_scan_is_not_taken_for_a_hand_edit(
    tmp_path: Path, embedder: Embedder, monkeypatch
) -> None:
    """Start-up scans the work tree beside loading the catalog; another process may commit in between."""
    first = build_service(settings_at(tmp_path), embedder=embedder)
    first.remember(name="shared", content="The first version, about harbours.")
    first.close()
    repo = tmp_path / "repo"
    memory = markdown.parse((repo / "global/shared.md").read_bytes())
    write_by_hand(repo, memory.revised(content="The second version, about lighthouses."), "global/shared.md")
    scanned = threading.Event()
    scan, catch_up = GitStore.uncommitted_files, Indexer.catch_up

    def scan_then_commit(store: GitStore) -> list[tuple[str, bytes]]:
        found = scan(store)
        git(repo, "commit", "-qam", "committed by another process")
        scanned.set()
        return found

    def catch_up_after_the_scan(indexer: Indexer, *args, **kwargs) -> int:
        assert scanned.wait(30)
        return catch_up(indexer, *args, **kwargs)

    monkeypatch.setattr(GitStore, "uncommitted_files", scan_then_commit)
    monkeypatch.setattr(Indexer, "catch_up", catch_up_after_the_scan)
    second = build_service(settings_at(tmp_path), embedder=embedder)
    entry = second.catalog.by_path("global/shared.md")
    assert entry is not None and entry.memory.content == "The second version, about lighthouses."
    assert not entry.dirty, "committed before catch-up, so not an uncommitted file"
    assert second.catalog.commit == second.store.head()


def test_concurrent_queries_are_batched(embedder: Embedder, model_path) -> None:
    batches: list[int] = []
    batched = Embedder(model_path, observer=lambda chunks, seconds: batches.append(chunks))
    try:
        results: list = []
        threads = [
            threading.Thread(target=lambda i=i: results.append(batched.embed_query(f"question number {i}")))
            for i in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        batched.close()
    assert len(results) == 16
    assert sum(batches) == 16 and max(batches) > 1, f"expected at least one shared model call, got {batches}"


def test_full_queue_is_busy(model_path) -> None:
    small = Embedder(model_path, queue_limit=1)
    outcomes: list[str] = []
    long_text = " ".join(f"sentence {i} keeps the model busy for a while." for i in range(3000))

    def call(text: str) -> None:
        try:
            small.embed_documents([text])
            outcomes.append("ok")
        except Busy as exc:
            assert "queue is full" in str(exc)
            outcomes.append("busy")

    try:
        threads = [threading.Thread(target=call, args=(long_text,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        small.close()
    assert "busy" in outcomes and "ok" in outcomes


def test_a_query_overtakes_a_bulk_import(model_path) -> None:
    """Documents are embedded a few chunks at a time and queries go first, so a search waits for one slice only."""
    slice_ = 16  # about one model call's worth of these texts
    calls = threading.Semaphore(0)
    embedder = Embedder(model_path, observer=lambda chunks, seconds: calls.release())
    texts = [
        f"document {i} about " + "storage layers and their caches " * 40 for i in range(12 * slice_)
    ]
    imported: list = []
    try:
        bulk = threading.Thread(target=lambda: imported.append(embedder.embed_documents(texts)))
        bulk.start()
        assert calls.acquire(timeout=60), "the first slice of documents was never embedded"
        query = embedder.embed_query("which caches do storage layers use")
        assert bulk.is_alive() and not imported, "the query waited for the whole import"
        bulk.join()
        alone = embedder.embed_documents([texts[0], texts[slice_ + 1], texts[-1]])
    finally:
        embedder.close()
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-4)
    assert len(imported[0]) == len(texts)
    for slice_vectors, own in zip(
        [imported[0][0], imported[0][slice_ + 1], imported[0][-1]], alone, strict=True
    ):
        assert float(slice_vectors[0] @ own[0]) > 0.999, "slices keep every text with its own vectors"


def test_the_loaded_catalog_is_exempt_from_the_cyclic_collector(tmp_path: Path, model_path: Path) -> None:
    """Every full collection rescanned the catalog (0.3 s at 100k memories); once loaded, it is frozen."""
    env = {
        "MEMORY_MCP_REPO_PATH": str(tmp_path / "repo"),
        "MEMORY_MCP_CACHE_DIR": str(tmp_path / "cache"),
        "MEMORY_MCP_MODEL": str(model_path),
    }
    first = build_service(load_settings({}, env))
    first.remember(name="kept", content="A memory that outlives many requests.")
    first.close()
    gc.unfreeze()
    service = build_service(load_settings({}, env))
    try:
        entry = service.read(Locator("kept"))
        assert gc.get_freeze_count() > 0
        assert not any(tracked is entry.memory for tracked in gc.get_objects()), "still scanned"
        made_later = Memory(name="later", scope=Scope(), content="x")
        assert any(tracked is made_later for tracked in gc.get_objects())
    finally:
        service.close()
        gc.unfreeze()


def test_writes_go_on_while_the_vector_graph_is_saved(
    tmp_path: Path, embedder: Embedder, monkeypatch
) -> None:
    """A graph save reads a still graph while writers go on: their vectors wait beside it, are found at
    once, and a restart reads them from the embedding cache instead of the model."""
    service = build_service(settings_at(tmp_path), embedder=embedder)
    service.remember(name="before", content="Green tea wants water well below boiling.")
    saving_file, may_finish = threading.Event(), threading.Event()
    original = VectorIndex.save

    def slow_save(index: VectorIndex, path: str) -> None:
        saving_file.set()
        assert may_finish.wait(30), "the write below never finished"
        original(index, path)

    monkeypatch.setattr(VectorIndex, "save", slow_save)
    saving = threading.Thread(target=lambda: service.indexer.save_snapshot(final=True))
    saving.start()
    assert saving_file.wait(30)
    during = {"name": "during", "content": "The lighthouse keeper trimmed the lamp at dusk."}
    writer = threading.Thread(target=service.remember, kwargs=during)
    writer.start()
    writer.join(10)
    finished_first = not writer.is_alive()
    found = service.recall("who looks after the lighthouse lamp", limit=1)
    may_finish.set()
    saving.join(30)
    writer.join(30)
    assert finished_first, "the write waited for the graph save"
    assert found[0].entry.memory.name == "during" and found[0].match_type in ("semantic", "both")
    monkeypatch.setattr(VectorIndex, "save", original)
    service.indexer.derived.close()  # as if killed: the graph on disk lacks "during"

    counting = Counting(monkeypatch, embedder)
    reloaded = build_service(settings_at(tmp_path), embedder=embedder)
    assert counting.blobs == 0 and counting.embedded == [], "rows are in place; the vector is in the cache"
    assert len(reloaded.catalog.vector_index.pending) == 1
    hits = reloaded.recall("written while the graph was saved", limit=1)
    assert hits[0].entry.memory.name == "during" and hits[0].match_type in ("semantic", "both")
    assert reloaded.indexer.save_snapshot(), "the waiting vector joins the graph, which is saved again"
    assert not reloaded.catalog.vector_index.pending
    reloaded.close()


def test_history_outlives_a_restart_without_replaying_it(tmp_path: Path, embedder: Embedder) -> None:
    """The revision index is kept with the derived state: a restart reads no commit it had indexed, a new
    commit costs one, and a branch reset by hand (`git reset --hard`) is noticed and rebuilt."""
    first = build_service(settings_at(tmp_path), embedder=embedder)
    first.remember(name="diary", content="Day one: the bees swarmed.")
    for day in range(2, 6):
        first.edit(Locator("diary"), content=f"Day {day}: the bees calmed down.")
    first.remember(name="other", content="Unrelated: the fence needs paint.")
    before = [(r.commit, r.blob) for r in first.history(Locator("diary"))]
    assert len(before) == 5 and first.revisions.walked > 5
    first.close()

    second = build_service(settings_at(tmp_path), embedder=embedder)
    assert [(r.commit, r.blob) for r in second.history(Locator("diary"))] == before
    assert second.revisions.walked == 0, "a restart replays no history"
    second.edit(Locator("diary"), content="Day 6: honey.")
    assert len(second.history(Locator("diary"))) == 6
    assert second.revisions.walked == 1
    second.close()

    git(tmp_path / "repo", "reset", "--hard", "HEAD~3")  # drops day 6, "other" and day 5
    third = build_service(settings_at(tmp_path), embedder=embedder)
    assert [(r.commit, r.blob) for r in third.history(Locator("diary"))] == before[1:]
    assert third.revisions.walked == len(git(tmp_path / "repo", "rev-list", "--first-parent", "HEAD").split())
    third.close()


def test_opening_leaves_no_libgit2_repository_to_the_cyclic_collector(tmp_path: Path, monkeypatch) -> None:
    """Start-up pauses the collector and then freezes what is alive: a repository left as cyclic garbage
    meanwhile (a finished thread's, with the git index it read) would never be freed."""
    first = build_service(settings_at(tmp_path), embedder=HashingEmbedder())
    first.remember(name="kept", content="A memory to load.")
    first.close()
    gc.collect()
    monkeypatch.setattr(gc, "freeze", lambda: None)  # frozen garbage would hide from the count below
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        service = build_service(settings_at(tmp_path), embedder=HashingEmbedder())
        gc.collect()
        left = [tracked for tracked in gc.garbage if isinstance(tracked, pygit2.Repository)]
        service.close()
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
