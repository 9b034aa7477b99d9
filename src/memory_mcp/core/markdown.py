"""Memory <-> markdown with YAML frontmatter, in the reference server's layout.

A file is `---\\n` + frontmatter + `---\\n\\n` + content. Frontmatter keys, in order: `id`, `name`, `tags`,
`scope` (`{type: Root}` or `{type: Path, name: <path>}`; legacy `{type: Global}` and `{type: Project, name}`
are read), `created_at`, `updated_at`, `source` (omitted when empty). Parsing uses YAML's safe loader only
and turns any malformed file into `InvalidInput`, so one bad file never hides the others.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import yaml

from memory_mcp.core.model import MAX_CONTENT_BYTES, Memory, Scope, format_time
from memory_mcp.errors import InvalidInput

FENCE: Final = "---\n"
_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: Final = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's safe loader and dumper when PyYAML has them (about ten times faster), else the Python ones."""
MAX_FRONTMATTER_BYTES: Final = 64 * 1024
"""Frontmatter is a few hundred bytes; anything bigger is garbage or an attack (YAML bombs)."""
MAX_FILE_BYTES: Final = MAX_CONTENT_BYTES + MAX_FRONTMATTER_BYTES
"""The largest memory file: larger ones are reported, never parsed or written into the work tree."""


def render(memory: Memory) -> bytes:
    """Serialise a memory to the bytes of its file."""
    scope: dict[str, str] = (
        {"type": "Root"} if memory.scope.is_global else {"type": "Path", "name": memory.scope.path}
    )
    front: dict[str, Any] = {
        "id": memory.id,
        "name": memory.name,
        "tags": list(memory.tags),
        "scope": scope,
        "created_at": format_time(memory.created_at),
        "updated_at": format_time(memory.updated_at),
    }
    if memory.source:
        front["source"] = memory.source
    header = yaml.dump(
        front, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, default_flow_style=False, width=10_000
    )
    return f"{FENCE}{header}{FENCE}\n{memory.content}".encode()


def parse(data: bytes) -> Memory:
    """Parse a memory file; raise `InvalidInput` saying what is wrong with it."""
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput("file is larger than a memory may be")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"file is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    text = text.replace("\r\n", "\n") if text.startswith("---\r\n") else text
    if not text.startswith(FENCE):
        raise InvalidInput("file does not start with a '---' frontmatter fence")
    end = text.find("\n" + FENCE, len(FENCE) - 1)
    if end < 0:
        if text.endswith("\n---"):
            end = len(text) - 4
        else:
            raise InvalidInput("frontmatter has no closing '---' fence")
    header = text[len(FENCE) : end + 1]
    if len(header) > MAX_FRONTMATTER_BYTES:
        raise InvalidInput("frontmatter is too large")
    body = text[end + 1 + len(FENCE) :]
    return _from_front(_load_yaml(header), body.removeprefix("\n"))


def _load_yaml(header: str) -> dict[str, Any]:
    try:
        front = yaml.load(header, Loader=_LOADER)  # noqa: S506 - a safe loader, C or pure Python
    except yaml.YAMLError as exc:
        raise InvalidInput(f"frontmatter is not valid YAML: {str(exc).splitlines()[0]}") from exc
    except RecursionError as exc:
        raise InvalidInput("frontmatter nests too deeply") from exc
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        # PyYAML's constructors raise these for values such as `2025-02-30` or `!!int abc`.
        raise InvalidInput(f"frontmatter holds an impossible value: {exc}") from exc
    if not isinstance(front, dict):
        raise InvalidInput("frontmatter is not a mapping")
    return front


def _from_front(front: dict[str, Any], content: str) -> Memory:
    name = _safe_path("name", _string(front, "name"))
    memory_id = _string(front, "id")
    tags = front.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidInput("frontmatter 'tags' is not a list of strings")
    source = front.get("source") or ""
    if not isinstance(source, str):
        raise InvalidInput("frontmatter 'source' is not a string")
    created = _time(front, "created_at")
    return Memory(
        name=name,
        scope=_scope(front.get("scope")),
        content=content,
        tags=tuple(tags),
        source=source,
        id=memory_id,
        created_at=created,
        updated_at=_time(front, "updated_at") if "updated_at" in front else created,
    )


def _string(front: dict[str, Any], key: str) -> str:
    value = front.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"frontmatter '{key}' is missing or not a string")
    return value


def _scope(value: object) -> Scope:
    """Read current and legacy scope tags; a bare string is accepted too."""
    if value is None:
        return Scope()
    if isinstance(value, str):
        if value in ("global", "Global", "Root"):
            return Scope()
        return Scope(_safe_path("scope", value.removeprefix("project:")))
    if not isinstance(value, dict):
        raise InvalidInput("frontmatter 'scope' is not a mapping")
    kind = value.get("type")
    if kind in ("Root", "Global"):
        return Scope()
    if kind in ("Path", "Project"):
        path = value.get("name")
        if not isinstance(path, str) or not path:
            raise InvalidInput(f"frontmatter scope of type {kind} has no name")
        return Scope(_safe_path("scope", path))
    raise InvalidInput(f"frontmatter scope type {kind!r} is unknown")


def _safe_path(kind: str, value: str) -> str:
    """Files from other writers may use names our rules refuse, but never ones that could escape a folder."""
    parts = value.split("/")
    if any(not part or part.startswith(".") or "\\" in part or "\x00" in part for part in parts):
        raise InvalidInput(f"frontmatter {kind} {value!r} is not a safe path")
    return value


def _time(front: dict[str, Any], key: str) -> datetime:
    value = front.get(key)
    if isinstance(value, datetime):  # YAML resolves unquoted timestamps itself
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(_trim_fraction(value))
        except ValueError as exc:
            raise InvalidInput(f"frontmatter '{key}' is not an RFC 3339 time: {value!r}") from exc
    else:
        raise InvalidInput(f"frontmatter '{key}' is missing")
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(f"frontmatter '{key}' is out of range: {value!r}") from exc


def _trim_fraction(value: str) -> str:
    """Python parses at most microseconds; the reference writes nanoseconds."""
    head, dot, rest = value.partition(".")
    if not dot:
        return value
    digits = len(rest) - len(rest.lstrip("0123456789"))
    return f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
