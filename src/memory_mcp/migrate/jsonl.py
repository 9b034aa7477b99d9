"""Lossless export and import: one JSON object per memory with every stored field, in (scope, name) order,
so exporting the same repository twice gives the same bytes and an import restores ids and times exactly.

Lines are UTF-8 JSON (non-ASCII kept readable) separated by `\\n` only; JSON escapes every control character,
and lines are split on that byte, never on Unicode line separators that content may hold. The file is a
backup format, so it is read strictly: any bad line refuses the whole import, naming the line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from memory_mcp.core import (
    MAX_LIMIT,
    Memory,
    MemoryService,
    Scope,
    format_time,
    validate_content,
    validate_name,
    validate_source,
    validate_tags,
)
from memory_mcp.errors import InvalidInput
from memory_mcp.migrate.names import display
from memory_mcp.migrate.plan import Batch, Candidate

FIELDS: Final = ("id", "name", "scope", "tags", "content", "source", "created_at", "updated_at")
MAX_ID_CHARS: Final = 128


def record(memory: Memory) -> dict[str, Any]:
    return {
        "id": memory.id,
        "name": memory.name,
        "scope": str(memory.scope),
        "tags": list(memory.tags),
        "content": memory.content,
        "source": memory.source,
        "created_at": format_time(memory.created_at),
        "updated_at": format_time(memory.updated_at),
    }


def export(service: MemoryService, out: TextIO) -> int:
    """Write every memory to `out`; the number written."""
    count, cursor = 0, None
    while True:
        page = service.list(limit=MAX_LIMIT, cursor=cursor)
        out.writelines(json.dumps(record(entry.memory), ensure_ascii=False) + "\n" for entry in page.entries)
        count += len(page.entries)
        if page.next_cursor is None:
            return count
        cursor = page.next_cursor


def read(file: Path) -> Batch:
    """The memories of an export file, exactly as exported."""
    file = file.expanduser().resolve()
    try:
        lines = file.read_bytes().split(b"\n")
    except OSError as exc:
        raise InvalidInput(f"cannot read {display(file)}: {exc.strerror}") from exc
    batch = Batch("jsonl", sources=[display(file)])
    keys: dict[tuple[Scope, str], int] = {}
    ids: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            memory = _memory(json.loads(line))
        except (ValueError, InvalidInput) as exc:  # ValueError covers bad JSON and undecodable bytes
            raise InvalidInput(f"{display(file)} line {number}: {exc}") from exc
        for seen, key in ((keys, memory.key), (ids, memory.id)):
            if key in seen:
                raise InvalidInput(f"{display(file)} line {number} repeats the memory of line {seen[key]}")
            seen[key] = number
        batch.candidates.append(Candidate(memory, f"line {number}", memory.name))
    return batch


def _memory(data: object) -> Memory:
    if not isinstance(data, dict):
        raise InvalidInput("not a JSON object")
    missing = [key for key in FIELDS if key not in data]
    if missing:
        raise InvalidInput(f"missing field(s) {', '.join(missing)}")
    memory_id = data["id"]
    valid_id = isinstance(memory_id, str) and 0 < len(memory_id) <= MAX_ID_CHARS and memory_id.isprintable()
    if not valid_id:
        raise InvalidInput(f"id must be a printable string of at most {MAX_ID_CHARS} characters")
    if not isinstance(data["scope"], str):
        raise InvalidInput("scope must be a string")
    return Memory(
        name=validate_name(data["name"]),
        scope=Scope.parse(data["scope"]),
        content=validate_content(data["content"]),
        tags=validate_tags(data["tags"]),
        source=validate_source(data["source"]),
        id=memory_id,
        created_at=_time(data["created_at"]),
        updated_at=_time(data["updated_at"]),
    )


def _time(value: object) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment.astimezone(UTC)
    raise InvalidInput(f"time {value!r} is not an RFC 3339 time with a zone, e.g. 2025-01-31T12:00:00.000Z")
