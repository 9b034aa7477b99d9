"""The tools' shared parameter types: each argument's description and upper bound, declared once so every
tool states them alike in its input schema."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from memory_mcp.core import MAX_TAG_CHARS, MAX_TAGS

# Upper bounds in every schema, so a client knows them and oversized input is refused before any work.
MAX_NAME_CHARS: Final = 200
MAX_SCOPE_CHARS: Final = 700
MAX_ID_CHARS: Final = 64
MAX_CURSOR_CHARS: Final = 512

NAME_HELP: Final = (
    "Memory name: 1-3 '/'-separated parts of letters, digits, '-', '_', '.' (e.g. 'rust/async-tips')"
)
Name = Annotated[str | None, Field(description=NAME_HELP, max_length=MAX_NAME_CHARS)]
Scope = Annotated[
    str | None,
    Field(
        description=(
            "Scope: 'global' (default) or a path like 'org/team/project'; 'project:<name>' is an alias"
        ),
        max_length=MAX_SCOPE_CHARS,
    ),
]
MemoryId = Annotated[
    str | None, Field(description="The memory's id (alternative to name + scope)", max_length=MAX_ID_CHARS)
]
TagList = list[Annotated[str, Field(max_length=MAX_TAG_CHARS)]] | None
Tags = Annotated[
    TagList, Field(description="Tags, e.g. ['rust', 'decision']; at most 32", max_length=MAX_TAGS)
]
FilterTags = Annotated[
    TagList, Field(description="Only memories that carry all of these tags", max_length=MAX_TAGS)
]
ExpectedVersion = Annotated[
    str | None,
    Field(
        description=(
            "Only apply if the memory is still at this version (from read/list); else a conflict error"
        ),
        max_length=MAX_ID_CHARS,
    ),
]
