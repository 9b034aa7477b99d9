"""Foreign names become valid memory names, the same way on every run."""

from __future__ import annotations

import pytest

from memory_mcp.core.model import Scope, validate_name
from memory_mcp.migrate.names import (
    Wanted,
    normalise_name,
    normalise_part,
    normalise_scope,
    printable,
    source_text,
    unique_names,
)


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ("suggested_commands", "suggested_commands"),
        ("My Notes (draft)", "My-Notes-draft"),
        ("résumé tips", "resume-tips"),
        (".hidden", "hidden"),
        ("...weird", "weird"),
        ("notes.md", "notes-md"),
        ("a   --  b", "a-b"),
        ("x" * 80, "x" * 64),
    ],
)
def test_parts_are_normalised(part: str, expected: str) -> None:
    assert normalise_part(part) == expected


def test_parts_with_nothing_usable_stay_distinct() -> None:
    dots, kanji = normalise_part(".."), normalise_part("日本語")
    assert dots.startswith("x-") and kanji.startswith("x-") and dots != kanji
    assert normalise_part("日本語") == kanji, "the same input always gives the same name"


def test_names_fold_deep_paths_and_are_always_valid() -> None:
    assert normalise_name(["topics", "rust", "async", "pitfalls"]) == "topics/rust-async/pitfalls"
    for parts in (["a b", "c"], [".", "..", "...", "x.md"], ["\udcff", "\n"], ["-" * 100]):
        validate_name(normalise_name(parts))


def test_project_scopes_avoid_reserved_words() -> None:
    assert normalise_scope("Data Pipeline") == Scope("Data-Pipeline")
    assert normalise_scope("global") == Scope("global-project")
    assert normalise_scope("all") == Scope("all-project")


def test_clashes_get_numbered_in_a_fixed_order() -> None:
    wanted = [
        Wanted(Scope(), "My-Notes", "My Notes", "b.md"),
        Wanted(Scope(), "My-Notes", "My-Notes", "c.md"),
        Wanted(Scope(), "My-Notes-2", "My-Notes-2", "d.md"),
        Wanted(Scope(), "My-Notes", "My_Notes?", "a.md"),
        Wanted(Scope("other"), "My-Notes", "My Notes", "e.md"),
    ]
    # The unchanged name wins; the renamed ones follow by origin, skipping a name that is already wanted.
    assert unique_names(wanted) == ["My-Notes-4", "My-Notes", "My-Notes-2", "My-Notes-3", "My-Notes"]
    assert unique_names(list(reversed(wanted))) == list(reversed(unique_names(wanted)))


def test_suffixes_fit_the_part_limit() -> None:
    long = "n" * 64
    names = unique_names([Wanted(Scope(), f"t/{long}", "x", "1"), Wanted(Scope(), f"t/{long}", "y", "2")])
    assert names[1] == f"t/{'n' * 62}-2"
    validate_name(names[1])


def test_printable_and_source_text() -> None:
    assert printable("bad\udcff\nname") == "bad\\xff\\x0aname"
    long = source_text("serena:/" + "d/" * 400 + "last.md")
    assert len(long) == 512 and long.startswith("...") and long.endswith("/last.md")
