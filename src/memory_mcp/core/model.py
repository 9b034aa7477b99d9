"""The memory vocabulary and its rules: names, scopes, tags, limits, and the `Memory` record.

Validation lives here once, so every edge (MCP tools, CLI) gets the same rules and the same messages.
Standard library only.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final

from memory_mcp.errors import Forbidden, InvalidInput

MAX_NAME_PARTS: Final = 3
MAX_SCOPE_PARTS: Final = 10
MAX_PART_CHARS: Final = 64
"""Longest name or scope part; keeps file paths well under every filesystem's limit."""
MAX_TAGS: Final = 32
MAX_TAG_CHARS: Final = 64
MAX_CONTENT_BYTES: Final = 1024 * 1024
"""1 MiB, the reference server's limit."""
MAX_SOURCE_CHARS: Final = 512
MAX_QUERY_CHARS: Final = 4096
MAX_LIMIT: Final = 100

GLOBAL: Final = "global"
ALL: Final = "all"
PROJECT_ALIAS: Final = "project:"

_PART = re.compile(r"[A-Za-z0-9_.-]+")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""C0/C1 controls and Unicode line separators: YAML would fold or reject them, so they could not round-trip."""


def _check_parts(kind: str, value: str, max_parts: int) -> tuple[str, ...]:
    """Split a `/`-separated value and check every part; the rules make paths injective and traversal-proof."""
    if not value:
        raise InvalidInput(f"{kind} must not be empty")
    parts = tuple(value.split("/"))
    if len(parts) > max_parts:
        raise InvalidInput(
            f"{kind} {value!r} has {len(parts)} parts; at most {max_parts} '/'-separated parts"
        )
    for part in parts:
        if not part:
            raise InvalidInput(f"{kind} {value!r} has an empty part (leading, trailing or doubled '/')")
        if len(part) > MAX_PART_CHARS:
            raise InvalidInput(f"{kind} part {part[:20]!r}... is longer than {MAX_PART_CHARS} characters")
        if not _PART.fullmatch(part):
            raise InvalidInput(
                f"{kind} part {part!r} may only contain letters, digits, '-', '_' and '.' (e.g. 'rust-tips')"
            )
        if part.startswith("."):
            raise InvalidInput(f"{kind} part {part!r} must not start with '.'")
        if part.lower().endswith(".md"):
            # `a/b.md/c` would need a directory named like the file of memory `a/b`.
            raise InvalidInput(f"{kind} part {part!r} must not end with '.md'")
    return parts


def validate_name(name: str) -> str:
    """Return `name` if it is a valid memory name (1-3 parts such as `rust/async-tips`)."""
    if not isinstance(name, str):
        raise InvalidInput("name must be a string")
    _check_parts("name", name, MAX_NAME_PARTS)
    return name


@dataclass(frozen=True, order=True, slots=True)
class Scope:
    """Where a memory lives: global (`path` empty) or a hierarchical path such as `org/team/project`."""

    path: str = ""

    @property
    def is_global(self) -> bool:
        return not self.path

    def __str__(self) -> str:
        return self.path or GLOBAL

    @staticmethod
    def parse(value: str | None) -> Scope:
        """Parse a scope for writing: `global`, a path, or the `project:<name>` alias; `all` is refused."""
        if value is None or value == GLOBAL or value == "":
            return Scope()
        if not isinstance(value, str):
            raise InvalidInput("scope must be a string")
        if value == ALL:
            raise InvalidInput(
                "scope 'all' is reserved for queries; name a scope such as 'global' or 'org/proj'"
            )
        if value.startswith(PROJECT_ALIAS):
            value = value[len(PROJECT_ALIAS) :]
        parts = _check_parts("scope", value, MAX_SCOPE_PARTS)
        if parts[0] in (GLOBAL, ALL):
            raise InvalidInput(f"scope {value!r} must not start with reserved word {parts[0]!r}")
        return Scope(value)

    def contains(self, other: Scope) -> bool:
        """True when `other` is this scope or below it."""
        return other.path == self.path or other.path.startswith(self.path + "/")


@dataclass(frozen=True)
class ScopeFilter:
    """Which scopes a query covers: everything, or one subtree (optionally plus the global memories)."""

    root: Scope | None = None
    include_global: bool = True

    @staticmethod
    def parse(value: str | None, *, default_all: bool) -> ScopeFilter:
        """`all` → everything; `global` → global only; a path → that subtree plus global (the reference's rule).

        An omitted scope means `all` when `default_all` is set, else global only.
        """
        if value is None or value == "":
            return ScopeFilter() if default_all else ScopeFilter(Scope())
        if value == ALL:
            return ScopeFilter()
        return ScopeFilter(Scope.parse(value))

    def matches(self, scope: Scope) -> bool:
        if self.root is None:
            return True
        if self.include_global and scope.is_global:
            return True
        return self.root.contains(scope)

    def __str__(self) -> str:
        return ALL if self.root is None else str(self.root)


@dataclass(frozen=True)
class Access:
    """What a caller may touch: everything (the default), or read-only, or only some scope subtrees."""

    read_only: bool = False
    scopes: tuple[Scope, ...] | None = None
    """Scope subtrees this caller may see; `Scope()` (global) must be listed to reach global memories."""
    who: str = "this caller"

    def can_read(self, scope: Scope) -> bool:
        return self.scopes is None or any(root.contains(scope) for root in self.scopes)

    def check_write(self, scope: Scope) -> None:
        if self.read_only:
            raise Forbidden(f"{self.who} is read-only; ask for a token that may write")
        if not self.can_read(scope):
            allowed = ", ".join(str(s) for s in self.scopes or ())
            raise Forbidden(f"{self.who} may not write to scope {str(scope)!r}; it is limited to: {allowed}")


FULL_ACCESS: Final = Access()


def validate_tags(tags: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Return tags trimmed and de-duplicated (order kept), or raise on a bad tag."""
    if tags is None:
        return ()
    if isinstance(tags, str) or not isinstance(tags, list | tuple):
        raise InvalidInput("tags must be a list of strings, e.g. ['rust', 'async']")
    if len(tags) > MAX_TAGS:  # before any per-tag work
        raise InvalidInput(f"{len(tags)} tags given; at most {MAX_TAGS}")
    if not all(isinstance(t, str) for t in tags):
        raise InvalidInput("tags must be a list of strings, e.g. ['rust', 'async']")
    cleaned: dict[str, None] = {}  # ordered and de-duplicated in linear time
    for tag in tags:
        tag = tag.strip()
        if not tag:
            raise InvalidInput("tags must not be empty strings")
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidInput(f"tag {tag[:20]!r}... is longer than {MAX_TAG_CHARS} characters")
        if "," in tag or _CONTROL.search(tag):
            raise InvalidInput(f"tag {tag!r} must not contain commas or control characters")
        cleaned[tag] = None
    return tuple(cleaned)


def validate_content(content: str) -> str:
    """Return content if it is non-blank text within the size limit."""
    if not isinstance(content, str):
        raise InvalidInput("content must be a string")
    if not content.strip():
        raise InvalidInput("content must not be empty")
    size = len(content.encode("utf-8", "surrogatepass"))
    if size > MAX_CONTENT_BYTES:
        raise InvalidInput(
            f"content is {size} bytes; at most {MAX_CONTENT_BYTES} (split it into several memories)"
        )
    if "\x00" in content:
        raise InvalidInput("content must not contain NUL characters")
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("content must be valid Unicode text (lone surrogates found)") from exc
    return content


def validate_source(source: str | None) -> str:
    if source is None:
        return ""
    if not isinstance(source, str) or len(source) > MAX_SOURCE_CHARS or _CONTROL.search(source):
        raise InvalidInput(f"source must be a single line of at most {MAX_SOURCE_CHARS} characters")
    return source.strip()


def validate_query(query: str) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("query must be a non-empty string")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"query is {len(query)} characters; at most {MAX_QUERY_CHARS}")
    return query.strip()


def validate_limit(limit: int, *, maximum: int = MAX_LIMIT) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise InvalidInput(f"limit must be an integer from 1 to {maximum}")
    return limit


def now() -> datetime:
    """The current UTC time at millisecond precision, as the files store it."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z` suffix, as the reference server writes."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Memory:
    """One memory, exactly as stored in its markdown file. Slotted: the catalog holds one per memory
    (100k at the scale the bench measures), and a slotted instance is a third of the size."""

    name: str
    scope: Scope
    content: str
    tags: tuple[str, ...] = ()
    source: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    @property
    def key(self) -> tuple[Scope, str]:
        return (self.scope, self.name)

    def revised(self, **changes: object) -> Memory:
        """A copy with `changes` applied and `updated_at` moved to now (id and `created_at` kept)."""
        return replace(self, updated_at=now(), **changes)  # type: ignore[arg-type]

    def embedding_text(self) -> str:
        """What an agent searches by: name, tags and content."""
        tags = f"\n{', '.join(self.tags)}" if self.tags else ""
        return f"{self.name.replace('/', ' / ')}{tags}\n\n{self.content}"
