"""Telling connected clients that memories changed: `notifications/resources/list_changed` when memories
appear, disappear or move, and `notifications/resources/updated` for the URIs a client subscribed to.

One background loop watches the branch tip, so every change is seen the same way, whether this process
wrote it, another process on the same repository (the CLI beside a stdio server), or a sync. Each client
hears only about memories its token may read. Two protocol eras are served:

- handshake-era sessions (stdio, and streamable HTTP sessions with their GET stream; protocol 2025-11-25
  and earlier) get notifications on the session's own channel, with `resources/subscribe` choosing URIs;
- 2026-07-28 clients open `subscriptions/listen` streams, fed through `ScopedBus`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import anyio.lowlevel
import anyio.to_thread
from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated, ServerEvent
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from memory_mcp.core import FULL_ACCESS, Access, Memory, Touched
from memory_mcp.server.bearer_tokens import caller
from memory_mcp.supervisor import Supervisor

log = logging.getLogger(__name__)

POLL_INTERVAL: Final = 1.0
"""Seconds between looks at the branch tip; a change reaches clients within about this long."""
MAX_SESSIONS: Final = 1024
"""Handshake-era sessions remembered; the SDK does not say when one ends, so the oldest are forgotten."""
STDIO: Final = "stdio"


@dataclass
class _Session:
    session: ServerSession
    access: Access
    uris: set[str] = field(default_factory=set)


class ScopedBus:
    """The server's `SubscriptionBus` for `subscriptions/listen`: each stream is delivered only the events
    about memories its caller may read (its token is read when the stream opens)."""

    def __init__(self) -> None:
        self._listeners: dict[object, tuple[Callable[[ServerEvent], None], Access]] = {}

    async def publish(self, event: ServerEvent) -> None:
        await self.publish_to(event, lambda _: True)

    async def publish_to(self, event: ServerEvent, allowed: Callable[[Access], bool]) -> None:
        for listener, access in list(self._listeners.values()):
            if allowed(access):
                try:
                    listener(event)
                except Exception:  # one broken stream must not starve the others
                    log.exception("subscription listener failed")
        await anyio.lowlevel.checkpoint()

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        token = object()
        self._listeners[token] = (listener, caller()[0])
        return lambda: self._listeners.pop(token, None) and None


class Notifier:
    """Remembers who listens, watches the branch tip, and sends each listener what it may know."""

    def __init__(self, supervisor: Supervisor, uris: Callable[[Memory], tuple[str, ...]]) -> None:
        self._supervisor = supervisor
        self._uris = uris
        self.bus = ScopedBus()
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    # ------------------------------------------------------------- who listens

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        """Server middleware: remember every handshake-era session that has a channel to push on."""
        key = _key(ctx)
        if key is not None and key not in self._sessions:
            self._sessions[key] = _Session(ctx.session, caller()[0])
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return await call_next(ctx)

    def watch_uri(self, ctx: ServerRequestContext[Any, Any], uri: str) -> None:
        key = _key(ctx)
        if key is not None:
            self._sessions.setdefault(key, _Session(ctx.session, caller()[0])).uris.add(uri)

    def unwatch_uri(self, ctx: ServerRequestContext[Any, Any], uri: str) -> None:
        listener = self._sessions.get(_key(ctx) or "")
        if listener is not None:
            listener.uris.discard(uri)

    # ------------------------------------------------------------- watching

    @asynccontextmanager
    async def running(self, _: object = None) -> AsyncIterator[None]:
        """The server's lifespan: the watch loop runs while the server does."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def _watch(self) -> None:
        """From the commit the service opened at, not this loop's first look, which may come a poll later:
        a commit in between (the CLI beside a stdio server, on a busy machine) went unannounced."""
        while (service := self._supervisor.service) is None:
            await anyio.sleep(POLL_INTERVAL)
        seen = self._supervisor.opened_at
        while True:
            try:
                head = (await anyio.to_thread.run_sync(service.repository)).head
                if head != seen:
                    await self.announce(await anyio.to_thread.run_sync(service.touched, seen, head))
                seen = head
            except Exception:  # noqa: BLE001 - the loop must outlive a bad moment (a repo being repaired)
                log.exception("could not look for memory changes")
            await anyio.sleep(POLL_INTERVAL)

    async def announce(self, touched: list[Touched]) -> None:
        """Send each listener the notifications for the changes it may see."""
        if not touched:
            return

        def visible(access: Access) -> list[Touched]:
            return [t for t in touched if any(m and access.can_read(m.scope) for m in (t.before, t.after))]

        def uris(items: list[Touched]) -> set[str]:
            return {uri for t in items for m in (t.before, t.after) if m is not None for uri in self._uris(m)}

        def reshaped(access: Access) -> bool:
            return any(t.reshapes for t in visible(access))

        await self.bus.publish_to(ResourcesListChanged(), reshaped)
        for uri in uris(visible(FULL_ACCESS)):
            await self.bus.publish_to(
                ResourceUpdated(uri), lambda access, uri=uri: uri in uris(visible(access))
            )
        for key, listener in list(self._sessions.items()):
            seen = visible(listener.access)
            try:
                if any(t.reshapes for t in seen):
                    await listener.session.send_resource_list_changed()
                for uri in sorted(listener.uris & uris(seen)):
                    await listener.session.send_resource_updated(uri)
            except Exception:  # noqa: BLE001 - a session that went away: forget it
                log.debug("dropping a session that could not be notified", exc_info=True)
                self._sessions.pop(key, None)


def _key(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """Which handshake-era session a request belongs to, if it has a channel of its own to push on: the
    single stdio connection, or a streamable HTTP session (stateless HTTP requests have none)."""
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return None
    if ctx.request is None:
        return STDIO
    return getattr(ctx.request, "headers", {}).get("mcp-session-id")
