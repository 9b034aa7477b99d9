"""Memories as MCP resources: listing (paginated, only what the caller's token may see), reading, the two
URI templates, completion of their arguments (and of the prompts' scope), and (legacy) subscriptions.

URIs: `memory://{scope}/{name}`, scope and name percent-encoded as RFC 6570 expands them (`/` is `%2F`;
global memories use `global`), and `memory://~id/{id}`: `~` may not appear in a scope, so the two never
collide. A resource's text is the memory's markdown; its frontmatter fields are the resource's `_meta`.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final
from urllib.parse import quote, unquote

from mcp.server import NotificationOptions
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    Annotations,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    EmptyResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    SubscribeRequestParams,
    TextResourceContents,
    UnsubscribeRequestParams,
)

from memory_mcp import views
from memory_mcp.core import MAX_LIMIT, Entry, Locator, Memory, MemoryService, format_time, opening
from memory_mcp.server.bearer_tokens import caller
from memory_mcp.server.calls import answer
from memory_mcp.server.notifications import Notifier
from memory_mcp.supervisor import Supervisor

SCHEME: Final = "memory://"
ID_HOST: Final = "~id"
BY_NAME: Final = "memory://{scope}/{name}"
BY_ID: Final = "memory://~id/{id}"
MIME: Final = "text/markdown"
MAX_COMPLETIONS: Final = 100
PROMPTS: Final = ("session-start", "save-handoff")
"""Prompts whose `scope` argument completes like the template's."""
FRONTMATTER: Final = ("id", "name", "scope", "tags", "source", "created_at", "updated_at", "version")


def name_uri(memory: Memory) -> str:
    return f"{SCHEME}{quote(str(memory.scope), safe='')}/{quote(memory.name, safe='')}"


def id_uri(memory: Memory) -> str:
    return f"{SCHEME}{ID_HOST}/{quote(memory.id, safe='')}"


def locate(uri: str) -> Locator:
    """The memory a URI names; a bad URI is an invalid-params error saying what a good one looks like."""
    host, _, rest = uri.removeprefix(SCHEME).partition("/") if uri.startswith(SCHEME) else ("", "", "")
    if not host or not rest:
        raise MCPError(
            code=INVALID_PARAMS,
            message=f"not a memory URI: {uri[:200]!r}; use memory://<scope>/<name> (scope and name "
            "percent-encoded, global scope = 'global') or memory://~id/<id>",
        )
    if host == ID_HOST:
        return Locator(id=unquote(rest))
    return Locator(name=unquote(rest), scope=unquote(host))


class Resources:
    """Binds the resource handlers to a supervisor and a notifier; `register` installs them on a server."""

    def __init__(self, supervisor: Supervisor, notifier: Notifier) -> None:
        self._supervisor = supervisor
        self._notifier = notifier

    def register(self, server: MCPServer) -> None:
        # MCPServer lists only resources registered up front and reads through fixed templates; memories are
        # listed per caller and carry per-memory metadata, so these methods get handlers of their own.
        lowlevel = server._lowlevel_server  # noqa: SLF001 - the SDK offers no public way to replace them
        for method, params, handler in (
            ("resources/list", PaginatedRequestParams, self.list),
            ("resources/templates/list", PaginatedRequestParams, self.templates),
            ("resources/read", ReadResourceRequestParams, self.read),
            ("completion/complete", CompleteRequestParams, self.complete),
            ("resources/subscribe", SubscribeRequestParams, self.subscribe),
            ("resources/unsubscribe", UnsubscribeRequestParams, self.unsubscribe),
        ):
            lowlevel.add_request_handler(method, params, handler)
        # Handshake-era clients learn from the initialize result that list changes are announced.
        lowlevel.create_initialization_options = partial(
            lowlevel.create_initialization_options, NotificationOptions(resources_changed=True)
        )

    async def list(
        self, ctx: ServerRequestContext, params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        access = caller()[0]
        cursor = params.cursor if params else None
        page = await answer(self._supervisor, lambda s: s.list(limit=MAX_LIMIT, cursor=cursor, access=access))
        return ListResourcesResult(
            resources=[_resource(e) for e in page.entries], next_cursor=page.next_cursor
        )

    async def templates(
        self, ctx: ServerRequestContext, params: PaginatedRequestParams | None
    ) -> ListResourceTemplatesResult:
        return ListResourceTemplatesResult(
            resource_templates=[
                ResourceTemplate(
                    uri_template=BY_NAME,
                    name="memory",
                    title="A memory by scope and name",
                    description="scope: 'global' or a path like 'org/project'; name like 'rust/async-tips'",
                    mime_type=MIME,
                ),
                ResourceTemplate(
                    uri_template=BY_ID,
                    name="memory-by-id",
                    title="A memory by id",
                    description="The memory's id (kept across edits, renames and moves)",
                    mime_type=MIME,
                ),
            ]
        )

    async def read(self, ctx: ServerRequestContext, params: ReadResourceRequestParams) -> ReadResourceResult:
        where, access = locate(params.uri), caller()[0]
        entry = await answer(self._supervisor, lambda s: s.read(where, access=access))
        contents = TextResourceContents(
            uri=params.uri, text=entry.memory.content, mime_type=MIME, _meta=_frontmatter(entry)
        )
        return ReadResourceResult(contents=[contents])

    async def complete(self, ctx: ServerRequestContext, params: CompleteRequestParams) -> CompleteResult:
        argument = params.argument.name
        template = getattr(params.ref, "uri", None) == BY_NAME and argument in ("scope", "name")
        prompt = getattr(params.ref, "name", None) in PROMPTS and argument == "scope"
        if not (template or prompt):
            return CompleteResult(completion=Completion(values=[]))
        given = (params.context.arguments or {}) if params.context else {}
        prefix, scope, access = params.argument.value, given.get("scope"), caller()[0]

        def call(service: MemoryService) -> list[str]:
            return service.suggest(argument, prefix, scope=scope, access=access)

        values = await answer(self._supervisor, call)
        return CompleteResult(
            completion=Completion(
                values=values[:MAX_COMPLETIONS], total=len(values), has_more=len(values) > MAX_COMPLETIONS
            )
        )

    async def subscribe(self, ctx: ServerRequestContext, params: SubscribeRequestParams) -> EmptyResult:
        locate(params.uri)
        self._notifier.watch_uri(ctx, params.uri)
        return EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext, params: UnsubscribeRequestParams) -> EmptyResult:
        self._notifier.unwatch_uri(ctx, params.uri)
        return EmptyResult()


def _resource(entry: Entry) -> Resource:
    m = entry.memory
    return Resource(
        uri=name_uri(m),
        name=f"{m.scope}/{m.name}",
        title=m.name,
        description=opening(m.content, 160),
        mime_type=MIME,
        size=len(m.content.encode()),
        annotations=Annotations(last_modified=format_time(m.updated_at)),
        _meta=_frontmatter(entry),
    )


def _frontmatter(entry: Entry) -> dict[str, Any]:
    """The memory's frontmatter fields, its version, and its id-based URI."""
    return {**views.memory(entry, FRONTMATTER), "id_uri": id_uri(entry.memory)}
