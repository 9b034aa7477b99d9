"""`list` and `recent` cursors: an opaque, URL-safe token for the key a page ended at ((scope, name), or
(-updated_at, scope, name))."""

from __future__ import annotations

import base64
import binascii
import json

from memory_mcp.errors import InvalidInput


def encode(key: tuple[str, str] | tuple[float, str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[str, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        scope, name = json.loads(raw)
        if isinstance(scope, str) and isinstance(name, str):
            return (scope, name)
    except (ValueError, TypeError, RecursionError, binascii.Error):
        pass
    raise InvalidInput("cursor is not one returned by list; omit it to start from the first page")


def decode_recent(cursor: str | None) -> tuple[float, str, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, scope, name = json.loads(raw)
        if isinstance(moment, float | int) and isinstance(scope, str) and isinstance(name, str):
            return (float(moment), scope, name)
    except (ValueError, TypeError, RecursionError, binascii.Error):
        pass
    raise InvalidInput("cursor is not one returned by this listing; omit it to start from the first page")
