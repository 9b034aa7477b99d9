"""The pages that only read: scopes and the memory list, search, one memory, its history, and status.

A memory's address is `/ui/memories/{scope}/{name}` (scope `global` for global memories). Scopes and names
both contain `/`, but the store never lets two memories share a file, and the file is `scope/name`: so at
most one split of the path names an existing memory, and that is the one shown.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from memory_mcp import views
from memory_mcp.core import GLOBAL, MAX_NAME_PARTS, Access, Entry, InvalidInput, Locator, MemoryService, NotFound
from memory_mcp.server.ui import render
from memory_mcp.server.ui.app import Ui, Viewer

PAGE_SIZE: Final = 50
SEARCH_LIMIT: Final = 20
HISTORY_LIMIT: Final = 100
SORTS: Final = ("name", "updated")


def resolve(service: MemoryService, parts: list[str], access: Access) -> Entry:
    """The memory a URL path names (see the module docstring)."""
    if len(parts) >= 2 and parts[0] == GLOBAL:
        return service.read(Locator("/".join(parts[1:]), GLOBAL), access=access)
    for size in range(1, MAX_NAME_PARTS + 1):
        if size >= len(parts):
            break
        where = Locator("/".join(parts[-size:]), "/".join(parts[:-size]))
        try:
            return service.read(where, access=access)
        except (NotFound, InvalidInput):
            continue
    raise NotFound("no memory has this address; it may have been moved, renamed or forgotten")


def locator(entry: Entry) -> Locator:
    return Locator(entry.memory.name, str(entry.memory.scope))


def tags_param(value: str | None) -> list[str] | None:
    tags = [tag.strip() for tag in (value or "").split(",") if tag.strip()]
    return tags or None


class Pages:
    def __init__(self, ui: Ui) -> None:
        self.ui = ui

    async def memories(self, request: Request, viewer: Viewer) -> Response:
        query = request.query_params
        scope = query.get("scope") or None
        tags = query.get("tags", "")
        sort = query.get("sort", "name")
        if sort not in SORTS:
            raise InvalidInput("sort must be 'name' or 'updated'")
        listing = MemoryService.recent if sort == "updated" else MemoryService.list
        page = await self.ui.call(
            listing,
            scope=scope,
            tags=tags_param(tags),
            limit=PAGE_SIZE,
            cursor=query.get("cursor") or None,
            access=viewer.access,
        )
        counts = await self.ui.call(MemoryService.scope_counts, access=viewer.access)
        global_count, tree = render.scope_tree(counts)
        return self.ui.page(
            viewer,
            "memories.html",
            page=page,
            scope=scope or "",
            tags=tags,
            sort=sort,
            first=not query.get("cursor"),
            global_count=global_count,
            tree=tree,
            total=sum(counts.values()),
        )

    async def search(self, request: Request, viewer: Viewer) -> Response:
        query = request.query_params
        text = query.get("q", "").strip()
        scope = query.get("scope") or "all"
        tags = query.get("tags", "")
        hits = []
        if text:
            hits = await self.ui.call(
                MemoryService.recall,
                query=text,
                scope=scope,
                tags=tags_param(tags),
                limit=SEARCH_LIMIT,
                access=viewer.access,
            )
        words = render.query_words(text)
        marked = [render.mark(hit.snippet, words) for hit in hits]
        return self.ui.page(
            viewer, "search.html", q=text, scope=scope, tags=tags, results=list(zip(hits, marked, strict=True))
        )

    async def memory(self, request: Request, viewer: Viewer) -> Response:
        parts = request.path_params["rest"].strip("/").split("/")
        try:
            entry = await self.ui.call(resolve, parts=parts, access=viewer.access)
        except NotFound:
            if len(parts) < 3 or parts[-1] != "history":
                raise
            entry = await self.ui.call(resolve, parts=parts[:-1], access=viewer.access)
            return await self.history(request, viewer, entry)
        return self.show(viewer, entry, done=request.query_params.get("done", ""))

    def show(self, viewer: Viewer, entry: Entry, status: int = 200, **values: object) -> Response:
        """The memory page; `values` carry a failed form back (its error, and the text the person typed)."""
        memory = entry.memory
        defaults: dict[str, object] = {
            "done": "",
            "error": None,
            "draft": memory.content,
            "draft_tags": ", ".join(memory.tags),
            "draft_version": entry.version,
            "conflict_diff": None,
        }
        return self.ui.page(
            viewer,
            "memory.html",
            status,
            entry=entry,
            memory=memory,
            html=render.markdown(memory.content),
            **{**defaults, **values},
        )

    async def history(self, request: Request, viewer: Viewer, entry: Entry) -> Response:
        """Every version, a diff between two (by default the newest and the one before), and one version in
        full when asked: all from one history request."""
        query = request.query_params
        chosen = [query.get(name, "").strip().lower() for name in ("from", "to", "version")]
        revisions, contents = await self.ui.call(
            MemoryService.versions,
            where=locator(entry),
            wanted=[commit for commit in chosen if commit],
            newest=0 if chosen[0] and chosen[1] else 2,
            limit=HISTORY_LIMIT,
            access=viewer.access,
        )
        old = chosen[0] or (revisions[1].commit if len(revisions) > 1 else "")
        new = chosen[1] or (revisions[0].commit if revisions else "")
        rows, problem = None, None
        if old and new:
            if old in contents and new in contents:
                rows = render.diff(
                    render.versioned_text(contents[old].tags, contents[old].content),
                    render.versioned_text(contents[new].tags, contents[new].content),
                )
            else:
                problem = "one of the versions to compare is not in this memory's last versions (or deleted it)"
        shown = None
        if chosen[2]:
            revision = next((r for r in revisions if r.named_by(chosen[2])), None)
            if revision is not None and chosen[2] in contents:
                shown = (revision, contents[chosen[2]])
            else:
                problem = f"version {chosen[2][:12]!r} is not among this memory's last versions (or deleted it)"
        return self.ui.page(
            viewer,
            "history.html",
            entry=entry,
            memory=entry.memory,
            revisions=revisions,
            old=old,
            new=new,
            rows=rows,
            problem=problem,
            shown=shown,
            done=query.get("done", ""),
        )

    async def status(self, request: Request, viewer: Viewer) -> Response:
        supervisor = self.ui.supervisor
        stats, unreadable = None, 0
        if supervisor.service is not None:
            stats = await self.ui.call(MemoryService.stats)
            unreadable = len(await self.ui.call(MemoryService.unreadable))
        return self.ui.page(
            viewer,
            "status.html",
            readiness=views.readiness(supervisor),
            stats=stats,
            unreadable=unreadable,
            last_sync=supervisor.last_sync,
            remote=supervisor.settings.remote_url is not None,
        )
