"""The MCP tools: one thin function each. They translate arguments, run the service in a worker thread
(it blocks on the model, git and disk) and map domain errors to tool errors the agent can act on.

Most of this file is the tools' signatures and descriptions, which is what agents read: they stay in one
file so that the whole surface reads (and is reviewed) as one."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import Field

from memory_mcp import views
from memory_mcp.core import (
    MAX_CONTENT_BYTES,
    MAX_LIMIT,
    MAX_QUERY_CHARS,
    MAX_SOURCE_CHARS,
    MAX_TAGS,
    Locator,
    MemoryService,
    SyncReport,
)
from memory_mcp.errors import Cancelled, Forbidden, MemoryMcpError
from memory_mcp.server import agent_wording as wording
from memory_mcp.server.bearer_tokens import caller
from memory_mcp.server.calls import in_service
from memory_mcp.server.strict_tools import strict_tool
from memory_mcp.server.tool_params import (
    MAX_CURSOR_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_SCOPE_CHARS,
    NAME_HELP,
    ExpectedVersion,
    FilterTags,
    MemoryId,
    Name,
    Scope,
    TagList,
    Tags,
)
from memory_mcp.supervisor import Supervisor
from memory_mcp.view_types import Changes, History, Hits, MemoryPage, MemoryView, SavedMemory, SyncResult

T = TypeVar("T")
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
SYNC = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)
WRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
CHANGE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)


def _who() -> dict[str, Any]:
    """The service keywords naming the caller of a write: what it may touch, and the commit author."""
    access, actor = caller()
    return {"access": access, "actor": actor}


class Tools:
    """Binds the tools to a supervisor; `tools` builds them for an MCP server."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    async def _run(self, tool: str, call: Callable[[MemoryService], T]) -> T:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await in_service(self._supervisor, call)
        except Cancelled:
            outcome = "cancelled"
            raise
        except MemoryMcpError as exc:
            outcome = type(exc).__name__
            raise ToolError(wording.error_text(exc)) from exc
        except BaseException as exc:
            outcome = "cancelled" if isinstance(exc, anyio.get_cancelled_exc_class()) else "crash"
            raise
        finally:
            self._supervisor.metrics.observe_tool(tool, outcome, time.perf_counter() - started)

    def tools(self) -> list[Tool]:
        """Every tool, with strictly checked arguments, for `MCPServer(tools=...)`."""
        return [
            strict_tool(
                fn,
                name="list" if fn == self.list_memories else fn.__name__,
                title=title,
                description=inspect.cleandoc(fn.__doc__ or ""),
                annotations=hints,
                structured_output=True,
            )
            for fn, title, hints in (
                (self.remember, "Remember", WRITE),
                (self.recall, "Recall", READ_ONLY),
                (self.read, "Read a memory", READ_ONLY),
                (self.edit, "Edit a memory", CHANGE),
                (self.forget, "Forget a memory", CHANGE),
                (self.list_memories, "List memories", READ_ONLY),
                (self.move, "Move or rename a memory", WRITE),
                (self.history, "Memory history", READ_ONLY),
                (self.changes, "What changed", READ_ONLY),
                (self.sync, "Sync with the git remote", SYNC),
            )
        ]

    async def remember(
        self,
        name: Annotated[str, Field(description=NAME_HELP, max_length=MAX_NAME_CHARS)],
        content: Annotated[
            str,
            Field(
                description=f"Markdown text to store (at most {MAX_CONTENT_BYTES} bytes)",
                max_length=MAX_CONTENT_BYTES,
            ),
        ],
        scope: Scope = None,
        tags: Tags = None,
        source: Annotated[
            str | None,
            Field(description="Where this came from (URL, file, conversation)", max_length=MAX_SOURCE_CHARS),
        ] = None,
        replace: Annotated[
            bool, Field(description="Overwrite an existing memory of this name (keeps its id)")
        ] = False,
    ) -> SavedMemory:
        """Store a new memory: a named markdown note in a scope, searchable by meaning and by keywords.

        Fails if the name is taken in that scope (use `edit`, or pass replace=true). The result lists
        near-duplicate memories so you can merge instead of piling up copies.
        Example: remember(name="rust/async-tips", content="Prefer tokio::spawn_blocking for CPU work",
        scope="org/backend", tags=["rust"]).
        """
        call = partial(
            MemoryService.remember,
            name=name,
            content=content,
            scope=scope,
            tags=tags,
            source=source,
            replace_existing=replace,
            **_who(),
        )
        result = await self._run("remember", call)
        return wording.saved(result, "replaced" if result.replaced else "created")

    async def recall(
        self,
        query: Annotated[
            str,
            Field(
                description=f"What you are looking for, in words (at most {MAX_QUERY_CHARS} chars)",
                max_length=MAX_QUERY_CHARS,
            ),
        ],
        scope: Annotated[
            str | None,
            Field(
                description=(
                    "Omitted: global memories only; a path: that scope, its sub-scopes and global; 'all'"
                ),
                max_length=MAX_SCOPE_CHARS,
            ),
        ] = None,
        limit: Annotated[int, Field(description=f"How many hits, 1-{MAX_LIMIT}", ge=1, le=MAX_LIMIT)] = 5,
        tags: FilterTags = None,
        min_score: Annotated[
            float | None,
            Field(
                description="Drop hits whose cosine similarity is below this (0.3-0.5 is typical)", ge=-1, le=1
            ),
        ] = None,
    ) -> Hits:
        """Search memories by meaning and keywords (hybrid), best first.

        Each hit has a snippet around the part that matched, `score` (cosine similarity) and `match_type`
        (semantic, lexical or both). Use `read` for the full text of a hit whose `truncated` is true.
        """
        call = partial(
            MemoryService.recall,
            query=query,
            scope=scope,
            tags=tags,
            limit=limit,
            min_score=min_score,
            access=caller()[0],
        )
        hits = await self._run("recall", call)
        return {"hits": [views.hit(h) for h in hits], "count": len(hits)}

    async def read(self, name: Name = None, scope: Scope = None, id: MemoryId = None) -> MemoryView:
        """Read one memory in full (content, tags, source, times, version) by name + scope or by id."""
        entry = await self._run(
            "read", partial(MemoryService.read, where=Locator(name, scope, id), access=caller()[0])
        )
        return views.full(entry)

    async def edit(
        self,
        name: Name = None,
        scope: Scope = None,
        id: MemoryId = None,
        content: Annotated[
            str | None, Field(description="New content (replaces the old text)", max_length=MAX_CONTENT_BYTES)
        ] = None,
        tags: Annotated[
            TagList, Field(description="New tag list (replaces the old tags)", max_length=MAX_TAGS)
        ] = None,
        expected_version: ExpectedVersion = None,
    ) -> SavedMemory:
        """Change a memory's content and/or tags, keeping its id, name and creation time.

        Pass expected_version (from read) to avoid overwriting someone else's change; old versions stay in
        `history`.
        """
        call = partial(
            MemoryService.edit,
            where=Locator(name, scope, id),
            content=content,
            tags=tags,
            expected_version=expected_version,
            **_who(),
        )
        return wording.saved(await self._run("edit", call), "updated")

    async def forget(
        self,
        name: Name = None,
        scope: Scope = None,
        id: MemoryId = None,
        expected_version: ExpectedVersion = None,
    ) -> SavedMemory:
        """Delete a memory. Its past versions remain in the repository's history."""
        call = partial(
            MemoryService.forget,
            where=Locator(name, scope, id),
            expected_version=expected_version,
            **_who(),
        )
        return wording.saved(await self._run("forget", call), "deleted")

    async def list_memories(
        self,
        scope: Annotated[
            str | None,
            Field(
                description="Omitted or 'all': every memory; 'global'; or a path (that subtree only)",
                max_length=MAX_SCOPE_CHARS,
            ),
        ] = None,
        tags: FilterTags = None,
        limit: Annotated[int, Field(description=f"Page size, 1-{MAX_LIMIT}", ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[
            str | None, Field(description="next_cursor from the previous page", max_length=MAX_CURSOR_CHARS)
        ] = None,
        fields: Annotated[
            list[Annotated[str, Field(max_length=MAX_ID_CHARS)]] | None,
            Field(
                description=f"Fields per memory, from {', '.join(views.LIST_FIELDS)}; default name, scope, "
                "tags, updated_at",
                max_length=len(views.LIST_FIELDS),
            ),
        ] = None,
    ) -> MemoryPage:
        """List memories sorted by scope then name, a page at a time (follow next_cursor until it is null)."""
        access = caller()[0]

        def call(service: MemoryService) -> MemoryPage:
            chosen = views.check_fields(fields)
            return views.page(
                service.list(scope=scope, tags=tags, limit=limit, cursor=cursor, access=access), chosen
            )

        return await self._run("list", call)

    async def move(
        self,
        name: Name = None,
        from_scope: Annotated[
            str | None, Field(description="Current scope (default global)", max_length=MAX_SCOPE_CHARS)
        ] = None,
        to_scope: Annotated[
            str | None,
            Field(description="New scope; omit to keep the current one", max_length=MAX_SCOPE_CHARS),
        ] = None,
        new_name: Annotated[
            str | None, Field(description="New name; omit to keep the current one", max_length=MAX_NAME_CHARS)
        ] = None,
        id: MemoryId = None,
        expected_version: ExpectedVersion = None,
    ) -> SavedMemory:
        """Rename a memory and/or move it to another scope; its id and creation time are kept."""
        call = partial(
            MemoryService.move,
            where=Locator(name, from_scope, id),
            to_scope=to_scope,
            new_name=new_name,
            expected_version=expected_version,
            **_who(),
        )
        return wording.saved(await self._run("move", call), "moved")

    async def history(
        self,
        name: Name = None,
        scope: Scope = None,
        id: MemoryId = None,
        limit: Annotated[
            int, Field(description=f"How many versions, newest first, 1-{MAX_LIMIT}", ge=1, le=MAX_LIMIT)
        ] = 20,
        version: Annotated[
            str | None,
            Field(
                description="A `version` or `commit` from this history (or a prefix of at least 7 hex "
                "digits): return the memory's content as it was then",
                max_length=MAX_ID_CHARS,
            ),
        ] = None,
    ) -> History:
        """The commits that changed a memory (sha, time, author, message), newest first, following moves.
        Works for forgotten memories too (by id, or by name + scope).

        With `version` (an entry's `version` or `commit`), returns the memory's full content as it was then.
        """
        where = Locator(name, scope, id)
        if version is not None:
            call = partial(MemoryService.content_at, where=where, version=version, access=caller()[0])
            rev, old = await self._run("history", call)
            return {
                **views.revision(rev),
                "name": old.name,
                "scope": str(old.scope),
                "tags": list(old.tags),
                "content": old.content,
            }
        call = partial(MemoryService.history, where=where, limit=limit, access=caller()[0])
        revisions = await self._run("history", call)
        return wording.history(revisions)

    async def changes(
        self,
        since: Annotated[
            str | None,
            Field(
                description="A time (e.g. '2026-01-31T09:00:00Z') or a commit id; omitted: all history",
                max_length=MAX_CURSOR_CHARS,
            ),
        ] = None,
        cursor: Annotated[
            str | None,
            Field(
                description="next_cursor for the next page, or cursor from your previous changes call",
                max_length=MAX_CURSOR_CHARS,
            ),
        ] = None,
        scope: Annotated[
            str | None,
            Field(
                description="Omitted or 'all': every scope you may see; or a path (that subtree)",
                max_length=MAX_SCOPE_CHARS,
            ),
        ] = None,
        limit: Annotated[int, Field(description=f"Page size, 1-{MAX_LIMIT}", ge=1, le=MAX_LIMIT)] = 50,
    ) -> Changes:
        """What other agents (and you) changed: memories created, edited, moved or forgotten, newest first.

        Each change has kind, author, time and a snippet (a forgotten memory shows its last content). Follow
        next_cursor until it is null; keep `cursor` and pass it next session to see only newer changes.
        """
        call = partial(
            MemoryService.changes, since=since, cursor=cursor, scope=scope, limit=limit, access=caller()[0]
        )
        return views.changes(await self._run("changes", call))

    async def sync(
        self,
        pull: Annotated[bool, Field(description="Fetch and merge the remote's changes first")] = True,
        push: Annotated[bool, Field(description="Push local commits to the remote")] = True,
    ) -> SyncResult:
        """Sync the memory repository with its git remote now (it also syncs by itself after writes and
        periodically). Returns what was pulled and pushed, conflicts and how they were resolved (memories
        match by id: a move and an edit combine, otherwise the newer version wins; the other stays in
        history), pulled files kept out of the work tree, and errors (e.g. the remote is unreachable)."""
        access = caller()[0]

        def call(_: MemoryService) -> SyncReport:
            if access.read_only or access.scopes is not None:
                # A merge writes any scope and its report names memories of every scope.
                raise Forbidden(f"{access.who} may not sync: it takes a token that may write every scope")
            return self._supervisor.sync(pull=pull, push=push)

        report = await self._run("sync", call)
        return views.sync_report(report)
