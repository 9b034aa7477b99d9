"""Bounds on what one client can ask of the web UI: requests per second, login attempts, and form size."""

from __future__ import annotations

import threading
import time
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request

from memory_mcp.core import MAX_CONTENT_BYTES, InvalidInput

MAX_FORM_BYTES: Final = 3 * MAX_CONTENT_BYTES + 64 * 1024
"""A 1 MiB memory of non-ASCII text is three times longer once percent-encoded, plus the other fields."""
MAX_FIELDS: Final = 16
MAX_CLIENTS: Final = 10_000


class TooLarge(Exception):
    """The form is bigger than any memory could make it."""


class RateLimiter:
    """A token bucket per client address: `burst` requests at once, then `rate` per second."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def available(self, client: str) -> bool:
        """Whether `allow` would let this client through now, without spending anything."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            return min(self.burst, tokens + (now - last) * self.rate) >= 1

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) >= MAX_CLIENTS:  # forget clients whose buckets have refilled
                full = now - self.burst / self.rate
                self._buckets = {c: b for c, b in self._buckets.items() if b[1] > full}
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                return False
            self._buckets[client] = (tokens - 1, now)
            return True


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form, read with a size bound before anything is parsed."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidInput("forms must be sent as application/x-www-form-urlencoded")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise TooLarge
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("the form could not be read; reload the page and try again") from exc
    return dict(pairs)
