"""Large memories are committed first and embedded afterwards, behind every other use of the real model."""

from __future__ import annotations

from pathlib import Path

from memory_mcp.bootstrap import build_store, open_service
from memory_mcp.core import markdown
from memory_mcp.core.embedder import Embedder
from memory_mcp.core.indexer import DEFER_CHUNKS
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.store import memory_path
from tests.conftest import settings_at


def test_a_large_memory_is_found_by_keywords_at_once_and_by_meaning_once_embedded(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = settings_at(tmp_path)
    store = build_store(settings)[0]
    service = open_service(settings, store, embedder, owns_embedder=False, background_embedding=True)
    try:
        text = " ".join(f"Section {i} explains how the tidal turbine gearbox is serviced." for i in range(600))
        assert embedder.chunk_count(text) > DEFER_CHUNKS
        saved = service.remember(name="turbine-manual", content=text + " quokka")
        assert saved.embedding_later and not saved.entry.labels
        assert service.stats().pending_vectors == 1
        assert [h.entry.memory.name for h in service.recall("quokka")] == ["turbine-manual"]
        small = service.remember(name="short", content="Gearbox oil is changed every spring.")
        assert not small.embedding_later, "small memories are embedded before their commit, as before"

        assert service.fill_vectors() == 1
        assert service.stats().pending_vectors == 0
        hits = service.recall("servicing the gearbox of a tidal turbine", limit=2)
        assert hits[0].entry.memory.name == "turbine-manual" and hits[0].match_type in ("semantic", "both")
    finally:
        service.close()


def test_a_large_memory_that_arrives_from_outside_is_indexed_at_once_and_embedded_later(
    tmp_path: Path, embedder: Embedder
) -> None:
    """A pull (or another process) bringing a large memory: the catch-up that every read and write runs
    first indexes it for keywords without waiting for the model, and the background embedding follows."""
    settings = settings_at(tmp_path)
    service = open_service(
        settings, build_store(settings)[0], embedder, owns_embedder=False, background_embedding=True
    )
    try:
        text = " ".join(f"Chapter {i} covers the glacier survey's ice-core drilling log." for i in range(600))
        assert embedder.chunk_count(text) > DEFER_CHUNKS
        outside = build_store(settings)[0]  # another writer on the same repository
        memory = Memory(name="ice-cores", scope=Scope(), content=text + " narwhal")
        with outside.write_lock():
            outside.commit({memory_path(memory.scope, memory.name): markdown.render(memory)}, [], "pulled")
        small = service.remember(name="note", content="The drill bit is replaced after each core.")
        assert not small.embedding_later, "the write ran the catch-up first, without embedding the large one"
        assert service.stats().pending_vectors == 1
        assert service.indexer.backlog.is_set(), "the background embedding is woken"
        found = {h.entry.memory.name: h.match_type for h in service.recall("narwhal")}
        assert found["ice-cores"] == "lexical", "found by keywords while it waits for vectors"

        assert service.fill_vectors() == 1
        hits = service.recall("drilling ice cores in a glacier survey", limit=2)
        assert hits[0].entry.memory.name == "ice-cores" and hits[0].match_type in ("semantic", "both")
    finally:
        service.close()


def test_one_shot_commands_still_embed_what_they_catch_up_with(tmp_path: Path, embedder: Embedder) -> None:
    settings = settings_at(tmp_path)
    service = open_service(settings, build_store(settings)[0], embedder, owns_embedder=False)
    try:
        text = " ".join(f"Chapter {i} covers the glacier survey's ice-core drilling log." for i in range(600))
        outside = build_store(settings)[0]
        memory = Memory(name="ice-cores", scope=Scope(), content=text)
        with outside.write_lock():
            outside.commit({memory_path(memory.scope, memory.name): markdown.render(memory)}, [], "pulled")
        service.refresh()
        assert service.stats().pending_vectors == 0, "a command has no later: it embeds during catch-up"
    finally:
        service.close()
