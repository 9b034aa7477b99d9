"""The domain core's public surface: the service, the vocabulary it speaks, its results and its errors.

Edges (MCP tools, HTTP app, CLI, importers, the bench) import from here and nothing deeper; only the
composition root (`memory_mcp.bootstrap`) and the supervisor reach the adapters inside. Errors are those of
`memory_mcp.errors`, re-exported so that one import serves an edge:

    MemoryMcpError
    ├── InvalidInput, NotFound, AlreadyExists, Conflict, Forbidden   the caller's to fix
    ├── Busy, Unavailable                                             retry later
    └── Cancelled                                                     the caller left; nothing was written
"""

from memory_mcp.core.briefing import DEFAULT_BUDGET, HANDOFF_NAME, HANDOFF_TAG, PINNED, BriefItem, Briefing
from memory_mcp.core.cancellation import cancellable
from memory_mcp.core.catalog import Entry
from memory_mcp.core.changes import ChangePage, MemoryChange, Touched, opening
from memory_mcp.core.duplicates import Duplicate, Repaired
from memory_mcp.core.embedder import default_threads
from memory_mcp.core.indexer import Progress
from memory_mcp.core.model import (
    ALL,
    FULL_ACCESS,
    GLOBAL,
    MAX_CONTENT_BYTES,
    MAX_LIMIT,
    MAX_NAME_PARTS,
    MAX_PART_CHARS,
    MAX_QUERY_CHARS,
    MAX_SOURCE_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    Access,
    Memory,
    Scope,
    format_time,
    validate_content,
    validate_name,
    validate_source,
    validate_tags,
)
from memory_mcp.core.search import Hit
from memory_mcp.core.service import (
    Imported,
    Locator,
    MemoryService,
    Page,
    Reindexed,
    Repository,
    Saved,
    Similar,
    Stats,
)
from memory_mcp.core.store import Revision
from memory_mcp.core.merge import SyncConflict
from memory_mcp.core.sync import SyncReport
from memory_mcp.errors import (
    AlreadyExists,
    Busy,
    Cancelled,
    Conflict,
    Forbidden,
    InvalidInput,
    MemoryMcpError,
    NotFound,
    Unavailable,
)

__all__ = [
    "ALL",
    "DEFAULT_BUDGET",
    "FULL_ACCESS",
    "GLOBAL",
    "HANDOFF_NAME",
    "HANDOFF_TAG",
    "MAX_CONTENT_BYTES",
    "MAX_LIMIT",
    "MAX_NAME_PARTS",
    "MAX_PART_CHARS",
    "MAX_QUERY_CHARS",
    "MAX_SOURCE_CHARS",
    "MAX_TAG_CHARS",
    "MAX_TAGS",
    "PINNED",
    "Access",
    "AlreadyExists",
    "BriefItem",
    "Briefing",
    "Busy",
    "Cancelled",
    "ChangePage",
    "Conflict",
    "Duplicate",
    "Entry",
    "Forbidden",
    "Hit",
    "Imported",
    "InvalidInput",
    "Locator",
    "Memory",
    "MemoryChange",
    "MemoryMcpError",
    "MemoryService",
    "NotFound",
    "Page",
    "Progress",
    "Reindexed",
    "Repaired",
    "Repository",
    "Revision",
    "Saved",
    "Scope",
    "Similar",
    "Stats",
    "Touched",
    "SyncConflict",
    "SyncReport",
    "Unavailable",
    "cancellable",
    "default_threads",
    "format_time",
    "opening",
    "validate_content",
    "validate_name",
    "validate_source",
    "validate_tags",
]
