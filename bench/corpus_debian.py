"""Debian's package descriptions as a bench corpus: real text nobody here wrote, with a query for each text.

In each `Description-en` record of apt's `Translation-en` lists, the first line (the short description) is
the query and the long text is the memory it should find. Records whose long text repeats an earlier one's
(packages of one source often share it, and the security and updates lists repeat the main one) are dropped,
and so are records without a long text.
"""

from __future__ import annotations

import glob
import random
import re
import subprocess
from dataclasses import dataclass

LISTS = "/var/lib/apt/lists/*_i18n_Translation-en.lz4"
APT_HELPER = "/usr/lib/apt/apt-helper"
FETCH_HINT = "apt-get update -o Acquire::Languages=en"
SEED = 20261202


@dataclass(frozen=True)
class Record:
    package: str
    query: str
    """The short description."""
    text: str
    """The long description, its paragraphs separated by blank lines."""


def parse(listing: str) -> list[Record]:
    """Every record of a Translation file with a short and a long description, in file order."""
    records = []
    for block in re.split(r"\n\s*\n", listing):
        package, description = "", None
        for line in block.splitlines():
            if line.startswith("Package:"):
                package = line.partition(":")[2].strip()
            elif line.startswith("Description-en:"):
                description = [line.partition(":")[2].strip()]
            elif description is not None and line.startswith(" "):
                description.append(line)
            elif description is not None:
                break  # a later field ends the description
        if description is None:
            continue
        query, text = description[0], _long_text(description[1:])
        if query and text:
            records.append(Record(package, query, text))
    return records


def _long_text(lines: list[str]) -> str:
    """Debian's continuation lines: one leading space dropped, " ." a paragraph break."""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == ".":
            paragraphs.append([])
        else:
            paragraphs[-1].append(line[1:].rstrip())
    return "\n\n".join("\n".join(p) for p in paragraphs if any(part.strip() for part in p)).strip()


def unique(records: list[Record]) -> list[Record]:
    """The first record of each long text (compared with whitespace collapsed)."""
    seen: set[str] = set()
    kept = []
    for record in records:
        key = " ".join(record.text.split())
        if key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


def load() -> list[Record]:
    """The unique records of every Translation-en list apt has fetched; exits with what to run if none."""
    paths = sorted(glob.glob(LISTS))
    if not paths:
        raise SystemExit(
            f"no Debian Translation-en lists in {LISTS.rsplit('/', 1)[0]}: run `{FETCH_HINT}` (as root) first"
        )
    records: list[Record] = []
    for path in paths:
        listing = subprocess.run(
            [APT_HELPER, "cat-file", path], check=True, capture_output=True, text=True, errors="replace"
        ).stdout
        records += parse(listing)
    return unique(records)


def shuffled(records: list[Record], seed: int = SEED) -> list[Record]:
    """A fixed order for sampling: a sample of n is the first n of it, so a smaller sample is part of a larger
    one (and memories keep their names, hence their cached vectors, from run to run)."""
    order = list(records)
    random.Random(seed).shuffle(order)
    return order


def name(position: int) -> str:
    """A memory's name carries no words of its text: the query must find it by content."""
    return f"debian/d{position:05d}"
