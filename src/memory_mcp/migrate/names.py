"""Turning foreign names into memory names and scopes.

Other tools accept names our rules refuse (spaces, accents, leading dots, deep folders, long parts). An
import must neither fail on them nor invent names silently: every name is normalised the same way on every
run, the importer reports each one that changed, and names that normalise to the same memory get numbered
suffixes in a fixed order, so a second run computes exactly the names of the first.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from memory_mcp.core import ALL, GLOBAL, MAX_NAME_PARTS, MAX_PART_CHARS, MAX_SOURCE_CHARS, Scope

_INVALID: Final = re.compile(r"[^A-Za-z0-9_.-]+")
_DASHES: Final = re.compile(r"-{2,}")
_UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def normalise_part(part: str) -> str:
    """One valid name or scope part: accents dropped, other characters become '-', no leading dot, no `.md`
    ending, at most 64 characters. A part with nothing usable left becomes `x-<hash>` so it stays distinct."""
    decomposed = "".join(c for c in unicodedata.normalize("NFKD", part) if not unicodedata.combining(c))
    cleaned = _DASHES.sub("-", _INVALID.sub("-", decomposed)).lstrip(".-").rstrip("-")[:MAX_PART_CHARS]
    if cleaned.lower().endswith(".md"):
        cleaned = cleaned[:-3] + "-md"
    if not cleaned:
        digest = hashlib.sha256(part.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"x-{digest}"
    return cleaned


def normalise_name(parts: Sequence[str]) -> str:
    """A memory name from path-like parts; deeper paths keep their first and last part and fold the middle."""
    if len(parts) > MAX_NAME_PARTS:
        parts = [parts[0], "-".join(parts[1:-1]), parts[-1]]
    return "/".join(normalise_part(part) for part in parts)


def normalise_scope(name: str) -> Scope:
    """A one-part scope for a project folder; `global` and `all` are reserved, so those get a suffix."""
    part = normalise_part(name)
    if part in (GLOBAL, ALL):
        part += "-project"
    return Scope.parse(part)


def printable(text: str) -> str:
    """Text safe to print, store as a source and put in JSON: undecodable file-name bytes and control
    characters are shown as escapes instead of crashing an output stream."""
    text = os.fsencode(text).decode("utf-8", "backslashreplace")
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def display(path: Path) -> str:
    """A path as shown in reports and sources: printable, with the home folder as `~`."""
    home = Path.home()
    return printable(f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path))


def source_text(text: str) -> str:
    """A `source` value: printable, trimmed, cut from the front when too long (the file name matters most)."""
    text = printable(text).strip()
    return text if len(text) <= MAX_SOURCE_CHARS else "..." + text[-(MAX_SOURCE_CHARS - 3) :].lstrip()


@dataclass(frozen=True)
class Wanted:
    """A name an importer would like, with what decides who keeps it when several want the same one."""

    scope: Scope
    name: str
    original: str
    """The source system's own name; a candidate whose name needed no change wins a clash."""
    origin: str
    """Where it comes from (a file path, an entity); breaks remaining ties."""
    legacy: bool = False
    """From a source's older layout: yields to a candidate from the current one."""


def unique_names(wanted: Sequence[Wanted]) -> list[str]:
    """Final names, in order: in a clash the preferred one keeps the name, the others get `-2`, `-3`..."""
    taken = {(w.scope, w.name) for w in wanted}
    clashes: dict[tuple[Scope, str], list[int]] = {}
    for index, w in enumerate(wanted):
        clashes.setdefault((w.scope, w.name), []).append(index)
    names = [w.name for w in wanted]
    for (scope, name), members in clashes.items():
        members.sort(key=lambda i: (wanted[i].name != wanted[i].original, wanted[i].legacy, wanted[i].origin))
        number = 2
        for index in members[1:]:
            while (scope, _numbered(name, number)) in taken:
                number += 1
            names[index] = _numbered(name, number)
            taken.add((scope, names[index]))
    return names


def _numbered(name: str, number: int) -> str:
    head, slash, last = name.rpartition("/")
    suffix = f"-{number}"
    return f"{head}{slash}{last[: MAX_PART_CHARS - len(suffix)]}{suffix}"
