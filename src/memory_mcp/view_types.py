"""The shapes of the plain-data views (`views`): what each MCP tool's structured result holds, so that
`tools/list` publishes a precise `outputSchema` for it, and what the CLI's `--json` prints."""

from __future__ import annotations

from typing import Literal

from typing_extensions import NotRequired, TypedDict  # pydantic reads stdlib TypedDicts only from 3.12

MatchType = Literal["semantic", "lexical", "both"]


class Brief(TypedDict):
    id: str
    name: str
    scope: str
    version: str
    """The memory file's git blob id: pass it as `expected_version`."""


class SimilarMemory(Brief):
    similarity: float
    """Cosine similarity to the memory just saved."""


class SavedMemory(Brief):
    status: Literal["created", "replaced", "updated", "deleted", "moved"]
    commit: str
    similar: NotRequired[list[SimilarMemory]]
    hint: NotRequired[str]
    indexing: NotRequired[str]


class MemoryView(TypedDict):
    id: str
    name: str
    scope: str
    tags: list[str]
    source: str
    created_at: str
    updated_at: str
    version: str
    content_length: int
    content: str


class ListedMemory(TypedDict, total=False):
    """The fields `list` was asked for (default name, scope, tags, updated_at)."""

    id: str
    name: str
    scope: str
    tags: list[str]
    source: str
    created_at: str
    updated_at: str
    version: str
    content_length: int
    content: str


class MemoryPage(TypedDict):
    memories: list[ListedMemory]
    count: int
    next_cursor: str | None
    """Pass it as `cursor` for the next page; null on the last one."""


class HitView(TypedDict):
    id: str
    name: str
    scope: str
    tags: list[str]
    updated_at: str
    version: str
    content_length: int
    score: float
    """Cosine similarity of the best-matching chunk."""
    match_type: MatchType
    snippet: str
    truncated: bool
    """Whether the snippet is shorter than the content (`read` has it all)."""


class Hits(TypedDict):
    hits: list[HitView]
    count: int


class RevisionView(TypedDict):
    commit: str
    time: str
    author: str
    message: str
    path: str
    version: str | None
    deleted: bool


class History(TypedDict):
    """Without `version`: `versions` and `count`. With it: that revision's fields and the content then."""

    versions: NotRequired[list[RevisionView]]
    count: NotRequired[int]
    forgotten: NotRequired[bool]
    hint: NotRequired[str]
    commit: NotRequired[str]
    time: NotRequired[str]
    author: NotRequired[str]
    message: NotRequired[str]
    path: NotRequired[str]
    version: NotRequired[str | None]
    deleted: NotRequired[bool]
    name: NotRequired[str]
    scope: NotRequired[str]
    tags: NotRequired[list[str]]
    content: NotRequired[str]


class ChangeView(TypedDict):
    kind: Literal["created", "edited", "moved", "forgotten"]
    id: str
    name: str
    scope: str
    time: str
    author: str
    commit: str
    version: str | None
    """The file's version after the change (null when forgotten)."""
    snippet: str
    from_name: NotRequired[str]
    from_scope: NotRequired[str]


class Changes(TypedDict):
    changes: list[ChangeView]
    count: int
    next_cursor: str | None
    cursor: str


class ConflictView(TypedDict):
    path: str
    id: str | None
    scope: str | None
    name: str | None
    resolution: str
    """`kept-local`, `kept-remote`, `kept-change-over-delete` or `combined` (a move and an edit joined)."""
    kept: str
    """`local`, `remote` or `both`."""
    kept_version: str | None
    """None: this memory lost a path to another one and is kept in history only."""
    other_version: str | None
    other_path: str | None


class SyncResult(TypedDict):
    pulled: int
    pushed: int
    conflicts: list[ConflictView]
    errors: list[str]
    local_head: str | None
    remote_head: str | None
    ahead: int
    behind: int
    refused: list[str]
    """Pulled files kept out of the work tree (unsafe paths, oversized files); they stay in git."""
    ok: bool


for _shape in (
    Brief,
    SimilarMemory,
    SavedMemory,
    MemoryView,
    ListedMemory,
    MemoryPage,
    HitView,
    Hits,
    RevisionView,
    History,
    ChangeView,
    Changes,
    ConflictView,
    SyncResult,
):
    # Closed objects (additionalProperties: false): a field added to a view without its shape fails the
    # SDK's check of our own output instead of reaching clients undeclared.
    _shape.__pydantic_config__ = {"extra": "forbid"}  # type: ignore[attr-defined]
