"""Validation rules and value types of `memory_mcp.core.model`."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from memory_mcp.core import model
from memory_mcp.core.model import (
    MAX_CONTENT_BYTES,
    MAX_LIMIT,
    MAX_PART_CHARS,
    MAX_QUERY_CHARS,
    MAX_SOURCE_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    Memory,
    Scope,
    ScopeFilter,
    format_time,
    validate_content,
    validate_limit,
    validate_name,
    validate_query,
    validate_source,
    validate_tags,
)
from memory_mcp.errors import InvalidInput, MemoryMcpError

# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "rust-tips",
        "rust/async-tips",
        "a/b/c",
        "A_b.c-9",
        "x" * MAX_PART_CHARS,
        "/".join(["p" * MAX_PART_CHARS] * 3),
        "global",  # reserved only as a scope, not as a name
        "all",
        "a.md.txt",
        "v1.2",
    ],
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a/b/c/d",  # too many parts
        "/a",
        "a/",
        "a//b",
        "/",
        ".",
        "..",
        "a/../b",
        "../a",
        ".hidden",
        "a/.b",
        "a.md",
        "a.MD",
        "a.md/b",
        "a/B.Md",
        "x" * (MAX_PART_CHARS + 1),
        "a/" + "y" * (MAX_PART_CHARS + 1),
        "a b",
        "a\nb",
        "a\n",
        "a\\b",
        "a:b",
        "ä",
        "a*",
        "a\x00",
        "emoji-😀",
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_name(name)


@pytest.mark.parametrize("name", [None, 5, b"abc", ["a"]])
def test_name_must_be_a_string(name: object) -> None:
    with pytest.raises(InvalidInput, match="string"):
        validate_name(name)  # type: ignore[arg-type]


def test_invalid_name_errors_are_domain_errors() -> None:
    with pytest.raises(MemoryMcpError):
        validate_name("a/b/c/d")


def test_too_many_parts_message_mentions_the_limit() -> None:
    with pytest.raises(InvalidInput, match="at most 3"):
        validate_name("a/b/c/d")


# ---------------------------------------------------------------- scopes


@pytest.mark.parametrize("value", [None, "", "global"])
def test_global_scope_spellings(value: str | None) -> None:
    scope = Scope.parse(value)
    assert scope == Scope()
    assert scope.is_global
    assert str(scope) == "global"


@pytest.mark.parametrize("value", ["org", "org/team/project", "a-b/c_d/e.f", "/".join("abcdefghij")])
def test_scope_paths(value: str) -> None:
    scope = Scope.parse(value)
    assert scope.path == value
    assert not scope.is_global
    assert str(scope) == value


def test_project_alias_is_a_path() -> None:
    assert Scope.parse("project:x") == Scope("x")
    assert Scope.parse("project:x/y") == Scope("x/y")
    assert Scope.parse("project:x") == Scope.parse("x")


@pytest.mark.parametrize(
    "value",
    [
        "all",  # reserved for queries
        "all/x",
        "global/x",
        "project:",
        "project:all",
        "project:global",
        "project:global/x",
        "project:project:x",
        "/".join("abcdefghijk"),  # 11 parts
        "a//b",
        "/a",
        "a/",
        "a/../b",
        ".a",
        "a/.b",
        "a.md",
        "a/b.md/c",
        "z" * (MAX_PART_CHARS + 1),
        "a b",
        "a:b",
    ],
)
def test_invalid_scopes(value: str) -> None:
    with pytest.raises(InvalidInput):
        Scope.parse(value)


def test_all_is_refused_for_writing_with_a_helpful_message() -> None:
    with pytest.raises(InvalidInput, match="reserved"):
        Scope.parse("all")


@pytest.mark.parametrize("value", [5, ["a"], b"org"])
def test_scope_must_be_a_string(value: object) -> None:
    with pytest.raises(InvalidInput):
        Scope.parse(value)  # type: ignore[arg-type]


def test_scope_contains() -> None:
    org = Scope("org")
    assert org.contains(Scope("org"))
    assert org.contains(Scope("org/team"))
    assert org.contains(Scope("org/team/p"))
    assert not org.contains(Scope("organisation"))  # a prefix of the string is not a sub-scope
    assert not org.contains(Scope("other/org"))
    assert not org.contains(Scope())
    assert not Scope("org/team").contains(org)
    assert Scope().contains(Scope())
    # The global scope is not a parent of project scopes.
    assert not Scope().contains(Scope("org"))


def test_scopes_order_and_hash() -> None:
    ordered = [Scope(), Scope("a"), Scope("a/z"), Scope("b")]
    assert sorted([Scope("b"), Scope(), Scope("a/z"), Scope("a")]) == ordered
    assert len({Scope("a"), Scope.parse("project:a"), Scope.parse("a")}) == 1


# ---------------------------------------------------------------- scope filters

SCOPES = [
    Scope(),
    Scope("org"),
    Scope("org/team"),
    Scope("org/team/p"),
    Scope("organisation"),
    Scope("other"),
]


def _matching(filter_: ScopeFilter) -> list[Scope]:
    return [s for s in SCOPES if filter_.matches(s)]


@pytest.mark.parametrize("value", [None, ""])
def test_omitted_scope_with_default_all_means_everything(value: str | None) -> None:
    parsed = ScopeFilter.parse(value, default_all=True)
    assert parsed.root is None
    assert _matching(parsed) == SCOPES
    assert str(parsed) == "all"


@pytest.mark.parametrize("value", [None, ""])
def test_omitted_scope_without_default_all_means_global_only(value: str | None) -> None:
    parsed = ScopeFilter.parse(value, default_all=False)
    assert _matching(parsed) == [Scope()]
    assert str(parsed) == "global"


@pytest.mark.parametrize("default_all", [True, False])
def test_all_filter(default_all: bool) -> None:
    parsed = ScopeFilter.parse("all", default_all=default_all)
    assert parsed.root is None
    assert _matching(parsed) == SCOPES
    assert str(parsed) == "all"


@pytest.mark.parametrize("default_all", [True, False])
def test_global_filter(default_all: bool) -> None:
    parsed = ScopeFilter.parse("global", default_all=default_all)
    assert _matching(parsed) == [Scope()]
    assert str(parsed) == "global"


@pytest.mark.parametrize("default_all", [True, False])
def test_path_filter_is_subtree_plus_global(default_all: bool) -> None:
    parsed = ScopeFilter.parse("org", default_all=default_all)
    assert _matching(parsed) == [Scope(), Scope("org"), Scope("org/team"), Scope("org/team/p")]
    assert str(parsed) == "org"
    deeper = ScopeFilter.parse("org/team", default_all=default_all)
    assert _matching(deeper) == [Scope(), Scope("org/team"), Scope("org/team/p")]


def test_path_filter_without_global() -> None:
    only = ScopeFilter(Scope("org"), include_global=False)
    assert _matching(only) == [Scope("org"), Scope("org/team"), Scope("org/team/p")]


def test_project_alias_filter() -> None:
    assert _matching(ScopeFilter.parse("project:org/team", default_all=False)) == [
        Scope(),
        Scope("org/team"),
        Scope("org/team/p"),
    ]


@pytest.mark.parametrize("value", ["a//b", "global/x", "all/x", "../x"])
def test_invalid_filters(value: str) -> None:
    with pytest.raises(InvalidInput):
        ScopeFilter.parse(value, default_all=True)


# ---------------------------------------------------------------- tags


def test_tags_none_is_empty() -> None:
    assert validate_tags(None) == ()
    assert validate_tags([]) == ()


def test_tags_trimmed_deduplicated_order_kept() -> None:
    assert validate_tags([" b ", "a", "b", "a ", "c"]) == ("b", "a", "c")
    assert validate_tags(("x",)) == ("x",)


def test_tags_are_case_sensitive_and_unicode_allowed() -> None:
    tags = ("Rust", "rust", "日本語", "c++", "a b")
    assert validate_tags(list(tags)) == tags


def test_tag_length_limit() -> None:
    assert validate_tags(["t" * MAX_TAG_CHARS]) == ("t" * MAX_TAG_CHARS,)
    # surrounding whitespace does not count
    assert validate_tags(["  " + "t" * MAX_TAG_CHARS + "  "]) == ("t" * MAX_TAG_CHARS,)
    with pytest.raises(InvalidInput):
        validate_tags(["t" * (MAX_TAG_CHARS + 1)])


def test_tag_count_limit_is_checked_before_any_per_tag_work() -> None:
    """The list as given is bounded (a 60k-tag recall burned 35 s of CPU); duplicates are dropped in linear
    time but count toward the limit."""
    many = [f"t{i}" for i in range(MAX_TAGS)]
    assert validate_tags(many) == tuple(many)
    assert validate_tags(many[:16] + many[:16]) == tuple(many[:16])
    for too_many in ([*many, "one-more"], many + many, [" "] * 400_000):
        with pytest.raises(InvalidInput, match=str(MAX_TAGS)):
            validate_tags(too_many)


@pytest.mark.parametrize("tag", ["", "   ", "a,b", "a\nb", "a\tb", "a\x00", "a\x7f", "\x1b[31m"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(InvalidInput):
        validate_tags(["ok", tag])


@pytest.mark.parametrize("tags", ["rust", [1], ["a", None], [b"a"]])
def test_tags_must_be_a_list_of_strings(tags: object) -> None:
    with pytest.raises(InvalidInput):
        validate_tags(tags)  # type: ignore[arg-type]


# ---------------------------------------------------------------- content, source, query, limit


def test_content_valid() -> None:
    assert validate_content("hello") == "hello"
    assert validate_content("  padded\n") == "  padded\n"  # content is kept verbatim


def test_content_size_limit_is_in_utf8_bytes() -> None:
    assert validate_content("a" * MAX_CONTENT_BYTES)
    with pytest.raises(InvalidInput, match="bytes"):
        validate_content("a" * (MAX_CONTENT_BYTES + 1))
    two_byte = "é" * (MAX_CONTENT_BYTES // 2)
    assert validate_content(two_byte) == two_byte
    with pytest.raises(InvalidInput):
        validate_content(two_byte + "a")  # 1 MiB + 1 byte, though far fewer characters


@pytest.mark.parametrize("content", ["", " ", "\n\t \n", "a\x00b", "lone \ud800 surrogate"])
def test_invalid_content(content: str) -> None:
    with pytest.raises(InvalidInput):
        validate_content(content)


@pytest.mark.parametrize("content", [None, 5, b"bytes"])
def test_content_must_be_a_string(content: object) -> None:
    with pytest.raises(InvalidInput):
        validate_content(content)  # type: ignore[arg-type]


def test_source() -> None:
    assert validate_source(None) == ""
    assert validate_source("") == ""
    assert validate_source("  https://example.com/x  ") == "https://example.com/x"
    assert validate_source("s" * MAX_SOURCE_CHARS) == "s" * MAX_SOURCE_CHARS


@pytest.mark.parametrize("source", ["s" * (MAX_SOURCE_CHARS + 1), "two\nlines", "nul\x00", 5, ["x"]])
def test_invalid_source(source: object) -> None:
    with pytest.raises(InvalidInput):
        validate_source(source)  # type: ignore[arg-type]


def test_query() -> None:
    assert validate_query("  rust async ") == "rust async"
    assert validate_query("q" * MAX_QUERY_CHARS) == "q" * MAX_QUERY_CHARS


@pytest.mark.parametrize("query", ["", "   ", "\n", "q" * (MAX_QUERY_CHARS + 1), None, 7])
def test_invalid_query(query: object) -> None:
    with pytest.raises(InvalidInput):
        validate_query(query)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [1, 10, MAX_LIMIT])
def test_limit(limit: int) -> None:
    assert validate_limit(limit) == limit


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, True, False, 1.0, "5", None])
def test_invalid_limit(limit: object) -> None:
    with pytest.raises(InvalidInput):
        validate_limit(limit)  # type: ignore[arg-type]


def test_limit_custom_maximum() -> None:
    assert validate_limit(500, maximum=1000) == 500
    with pytest.raises(InvalidInput, match="1 to 3"):
        validate_limit(4, maximum=3)


# ---------------------------------------------------------------- time


def test_format_time_utc_milliseconds_z() -> None:
    moment = datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert format_time(moment) == "2025-03-01T10:00:00.123Z"
    assert format_time(datetime(2025, 3, 1, tzinfo=UTC)) == "2025-03-01T00:00:00.000Z"


def test_format_time_converts_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2025, 3, 1, 12, 30, 0, 5000, tzinfo=plus_two)) == "2025-03-01T10:30:00.005Z"
    minus = timezone(-timedelta(hours=5, minutes=30))
    assert format_time(datetime(2024, 12, 31, 22, 0, tzinfo=minus)) == "2025-01-01T03:30:00.000Z"


def test_now_is_utc_millisecond_precision() -> None:
    moment = model.now()
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert moment.microsecond % 1000 == 0
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 5


# ---------------------------------------------------------------- Memory


def test_memory_defaults() -> None:
    a = Memory(name="n", scope=Scope(), content="c")
    b = Memory(name="n", scope=Scope(), content="c")
    assert a.id != b.id
    assert uuid.UUID(a.id).version == 4
    assert a.created_at.microsecond % 1000 == 0
    assert a.key == (Scope(), "n")
    assert a.tags == () and a.source == ""


def test_memory_is_frozen() -> None:
    memory = Memory(name="n", scope=Scope(), content="c")
    with pytest.raises(AttributeError):
        memory.name = "other"  # type: ignore[misc]


def test_revised_keeps_id_and_created_at() -> None:
    created = datetime(2020, 1, 1, tzinfo=UTC)
    original = Memory(
        name="a/b", scope=Scope("org"), content="old", id="fixed-id", created_at=created, updated_at=created
    )
    time.sleep(0.002)
    revised = original.revised(content="new", tags=("t",))
    assert revised.id == "fixed-id"
    assert revised.created_at == created
    assert revised.updated_at > created
    assert revised.content == "new" and revised.tags == ("t",)
    assert revised.name == "a/b" and revised.scope == Scope("org")
    assert original.content == "old"  # the original is untouched
    moved = original.revised(name="c", scope=Scope())
    assert moved.key == (Scope(), "c") and moved.id == "fixed-id"


def test_embedding_text() -> None:
    memory = Memory(name="rust/async", scope=Scope(), content="body", tags=("a", "b"))
    assert memory.embedding_text() == "rust / async\na, b\n\nbody"
    assert Memory(name="x", scope=Scope(), content="body").embedding_text() == "x\n\nbody"
