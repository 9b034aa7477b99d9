"""The `--tokens-file` TOML (see `bearer_tokens`), read and checked without the MCP SDK, so a server can
refuse a bad file or an open bind before it starts any work, then start while the SDK is still importing."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from memory_mcp.config import Settings
from memory_mcp.core import Scope
from memory_mcp.errors import InvalidInput, MemoryMcpError

MIN_TOKEN_CHARS: Final = 16
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def served_tokens(settings: Settings) -> list[TokenRule] | None:
    """The tokens an HTTP server checks (None: no tokens file); refuses to expose an open server beyond
    loopback."""
    if settings.tokens_file is None:
        if not settings.is_loopback() and not settings.insecure_no_auth:
            raise InvalidInput(
                f"refusing to serve on {settings.bind} without authentication: give --tokens-file "
                "(MEMORY_MCP_TOKENS_FILE), or --insecure-no-auth when a gateway in front authenticates"
            )
        return None
    return load_tokens(settings.tokens_file)


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
