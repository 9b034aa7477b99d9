"""What an import will do, decided against the repository before anything is written, so `--dry-run` shows
exactly what the real run then does, and the real run writes everything in one commit or nothing.

A memory that already exists is left alone when identical, replaced when it came from the same source
(`owns`: the same Serena file, the same graph entity, the same exported id), and otherwise a conflict: the
import refuses, as `remember` refuses a taken name, rather than overwrite a memory someone else wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memory_mcp.core import Entry, Locator, Memory, MemoryService, Progress, Scope
from memory_mcp.errors import AlreadyExists, NotFound

Owns = Callable[[Memory, Memory], bool]
"""(existing, incoming) → may the import replace the existing memory?"""


def same_source(existing: Memory, incoming: Memory) -> bool:
    return existing.source == incoming.source


def same_id(existing: Memory, incoming: Memory) -> bool:
    return existing.id == incoming.id


@dataclass(frozen=True)
class Candidate:
    """A memory an importer built, with where it came from and the name it had there."""

    memory: Memory
    origin: str
    original: str

    @property
    def renamed(self) -> bool:
        return self.memory.name != self.original


@dataclass(frozen=True)
class Skipped:
    origin: str
    reason: str


@dataclass
class Batch:
    """What a reader found: memories to write, and what it could not turn into one (and why)."""

    kind: str
    sources: list[str] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class Plan:
    batch: Batch
    create: list[Candidate] = field(default_factory=list)
    replace: list[Candidate] = field(default_factory=list)
    unchanged: list[Candidate] = field(default_factory=list)
    conflicts: list[tuple[Candidate, str]] = field(default_factory=list)
    versions: dict[tuple[Scope, str], str] = field(default_factory=dict)
    """The version each memory to replace was at when planned: the real run replaces only that version."""

    def message(self) -> str:
        """The commit message: a summary a reader of `git log` can trust without opening the commit."""
        written = len(self.create) + len(self.replace)
        renamed = sum(c.renamed for c in self.batch.candidates)
        counts = (
            f"created: {len(self.create)}, replaced: {len(self.replace)}, unchanged: {len(self.unchanged)}, "
            f"skipped: {len(self.batch.skipped)}, renamed: {renamed}"
        )
        sources = "".join(f"source: {source}\n" for source in self.batch.sources)
        return f"chore: import {written} memories from {self.batch.kind}\n\n{counts}\n{sources}"


def classify(service: MemoryService, batch: Batch, owns: Owns) -> Plan:
    """Sort each candidate into create, replace, unchanged or conflict against the repository as it is."""
    plan = Plan(batch)
    for candidate in batch.candidates:
        memory = candidate.memory
        existing = _find(service, Locator(memory.name, str(memory.scope)))
        if existing is None:
            holder = _find(service, Locator(id=memory.id))
            if holder is None:
                plan.create.append(candidate)
            else:
                plan.conflicts.append((candidate, f"id {memory.id} belongs to {_describe(holder.memory)}"))
        elif (existing.memory.content, existing.memory.tags, existing.memory.source) == (
            memory.content,
            memory.tags,
            memory.source,
        ):
            plan.unchanged.append(candidate)
        elif owns(existing.memory, memory):
            plan.replace.append(candidate)
            plan.versions[memory.key] = existing.version
        else:
            source = existing.memory.source or "no source"
            plan.conflicts.append((candidate, f"{_describe(existing.memory)} exists and came from {source}"))
    return plan


def apply(service: MemoryService, plan: Plan, progress: Progress | None = None) -> str | None:
    """Write the plan in one commit; the commit id, or None when there was nothing to write."""
    if plan.conflicts:
        shown = "; ".join(f"{c.origin}: {why}" for c, why in plan.conflicts[:5])
        more = f" (and {len(plan.conflicts) - 5} more)" if len(plan.conflicts) > 5 else ""
        raise AlreadyExists(
            f"{len(plan.conflicts)} memories would overwrite memories from elsewhere, nothing was imported: "
            f"{shown}{more}. Import into another scope (--scope), or move or forget those memories first"
        )
    memories = [c.memory for c in plan.create + plan.replace]
    if not memories:
        return None
    # Exactly the plan: a memory created or changed by someone else meanwhile refuses the batch.
    expected: dict[tuple[Scope, str], str | None] = {c.memory.key: None for c in plan.create}
    expected.update(plan.versions)
    return service.save_many(memories, message=plan.message(), expected=expected, progress=progress).commit


def view(plan: Plan, *, commit: str | None, dry_run: bool) -> dict[str, Any]:
    """The plan (or its outcome) as plain data for `--json` and the text view."""

    def brief(candidate: Candidate) -> dict[str, str]:
        m = candidate.memory
        return {"name": m.name, "scope": str(m.scope), "origin": candidate.origin}

    return {
        "kind": plan.batch.kind,
        "dry_run": dry_run,
        "commit": commit,
        "sources": plan.batch.sources,
        "created": [brief(c) for c in plan.create],
        "replaced": [brief(c) for c in plan.replace],
        "unchanged": [brief(c) for c in plan.unchanged],
        "renamed": [{**brief(c), "original": c.original} for c in plan.batch.candidates if c.renamed],
        "skipped": [{"origin": s.origin, "reason": s.reason} for s in plan.batch.skipped],
        "conflicts": [{**brief(c), "reason": why} for c, why in plan.conflicts],
    }


def _find(service: MemoryService, where: Locator) -> Entry | None:
    try:
        return service.read(where)
    except NotFound:
        return None


def _describe(memory: Memory) -> str:
    return f"memory {memory.name!r} in scope {str(memory.scope)!r}"
