"""The web UI's frame: who is asking (session → token → `Access`, exactly as over MCP), the checks every
request passes (Host, rate, and for writes Origin + CSRF), security headers, and mapping domain errors to
pages. The pages themselves (`pages.py`, `actions.py`) only translate between forms and the service."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memory_mcp import __version__
from memory_mcp.core import (
    FULL_ACCESS,
    Access,
    AlreadyExists,
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    MemoryMcpError,
    NotFound,
    Unavailable,
    format_time,
)
from memory_mcp.server.bearer_tokens import TokenVerifier, access_of
from memory_mcp.server.ui.guard import SECURITY_HEADERS, Guard, Origin
from memory_mcp.server.ui.limits import RateLimiter, TooLarge, read_form
from memory_mcp.server.ui.session import COOKIE, LIFETIME, Session, Sessions
from memory_mcp.supervisor import Supervisor

T = TypeVar("T")
HERE: Final = Path(__file__).parent
STATUS: Final = {
    InvalidInput: 400,
    Forbidden: 403,
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    Busy: 429,
    Unavailable: 503,
}
REQUESTS_PER_SECOND: Final = 20.0
REQUEST_BURST: Final = 60.0
LOGINS_PER_SECOND: Final = 0.2
LOGIN_BURST: Final = 5.0
"""Failed logins: five at once, then one every five seconds, per client address."""


class LoginRequired(Exception):
    """No valid session: the page sends the browser to the login form."""


@dataclass
class Viewer:
    """The person behind a request, as the pages see them."""

    access: Access
    actor: str | None
    session: Session
    csrf: str
    origin: Origin
    logged_in: bool
    """True when tokens are configured (so there is a logout); False for the open loopback UI."""
    new_cookie: str | None = None

    @property
    def can_write(self) -> bool:
        return not self.access.read_only

    def url(self, path: str = "") -> str:
        return self.origin.url(path)


@dataclass
class Ui:
    supervisor: Supervisor
    verifier: TokenVerifier | None
    guard: Guard
    sessions: Sessions
    templates: Environment = field(init=False)
    requests: RateLimiter = field(default_factory=lambda: RateLimiter(REQUESTS_PER_SECOND, REQUEST_BURST))
    failed_logins: RateLimiter = field(default_factory=lambda: RateLimiter(LOGINS_PER_SECOND, LOGIN_BURST))

    def __post_init__(self) -> None:
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        style = (HERE / "static" / "style.css").read_bytes()
        self.templates.globals.update(
            version=__version__,
            asset=hashlib.sha256(style).hexdigest()[:12],
            time=lambda moment: format_time(moment).replace("T", " ")[:16] + " UTC",
        )

    # ------------------------------------------------------------------ who is asking

    def viewer(self, request: Request) -> Viewer:
        origin = self.guard.origin(request)
        session = self.sessions.read(request.cookies.get(COOKIE))
        if self.verifier is None:
            cookie = None
            if session is None:
                session, cookie = self.sessions.open()
            return Viewer(FULL_ACCESS, None, session, self.sessions.csrf(session), origin, False, cookie)
        token = None
        if session is not None and session.digest:
            token = self.verifier.verify_digest(bytes.fromhex(session.digest))
        if session is None or token is None:
            raise LoginRequired
        access, actor = access_of(token)
        return Viewer(access, actor, session, self.sessions.csrf(session), origin, True)

    async def form(self, request: Request, viewer: Viewer) -> dict[str, str]:
        """A writing form's fields, once its origin and CSRF token check out."""
        if not self.guard.origin_allowed(request):
            raise Forbidden("this form was not sent from one of this server's pages")
        fields = await read_form(request)
        if not self.sessions.check_csrf(viewer.session, fields.get("csrf")):
            raise Forbidden("the form's CSRF token is missing or out of date; reload the page and try again")
        return fields

    # ------------------------------------------------------------------ answering

    async def call(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """A service use case in a worker thread (they block on the model, git and disk)."""
        service = self.supervisor.service
        if service is None:
            raise Unavailable("memory-mcp is still starting (loading the model and index); retry in a moment")
        return await anyio.to_thread.run_sync(partial(fn, service, **kwargs))

    def page(self, viewer: Viewer, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(viewer=viewer, **values)
        response = HTMLResponse(html, status_code=status)
        if viewer.new_cookie:
            self.set_cookie(response, viewer.origin, viewer.new_cookie)
        return response

    def error(self, viewer: Viewer, exc: MemoryMcpError, **values: Any) -> HTMLResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
        kind = type(exc).__name__
        return self.page(viewer, "error.html", status, kind=kind, message=str(exc), **values)

    def redirect(self, viewer: Viewer | Origin, path: str) -> RedirectResponse:
        origin = viewer.origin if isinstance(viewer, Viewer) else viewer
        return RedirectResponse(origin.url(path), status_code=303)

    def set_cookie(self, response: Response, origin: Origin, value: str, max_age: int = LIFETIME) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=max_age,
            path=f"{origin.prefix}/ui",
            secure=origin.secure,
            httponly=True,
            samesite="strict",
        )

    def login_redirect(self, request: Request) -> RedirectResponse:
        origin = self.guard.origin(request)
        target = request.url.path.removeprefix("/ui").rstrip("/")
        query = f"?next={target}" if request.method == "GET" and target not in ("", "/") else ""
        return self.redirect(origin, f"/login{query}")

    def handler(
        self, view: Callable[[Request, Viewer], Awaitable[Response]], *, writes: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """A page: find the viewer, run the view, and turn domain errors into error pages."""

        async def endpoint(request: Request) -> Response:
            try:
                viewer = self.viewer(request)
            except LoginRequired:
                return self.login_redirect(request)
            try:
                return await view(request, viewer)
            except TooLarge:
                return PlainTextResponse("form too large", status_code=413)
            except MemoryMcpError as exc:
                return self.error(viewer, exc)

        return endpoint


class Shield:
    """ASGI middleware in front of every UI route: Host allow-list, per-client rate, security headers."""

    def __init__(self, app: ASGIApp, ui: Ui) -> None:
        self.app = app
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not self.ui.guard.host_allowed(request):
            response: Response = PlainTextResponse("Invalid Host header", status_code=421)
        elif not self.ui.requests.allow(self.ui.guard.origin(request).client):
            response = PlainTextResponse("too many requests; slow down", status_code=429)
            response.headers["Retry-After"] = "1"
        else:
            static = get_route_path(scope).startswith("/static/")
            await self.app(scope, receive, partial(_with_headers, send, static))
            return
        await response(scope, receive, partial(_with_headers, send, False))


async def _with_headers(send: Send, static: bool, message: Message) -> None:
    """Security headers on everything; pages are never cached, assets (named by content hash) for a year."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers", []))
        names = {name.lower() for name, _ in headers}
        for name, value in SECURITY_HEADERS.items():
            headers.append((name.lower().encode(), value.encode()))
        if b"cache-control" not in names:
            cache = b"public, max-age=31536000, immutable" if static else b"no-store"
            headers.append((b"cache-control", cache))
        message = {**message, "headers": headers}
    await send(message)

