"""The parity check catches memories that recall cannot tell apart by their first line."""

from __future__ import annotations

from pathlib import Path

from memory_mcp.bootstrap import build_service
from memory_mcp.core.embedder import Embedder
from memory_mcp.core.model import Memory, Scope
from memory_mcp.migrate.plan import Batch, Candidate
from memory_mcp.migrate.verify import TOP, first_line, verify
from tests.conftest import settings_at


def test_first_line_skips_blank_lines() -> None:
    assert first_line("\n  \n  # Deploys  \nbody") == "# Deploys"


def test_memories_outside_the_top_five_are_misses(tmp_path: Path, embedder: Embedder) -> None:
    service = build_service(settings_at(tmp_path), embedder=embedder)
    try:
        team = Scope("team")
        memories = [Memory(f"note-{i}", team, f"# Notes\nItem {i} of the weekly list.\n") for i in range(7)]
        memories.append(Memory("deploys", team, "# How we deploy\nArgo CD syncs main every five minutes.\n"))
        service.save_many(memories, message="test: notes")
        batch = Batch("test", candidates=[Candidate(m, f"file {m.name}", m.name) for m in memories])
        report = verify(service, [batch])
    finally:
        service.close()
    assert not report["ok"] and report["checked"] == 8
    assert [m["problem"] for m in report["misses"]] == [f"not in the top {TOP} of recall('# Notes')"] * 2
    counts = {"memories": 8, "readable": 8, "identical": 8, "recalled": 6}
    assert report["scopes"] == [{"scope": "team", **counts}]
