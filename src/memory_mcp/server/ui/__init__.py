"""The web UI at `/ui`: people browse, search, inspect history and curate what agents wrote.

An edge like the MCP tools: it calls the `MemoryService` use cases with the caller's `Access` and holds no
rules of its own. Server-rendered HTML (Jinja2), no JavaScript, our own stylesheet only.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from memory_mcp.server.bearer_tokens import TokenVerifier
from memory_mcp.server.ui.actions import Actions
from memory_mcp.server.ui.app import HERE, Shield, Ui
from memory_mcp.server.ui.guard import Guard
from memory_mcp.server.ui.pages import Pages
from memory_mcp.server.ui.session import Sessions
from memory_mcp.supervisor import Supervisor

__all__ = ["ui_routes"]


def ui_routes(supervisor: Supervisor, verifier: TokenVerifier | None, hosts: Iterable[str]) -> list[BaseRoute]:
    """`/` (a redirect) and everything under `/ui`, for the HTTP app to mount."""
    settings = supervisor.settings
    guard = Guard(hosts, settings.trusted_proxies)
    ui = Ui(supervisor, verifier, guard, Sessions.from_state_dir(settings.state_dir))
    pages = Pages(ui)
    actions = Actions(ui, pages)
    inner = Starlette(
        routes=[
            Route("/", ui.handler(pages.memories)),
            Route("/login", actions.login, methods=["GET", "POST"]),
            Route("/logout", ui.handler(actions.logout), methods=["POST"]),
            Route("/search", ui.handler(pages.search)),
            Route("/status", ui.handler(pages.status)),
            Route("/memories", ui.handler(pages.memories)),
            Route("/memories/{rest:path}", ui.handler(pages.memory)),
            Route("/memories/{rest:path}", ui.handler(actions.act), methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static")),
        ]
    )
    shielded = Shield(inner, ui)

    async def home(request: Request) -> Response:
        return RedirectResponse(guard.origin(request).url(), status_code=307)

    return [Route("/", home), Route("/ui", home), Mount("/ui", app=shielded)]
