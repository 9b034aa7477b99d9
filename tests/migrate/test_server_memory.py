"""The knowledge-graph server's memory.jsonl: one memory per entity, relations written into both ends."""

from __future__ import annotations

import json
from pathlib import Path

from memory_mcp.core.model import Scope
from memory_mcp.migrate import server_memory
from tests.migrate.conftest import Run, commits, run_json

GRAPH = [
    {
        "type": "entity",
        "name": "John_Smith",
        "entityType": "person",
        "observations": ["Speaks fluent Spanish", "Graduated in 2019"],
    },
    {"type": "entity", "name": "Anthropic", "entityType": "organization", "observations": ["AI safety lab"]},
    {"type": "relation", "from": "John_Smith", "to": "Anthropic", "relationType": "works_at"},
    {
        "type": "entity",
        "name": "Café Müller / Berlin",
        "entityType": "place, venue",
        "observations": ["Opens at 8\nCloses at 18"],
    },
    {"type": "relation", "from": "John_Smith", "to": "Café Müller / Berlin", "relationType": "meets at"},
    {"type": "relation", "from": "Anthropic", "to": "Ghost Corp", "relationType": "competes_with"},
    {"type": "relation", "from": "Nobody", "to": "Ghost Corp", "relationType": "owns"},
    {"type": "entity", "name": "John_Smith", "entityType": "person", "observations": ["Prefers mornings"]},
    {"type": "entity", "entityType": "person", "observations": ["no name"]},
    {"type": "note", "text": "not a graph record"},
]


def write_graph(path: Path, records: list[dict], extra: bytes = b"") -> Path:
    path.write_bytes(b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records) + extra)
    return path


def test_entities_become_memories_with_their_relations(tmp_path: Path) -> None:
    file = write_graph(tmp_path / "memory.jsonl", GRAPH, b"{broken\n\xff\xfe not utf-8\n")
    batch = server_memory.read(file, Scope.parse("kg"))
    memories = {c.memory.name: c.memory for c in batch.candidates}
    assert sorted(memories) == ["Anthropic", "Cafe-Muller-Berlin", "John_Smith"]
    john = memories["John_Smith"]
    assert john.content == (
        "# John_Smith\n\nType: person\n\n## Observations\n\n- Speaks fluent Spanish\n- Graduated in 2019\n"
        "- Prefers mornings\n\n## Relations\n\n- John_Smith works_at Anthropic\n"
        "- John_Smith meets at Café Müller / Berlin (memory `Cafe-Muller-Berlin`)\n"
    )
    assert john.tags == ("server-memory", "person") and john.scope == Scope("kg")
    assert john.source == f"server-memory:{file}#John_Smith"
    anthropic = memories["Anthropic"].content
    assert "- John_Smith works_at Anthropic\n- Anthropic competes_with Ghost Corp\n" in anthropic
    cafe = memories["Cafe-Muller-Berlin"]
    assert cafe.tags == ("server-memory", "place venue")
    assert "- Opens at 8\n  Closes at 18\n" in cafe.content
    renamed = [(c.original, c.memory.name) for c in batch.candidates if c.renamed]
    assert renamed == [("Café Müller / Berlin", "Cafe-Muller-Berlin")]
    assert [(s.origin, s.reason.split(":")[0]) for s in batch.skipped] == [
        ("line 7", "relation between two unknown entities"),
        ("line 9", "entity without a name or with observations that are not a list"),
        ("line 10", "not an entity or relation record"),
        ("line 11", "not a JSON object"),
        ("line 12", "not a JSON object"),
    ]


def test_import_is_idempotent_and_verifiable(cli: Run, tmp_path: Path) -> None:
    many = [
        {
            "type": "entity",
            "name": f"service-{i:03d}",
            "entityType": "service",
            "observations": [f"Service {i:03d} owns the {word} queue and pages team {i % 7}."],
        }
        for i, word in enumerate(["billing", "search", "email", "audit", "export"] * 30)
    ]
    file = write_graph(tmp_path / "memory.jsonl", GRAPH + many)
    planned = run_json(cli, "import", "server-memory", str(file), "--dry-run")
    assert len(planned["created"]) == 153 and commits(tmp_path / "repo") == 0

    done = cli("import", "server-memory", str(file))
    assert done.returncode == 0, done.stderr
    assert "embedding 153/153" in done.stderr, "long runs show progress on stderr"
    assert done.stdout.startswith("imported from server-memory: 153 created, 0 replaced, 0 unchanged, 3 skip")
    again = run_json(cli, "import", "server-memory", str(file))
    assert again["commit"] is None and len(again["unchanged"]) == 153
    assert commits(tmp_path / "repo") == 1

    read = run_json(cli, "read", "John_Smith")
    assert read["scope"] == "global" and read["tags"] == ["server-memory", "person"]
    checked = run_json(cli, "verify-import", str(file))
    assert checked["ok"] and checked["checked"] == 153, checked["misses"]
