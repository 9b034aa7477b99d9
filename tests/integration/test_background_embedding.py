"""Large memories are committed first and embedded afterwards, behind every other use of the real model."""

from __future__ import annotations

from pathlib import Path

from memory_mcp.bootstrap import build_store, open_service
from memory_mcp.core.embedder import Embedder
from memory_mcp.core.indexer import DEFER_CHUNKS
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
