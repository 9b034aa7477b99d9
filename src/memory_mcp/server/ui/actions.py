"""The forms that change something: log in and out, and edit, move, forget or restore a memory.

Every change carries the version the person saw (`expected_version`), so a change an agent made meanwhile
is a conflict shown beside the person's own text, never a silent overwrite. Success redirects (303) to a
page that says what happened, so reloading it repeats nothing.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from memory_mcp.core import Conflict, Forbidden, InvalidInput, MemoryMcpError, MemoryService
from memory_mcp.server.ui import render
from memory_mcp.server.ui.app import Ui, Viewer
from memory_mcp.server.ui.limits import TooLarge, read_form
from memory_mcp.server.ui.pages import Pages, locator, resolve, tags_param

ACTIONS: Final = ("edit", "move", "forget", "restore")
_NEXT = re.compile(r"/[A-Za-z0-9._~/-]*")


def memory_path(entry_scope: str, name: str) -> str:
    return f"/memories/{entry_scope}/{name}"


class Actions:
    def __init__(self, ui: Ui, pages: Pages) -> None:
        self.ui = ui
        self.pages = pages

    # ------------------------------------------------------------------ sessions

    async def login(self, request: Request) -> Response:
        origin = self.ui.guard.origin(request)
        target = request.query_params.get("next", "")
        target = target if _NEXT.fullmatch(target) and not target.startswith("//") else ""
        if self.ui.verifier is None:
            return self.ui.redirect(origin, target or "")
        values = {"prefix": origin.prefix, "target": target, "message": None}
        if request.method == "GET":
            return self._login_page(values)
        if not self.ui.guard.origin_allowed(request):
            return self._login_page({**values, "message": "Sign in from this server's own login page."}, 403)
        if not self.ui.failed_logins.available(origin.client):
            return self._login_page({**values, "message": "Too many failed attempts; wait a minute."}, 429)
        try:
            fields = await read_form(request)
        except (InvalidInput, TooLarge):
            return self._login_page({**values, "message": "The form could not be read."}, 400)
        token = await self.ui.verifier.verify_token(fields.get("token", "").strip())
        if token is None:
            self.ui.failed_logins.allow(origin.client)
            return self._login_page({**values, "message": "That token is not valid here."}, 401)
        # The session keeps the token's digest (what the verifier matches), never the token.
        digest = hashlib.sha256(fields["token"].strip().encode("utf-8", "surrogatepass")).hexdigest()
        _, cookie = self.ui.sessions.open(digest)
        response = self.ui.redirect(origin, target)
        self.ui.set_cookie(response, origin, cookie)
        return response

    def _login_page(self, values: dict[str, object], status: int = 200) -> Response:
        html = self.ui.templates.get_template("login.html").render(**values)
        return HTMLResponse(html, status_code=status)

    async def logout(self, request: Request, viewer: Viewer) -> Response:
        await self.ui.form(request, viewer)
        self.ui.sessions.close(viewer.session)
        response = self.ui.redirect(viewer, "/login" if viewer.logged_in else "")
        self.ui.set_cookie(response, viewer.origin, "", max_age=0)
        return response

    # ------------------------------------------------------------------ memories

    async def act(self, request: Request, viewer: Viewer) -> Response:
        parts = request.path_params["rest"].strip("/").split("/")
        action = parts[-1]
        if action not in ACTIONS or len(parts) < 3:
            raise InvalidInput(f"POST to …/{'|'.join(ACTIONS)} only")
        fields = await self.ui.form(request, viewer)
        if not viewer.can_write:
            raise Forbidden(f"{viewer.access.who} is read-only; ask for a token that may write")
        entry = await self.ui.call(resolve, parts=parts[:-1], access=viewer.access)
        expected = fields.get("expected_version") or None
        if expected is None:
            raise InvalidInput("the form lacks the version it was made from; reload the page")
        who = {"where": locator(entry), "expected_version": expected, "actor": viewer.actor, "access": viewer.access}
        try:
            if action == "edit":
                content = fields.get("content")
                saved = await self.ui.call(  # a field left out (by a script) keeps what is stored
                    MemoryService.edit,
                    content=None if content is None else content.replace("\r\n", "\n"),
                    tags=None if "tags" not in fields else tags_param(fields["tags"]) or [],
                    **who,
                )
                done = f"{memory_path(str(saved.entry.memory.scope), saved.entry.memory.name)}?done=edited"
            elif action == "move":
                saved = await self.ui.call(
                    MemoryService.move,
                    to_scope=fields.get("scope", "").strip() or None,
                    new_name=fields.get("name", "").strip() or None,
                    **who,
                )
                done = f"{memory_path(str(saved.entry.memory.scope), saved.entry.memory.name)}?done=moved"
            elif action == "forget":
                if fields.get("confirm") != "yes":
                    raise InvalidInput("tick the box to confirm that this memory should be forgotten")
                await self.ui.call(MemoryService.forget, **who)
                done = "/memories?done=forgotten"
            else:
                saved = await self.ui.call(MemoryService.restore, version=fields.get("version", ""), **who)
                done = f"{memory_path(str(saved.entry.memory.scope), saved.entry.memory.name)}/history?done=restored"
        except Conflict as exc:
            return await self._conflict(viewer, parts[:-1], action, fields, exc)
        except MemoryMcpError as exc:
            if action != "edit":
                raise
            return self.pages.show(viewer, entry, 400, error=str(exc), draft=fields.get("content", ""),
                                   draft_tags=fields.get("tags", ""), draft_version=expected)
        return self.ui.redirect(viewer, done)

    async def _conflict(
        self, viewer: Viewer, parts: list[str], action: str, fields: dict[str, str], exc: Conflict
    ) -> Response:
        """The memory as it is now, the person's unsaved text beside it, and what differs."""
        current = await self.ui.call(resolve, parts=parts, access=viewer.access)
        values: dict[str, object] = {"error": f"Not saved: {exc}"}
        if action == "edit":
            draft = fields.get("content", "").replace("\r\n", "\n")
            values.update(
                draft=draft,
                draft_tags=fields.get("tags", ""),
                draft_version=current.version,
                conflict_diff=render.diff(current.memory.content, draft),
            )
        return self.pages.show(viewer, current, 409, **values)
