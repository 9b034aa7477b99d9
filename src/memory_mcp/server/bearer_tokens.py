"""HTTP bearer tokens: the `--tokens-file` TOML (read by `token_file`), constant-time verification, and what
each token may do.

    [[token]]
    name = "laptop"                 # recorded as the commit author of its writes
    sha256 = "9f86d08…"             # hex digest of the token (preferred), or: token = "…"
    read_only = true                # optional
    scopes = ["proj-a", "global"]   # optional: scope subtrees it may see ("global" = the global memories)

Plugged into the MCP SDK as its `TokenVerifier`, so the SDK's bearer middleware guards `/mcp` and answers
401 (`WWW-Authenticate: Bearer`, no OAuth metadata: there is no authorization server); the tools read the verified token back to build an `Access`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from memory_mcp.core import FULL_ACCESS, Access, Scope
from memory_mcp.server.token_file import TokenRule

READ: Final = "memory:read"
WRITE: Final = "memory:write"


class TokenVerifier:
    """The SDK's `TokenVerifier`: looks a presented token up by digest, comparing every entry in constant time."""

    def __init__(self, rules: list[TokenRule]) -> None:
        self._rules = rules

    async def verify_token(self, token: str) -> AccessToken | None:
        return self.verify_digest(hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest())

    def verify_digest(self, presented: bytes) -> AccessToken | None:
        """The token whose SHA-256 is `presented` (a web session keeps the digest, never the token)."""
        match = None
        for rule in self._rules:  # no early exit: the time taken does not depend on which entry matches
            if hmac.compare_digest(presented, rule.digest):
                match = rule
        if match is None:
            return None
        scopes = [READ] if match.read_only else [READ, WRITE]
        limited = None if match.scopes is None else [str(scope) for scope in match.scopes]
        # The SDK keeps this object for the request; it carries the digest, never the token itself.
        return AccessToken(
            token=presented.hex(), client_id=match.name, scopes=scopes, claims={"memory_scopes": limited}
        )


def caller() -> tuple[Access, str | None]:
    """The current request's access and actor name: everything and no name when unauthenticated (stdio)."""
    return access_of(get_access_token())


def access_of(token: AccessToken | None) -> tuple[Access, str | None]:
    """What a verified token may do, and the actor name its writes are committed under."""
    if token is None:
        return FULL_ACCESS, None
    limited = (token.claims or {}).get("memory_scopes")
    scopes = None if limited is None else tuple(Scope.parse(scope) for scope in limited)
    access = Access(read_only=WRITE not in token.scopes, scopes=scopes, who=f"token {token.client_id!r}")
    return access, token.client_id
