"""Web sessions: a signed cookie naming the token's digest (never the token), and the CSRF token derived from it.

The cookie holds `base64(json) . hmac`, signed with a random key kept (0600) in the state directory, so a
restart keeps people logged in. A logged-out session id is remembered until it would have expired, so a copy
of the cookie stops working too. Without configured tokens, an anonymous session still carries the CSRF token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from memory_mcp.files import write_atomic

COOKIE: Final = "memory_mcp_session"
LIFETIME: Final = 12 * 3600
"""Seconds a login lasts; then the token is asked for again."""
KEY_FILE: Final = "ui-session.key"
MAX_REVOKED: Final = 100_000


@dataclass(frozen=True)
class Session:
    id: str
    digest: str
    """Hex SHA-256 of the token it was opened with; empty for an anonymous session (no tokens configured)."""
    expires: int


class Sessions:
    def __init__(self, key: bytes) -> None:
        self._key = key
        self._revoked: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> Sessions:
        """The signing key from `state_dir`, created there on first use."""
        path = state_dir / KEY_FILE
        try:
            key = bytes.fromhex(path.read_text().strip())
            if len(key) >= 32:
                return cls(key)
        except (FileNotFoundError, ValueError):
            pass
        key = secrets.token_bytes(32)
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, key.hex().encode())
        return cls(key)

    def open(self, digest: str = "") -> tuple[Session, str]:
        """A new session and its cookie value."""
        session = Session(secrets.token_hex(16), digest, int(time.time()) + LIFETIME)
        body = _b64(json.dumps({"i": session.id, "d": session.digest, "e": session.expires}).encode())
        return session, f"{body}.{self._sign(body)}"

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, if its signature holds and it has neither expired nor been closed."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(str(data["i"]), str(data["d"]), int(data["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if session.expires <= time.time() or session.id in self._revoked:
            return None
        return session

    def close(self, session: Session) -> None:
        with self._lock:
            now = time.time()
            if len(self._revoked) >= MAX_REVOKED:
                self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
            self._revoked[session.id] = session.expires

    def csrf(self, session: Session) -> str:
        """The token every writing form of this session must send back."""
        return self._sign(f"csrf:{session.id}")

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
