"""An ASGI middleware in front of every HTTP route: exact Host/Origin matching against DNS rebinding, then
the request body read whole within a deadline and a shared memory budget before any work starts, then the
request cancelled if its client disconnects before the answer.

The SDK's own Host/Origin check matches `host:*` by prefix (`localhost:evil` passed); this one parses the
header and compares the name exactly, with an optional numeric port. Probes (`/healthz`, `/readyz`,
`/metrics`, `/version`) also accept an IP-literal Host, which is what a kubelet sends (the pod IP) and what a
DNS-rebinding page cannot (its Host is a name).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import anyio

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

PROBE_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics", "/version"})
BODY_TIMEOUT: Final = 30.0
"""Seconds a client gets to send its whole request body (8 MiB needs ~280 KB/s): a client sending a byte
now and then is dropped rather than holding a connection and a buffer."""
BODY_BUDGET: Final = 32 * 1024 * 1024
"""Request bytes buffered at once across all requests (four of the largest); beyond it new requests get
503. Parsing multiplies each several-fold, so this bounds the server's memory, not just the buffers."""
_HOST = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::(?P<port>[0-9]{1,5}))?")


@dataclass
class _Budget:
    limit: int
    used: int = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size


class HttpGuard:
    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Iterable[str],
        *,
        max_body: int,
        budget: int = BODY_BUDGET,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        self.app = app
        self._hosts = frozenset(host.lower() for host in allowed_hosts)
        self._max_body = max_body
        self._budget = _Budget(budget)
        self._body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        probe = scope["path"] in PROBE_PATHS
        if not self.host_allowed(headers.get("host"), probe=probe):
            await _answer(send, 421, "Invalid Host header")
            return
        if "origin" in headers and not self.origin_allowed(headers["origin"]):
            await _answer(send, 403, "Invalid Origin header")
            return
        await self._buffered(scope, receive, send, headers.get("content-length"))

    # --------------------------------------------------------------- names

    def host_allowed(self, host: str | None, *, probe: bool = False) -> bool:
        """`name` or `name:port`, the name exactly one of the allowed (or, for probes, an IP literal)."""
        match = _HOST.fullmatch(host or "")
        if match is None:
            return False
        name = match["name"].lower()
        return name in self._hosts or probe and _is_ip(name)

    def origin_allowed(self, origin: str) -> bool:
        """`http(s)://name[:port]` and nothing else (no user part, path, query or fragment)."""
        try:
            parts = urlsplit(origin)
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not port_ok or parts.username is not None:
            return False
        if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
            return False
        return self.host_allowed(parts.netloc)

    # ---------------------------------------------------------------- body

    async def _buffered(self, scope: Scope, receive: Receive, send: Send, length: str | None) -> None:
        """Read the whole body first (bounded in size, time and shared memory), then run the app on it;
        a client that disconnects meanwhile, or before its answer, cancels the work."""
        declared = int(length) if length and length.isdigit() else 0
        if declared > self._max_body:
            await _answer(send, 413, "Request body too large")
            return
        if not self._budget.take(declared):
            await _busy(send)
            return
        held = declared
        try:
            chunks: list[bytes] = []
            size = 0
            with anyio.move_on_after(self._body_timeout) as deadline:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # the client left: nothing to answer, nothing to log
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self._max_body:
                        await _answer(send, 413, "Request body too large")
                        return
                    if size > held:
                        if not self._budget.take(size - held):
                            await _busy(send)
                            return
                        held = size
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
            if deadline.cancelled_caught:
                await _answer(send, 408, "Request body not received in time")
                return
            await self._run(scope, receive, send, b"".join(chunks))
        finally:
            self._budget.give(held)

    async def _run(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        gone = anyio.Event()
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        answered = False

        async def sending(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True  # from here on, a disconnect is the normal end of the exchange

        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone.set()
                if not answered:
                    log.info("client disconnected before its answer; its request is cancelled")
                    group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                await self.app(scope, replay, sending)
            finally:
                group.cancel_scope.cancel()


async def _busy(send: Send) -> None:
    await _answer(send, 503, "Too many request bodies in flight; retry shortly", [(b"retry-after", b"1")])


async def _answer(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # a refused request's unread body must not keep the connection
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True
