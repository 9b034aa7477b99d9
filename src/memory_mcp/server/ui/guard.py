"""What the web UI believes about a request: its Host and Origin (checked against the allow-list, exactly),
and, only from a trusted reverse proxy, the scheme, client address and path prefix it was forwarded with."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'none'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
"""Sent with every UI response: no script at all, and nothing from any other origin."""
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")


@dataclass(frozen=True)
class Origin:
    """The request as the browser made it."""

    secure: bool
    client: str
    prefix: str
    """Path prefix the proxy stripped (e.g. `/memory`), '' when none; every link starts with it."""

    def url(self, path: str = "") -> str:
        """The browser's address of a UI path such as `/search` ('' = the UI's home, `/ui/`)."""
        return f"{self.prefix}/ui{path or '/'}"


class Guard:
    def __init__(self, hosts: Iterable[str], trusted_proxies: Iterable[str]) -> None:
        self._hosts = {host.strip("[]").lower() for host in hosts}
        self._proxies = [ipaddress.ip_network(net) for net in trusted_proxies]

    def host_allowed(self, request: Request) -> bool:
        return self._name_allowed(request.headers.get("host"))

    def origin_allowed(self, request: Request) -> bool:
        """A write must come from one of our own pages: Origin (or, lacking it, Referer) names an allowed host."""
        source = request.headers.get("origin") or request.headers.get("referer")
        if not source or source == "null":
            return False
        try:
            parts = urlsplit(source)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.username or parts.password:
            return False
        return self._name_allowed(parts.netloc)

    def _name_allowed(self, netloc: str | None) -> bool:
        """`name` or `name:port`, compared exactly (no prefix matching: `localhost:evil` is refused)."""
        if not netloc:
            return False
        try:
            parts = urlsplit(f"//{netloc}")
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            return False
        if parts.username or parts.password or parts.path or not parts.hostname:
            return False
        return parts.hostname.lower() in self._hosts

    def origin(self, request: Request) -> Origin:
        peer = request.client.host if request.client else ""
        secure = request.url.scheme == "https"
        if not self._trusted(peer):
            return Origin(secure, peer, "")
        proto = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        forwarded_for = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",") if a.strip()]
        prefix = request.headers.get("x-forwarded-prefix", "").strip().rstrip("/")
        return Origin(
            secure=proto == "https" if proto else secure,
            client=forwarded_for[-1] if forwarded_for else peer,
            prefix=prefix if _PREFIX.fullmatch(prefix) else "",
        )

    def _trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._proxies)
