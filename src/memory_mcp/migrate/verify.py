"""The parity check run before an agent fleet switches over: every source memory must be readable with
identical content, and `recall` with its first non-empty line, in its own scope, must return it in the top 5.

Sources are read exactly as an import reads them (same names, same skips), so pass the same paths and
`--scope` as to the import. Files an import skips by design (empty, over 1 MiB, not UTF-8) are listed as
skipped, not as misses: the import reported them already and they cannot be memories.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Final

from memory_mcp.core import MAX_QUERY_CHARS, Locator, MemoryService, Progress, Scope
from memory_mcp.errors import NotFound
from memory_mcp.migrate import jsonl, serena, server_memory
from memory_mcp.migrate.plan import Batch, Candidate

TOP: Final = 5
STAGES: Final = ("memories", "readable", "identical", "recalled")


def read_sources(paths: list[Path], scope: str | None) -> list[Batch]:
    """Folders hold Serena memories; a file is our export, or server-memory's graph when it holds one."""
    folders = [path for path in paths if path.expanduser().is_dir()]
    batches = [serena.read(folders, scope)] if folders else []
    for path in paths:
        if path not in folders:
            graph = _is_graph(path.expanduser())
            batches.append(server_memory.read(path, Scope.parse(scope)) if graph else jsonl.read(path))
    return batches


def verify(service: MemoryService, batches: list[Batch], progress: Progress | None = None) -> dict[str, Any]:
    candidates = [c for batch in batches for c in batch.candidates]
    stages: dict[str, Counter[str]] = {}
    misses: list[dict[str, str]] = []
    for done, candidate in enumerate(candidates, 1):
        reached, problem = _check(service, candidate)
        scope = str(candidate.memory.scope)
        stages.setdefault(scope, Counter()).update(["memories", *reached])
        if problem is not None:
            name, origin = candidate.memory.name, candidate.origin
            misses.append({"name": name, "scope": scope, "origin": origin, "problem": problem})
        if progress:
            progress(done, len(candidates))
    return {
        "ok": not misses,
        "checked": len(candidates),
        "scopes": [{"scope": scope, **{s: n[s] for s in STAGES}} for scope, n in sorted(stages.items())],
        "misses": misses,
        "skipped": [{"origin": s.origin, "reason": s.reason} for batch in batches for s in batch.skipped],
    }


def _check(service: MemoryService, candidate: Candidate) -> tuple[list[str], str | None]:
    """The stages a memory passed, and what went wrong at the first one it failed."""
    memory = candidate.memory
    try:
        entry = service.read(Locator(memory.name, str(memory.scope)))
    except NotFound:
        return [], "missing"
    if entry.memory.content != memory.content:
        return ["readable"], "content differs"
    query = first_line(memory.content)
    hits = service.recall(query, scope=str(memory.scope), limit=TOP)
    if entry.memory.id not in [hit.entry.memory.id for hit in hits]:
        return ["readable", "identical"], f"not in the top {TOP} of recall({query[:60]!r})"
    return ["readable", "identical", "recalled"], None


def first_line(content: str) -> str:
    return next(line.strip() for line in content.splitlines() if line.strip())[:MAX_QUERY_CHARS]


def _is_graph(path: Path) -> bool:
    """True when the first record of the file is a server-memory entity or relation."""
    try:
        with path.open("rb") as file:
            first = next((line for line in file if line.strip()), b"{}")
        record = json.loads(first)
    except (OSError, ValueError):
        return False  # the JSONL reader reports the problem properly
    return isinstance(record, dict) and record.get("type") in ("entity", "relation")
