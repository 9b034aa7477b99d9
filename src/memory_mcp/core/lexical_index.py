"""Keyword ranking (BM25) over name, tags and content, on SQLite's FTS5 in memory."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Final

_WORD = re.compile(r"\w+", re.UNICODE)
WEIGHTS: Final = (4.0, 2.0, 1.0)
"""BM25 column weights: a query word in the name counts most, then tags, then content."""


def query_terms(query: str) -> list[str]:
    """The distinct words of a query, lower-cased, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word, None)
    return list(seen)


class LexicalIndex:
    """One FTS5 table; documents are keyed by the caller's integer ids."""

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE docs USING fts5(name, tags, content, tokenize='porter unicode61 remove_diacritics 2')"
        )

    def put(self, doc: int, name: str, tags: str, content: str) -> None:
        self._db.execute("DELETE FROM docs WHERE rowid = ?", (doc,))
        self._db.execute("INSERT INTO docs(rowid, name, tags, content) VALUES (?, ?, ?, ?)", (doc, name, tags, content))

    def remove(self, doc: int) -> None:
        self._db.execute("DELETE FROM docs WHERE rowid = ?", (doc,))

    def clear(self) -> None:
        self._db.execute("DELETE FROM docs")

    def search(self, query: str) -> Iterator[tuple[int, float]]:
        """(doc, score) best first, lazily, so callers can filter before they stop; higher score is better."""
        terms = query_terms(query)
        if not terms:
            return
        expression = " OR ".join(f'"{term}"' for term in terms)
        cursor = self._db.execute(
            "SELECT rowid, bm25(docs, ?, ?, ?) AS score FROM docs WHERE docs MATCH ? ORDER BY score",
            (*WEIGHTS, expression),
        )
        for doc, score in cursor:
            yield int(doc), -float(score)
