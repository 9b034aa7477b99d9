"""A repository written by the reference (Rust) memory-mcp has our file layout and frontmatter, so it opens as
it is: nothing is converted or copied. Importing it means checking it is such a repository, indexing it in
place (which parses every memory file, with progress; the indexes go to the cache directory, never into
git), and reporting what could not be read and which names our stricter rules would refuse on a write.
Afterwards serve it with `MEMORY_MCP_REPO_PATH=PATH`; to merge it into another repository instead, `export`
from it and `import jsonl` the file there.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from memory_mcp.core import MAX_LIMIT, MemoryService, Scope, validate_name
from memory_mcp.errors import InvalidInput
from memory_mcp.migrate.names import display


def check_path(path: Path) -> Path:
    """The repository's folder, checked before anything opens it (opening a plain folder creates a repo)."""
    path = path.expanduser().resolve()
    if not (path / ".git").is_dir():
        raise InvalidInput(f"{display(path)} is not a git repository with a work tree (no .git folder)")
    return path


def summarise(service: MemoryService) -> dict[str, Any]:
    """Memories per scope, unreadable files with reasons, names that only other writers accept, and ids
    held by several memories (`memory-mcp repair --duplicate-ids` fixes those)."""
    repository = service.repository()
    root = repository.root
    if repository.head is None:
        branch = repository.branch
        raise InvalidInput(f"{display(root)} has no commits on branch {branch!r}; name its branch (--branch)")
    scopes: Counter[str] = Counter()
    refused: list[dict[str, str]] = []
    cursor = None
    while True:
        page = service.list(limit=MAX_LIMIT, cursor=cursor)
        for entry in page.entries:
            memory = entry.memory
            scopes[str(memory.scope)] += 1
            try:
                validate_name(memory.name)
                Scope.parse(memory.scope.path or None)
            except InvalidInput as exc:
                refused.append({"name": memory.name, "scope": str(memory.scope), "reason": str(exc)})
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return {
        "path": display(root),
        "branch": repository.branch,
        "commit": repository.head,
        "memories": sum(scopes.values()),
        "scopes": dict(sorted(scopes.items())),
        "unreadable": service.unreadable(),
        "nonconforming": refused,
        "duplicate_ids": [
            {"id": d.id, "keeps": d.keeps.path, "others": [e.path for e in d.others]}
            for d in service.duplicate_ids()
        ],
    }
