"""Keyword ranking (BM25) over name, tags and content, on SQLite's FTS5 in memory."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Final

_WORD = re.compile(r"\w+", re.UNICODE)
WEIGHTS: Final = (4.0, 2.0, 1.0)
"""BM25 column weights: a query word in the name counts most, then tags, then content."""


STOPWORDS: Final = frozenset(
    "a about above after again all am an and any are as at be because been before being below between both but "
    "by can could did do does doing down during each few for from further had has have having he her here hers "
    "him his how i if in into is it its itself just me more most my no nor not now of off on once only or other "
    "our ours out over own same she should so some such than that the their theirs them then there these they "
    "this those through to too under until up very was we were what when where which while who whom why will "
    "with would you your yours".split()
)
"""Words too common to be evidence: matching "their" must not lift a memory above a better semantic hit."""


def query_terms(query: str) -> list[str]:
    """The distinct words of a query, lower-cased, in order, without stopwords (unless that leaves none)."""
    words = list(dict.fromkeys(_WORD.findall(query.lower())))
    meaningful = [word for word in words if word not in STOPWORDS]
    return meaningful or words


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
