"""HTTP bearer tokens: the `--tokens-file` TOML, constant-time verification, and what each token may do.

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
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from memory_mcp.core import FULL_ACCESS, Access, Scope
from memory_mcp.errors import InvalidInput, MemoryMcpError

READ: Final = "memory:read"
WRITE: Final = "memory:write"
MIN_TOKEN_CHARS: Final = 16
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@dataclass(frozen=True)
class TokenRule:
    name: str
    digest: bytes
    read_only: bool
    scopes: tuple[Scope, ...] | None


def load_tokens(path: Path) -> list[TokenRule]:
    """Parse and check the tokens file; any mistake is an error naming the entry, never the secret."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InvalidInput(f"tokens file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"tokens file {path} is not valid TOML: {type(exc).__name__}") from exc
    entries = data.get("token")
    if not isinstance(entries, list) or not entries:
        raise InvalidInput(f"tokens file {path} has no [[token]] entries")
    rules = [_rule(entry, number) for number, entry in enumerate(entries, 1)]
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise InvalidInput(f"tokens file {path} names a token twice")
    if len({rule.digest for rule in rules}) != len(rules):
        raise InvalidInput(f"tokens file {path} lists the same token twice")
    return rules


def _rule(entry: object, number: int) -> TokenRule:
    if not isinstance(entry, dict):
        raise InvalidInput(f"token entry {number} is not a table")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(f"token entry {number} needs a name of letters, digits, '-', '_', '.', '@'")
    unknown = set(entry) - {"name", "sha256", "token", "read_only", "scopes"}
    if unknown:
        raise InvalidInput(f"token {name!r} has unknown keys: {', '.join(sorted(unknown))}")
    digest = _digest(name, entry.get("sha256"), entry.get("token"))
    read_only = entry.get("read_only", False)
    if not isinstance(read_only, bool):
        raise InvalidInput(f"token {name!r}: read_only must be true or false")
    return TokenRule(name, digest, read_only, _scopes(name, entry.get("scopes")))


def _digest(name: str, sha256: object, token: object) -> bytes:
    if (sha256 is None) == (token is None):
        raise InvalidInput(f"token {name!r} needs exactly one of sha256 (preferred) or token")
    if sha256 is not None:
        if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256.lower()):
            raise InvalidInput(f"token {name!r}: sha256 must be 64 hex digits")
        return bytes.fromhex(sha256)
    if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS:
        raise InvalidInput(f"token {name!r}: a token must have at least {MIN_TOKEN_CHARS} characters")
    return hashlib.sha256(token.encode()).digest()


def _scopes(name: str, scopes: object) -> tuple[Scope, ...] | None:
    if scopes is None:
        return None
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise InvalidInput(f"token {name!r}: scopes must be a non-empty list of scope names")
    try:
        return tuple(Scope.parse(scope) for scope in scopes)
    except MemoryMcpError as exc:
        raise InvalidInput(f"token {name!r}: {exc}") from exc


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
