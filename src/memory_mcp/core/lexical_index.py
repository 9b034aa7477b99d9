"""Keyword ranking (BM25) over name, tags and content, on SQLite's FTS5 in the derived store's database.

The index lives in the store's file and changes in place with each write (a search there costs what it cost
in memory: scoring dominates, not reading pages), so nothing is loaded at start-up or rewritten to save it.
"""

from __future__ import annotations

import json
import re
from typing import Final

from memory_mcp.core import derived_store
from memory_mcp.core.derived_store import DerivedStore

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
"""A query word as the tokenizer makes one: letters and digits. An underscore separates, as it does in the
index, so "collada_urdf" finds a text that says "COLLADA ... URDF" (as a phrase it needed them adjacent)."""
WEIGHTS: Final = (4.0, 2.0, 1.0)
"""BM25 column weights: a query word in the name counts most, then tags, then content."""
COMMON_FRACTION: Final = 0.25
"""A query word found in more than this share of memories is no evidence, and matching it costs a scan of them."""
MIN_DOCS_FOR_PRUNING: Final = 20
RARE_BUDGET: Final = 500
"""Memories the rare words of a search may match; see `LexicalIndex.search`. Each may be scored twice (once
more with the common words), so a search scores at most 1,000 rows, as many as when this was 1,000 and the
common words went unscored."""
MERGE_PAGES: Final = 64
"""Index pages one merge step may rewrite (about 2 ms): a search waits for one step at most."""
TOKENIZER: Final = "porter unicode61 remove_diacritics 2"
DF_CACHE_LIMIT: Final = 50_000
"""Document frequencies remembered at most (one per distinct query word seen); beyond, they start over."""


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
    """One contentless FTS5 table, keyed by the caller's integer ids, plus a cache of document frequencies.

    Contentless: the memories' text lives in the catalog already. The price is that removing a document takes
    the text it was added with. Document frequencies decide which query words are too common to rank by; they
    are counted by the index on first use and kept exact afterwards: each change adjusts the counts of the
    cached tokens it holds (tokens as FTS5 makes them, stemmed, from a scratch table with the same tokenizer).
    """

    def __init__(self, store: DerivedStore | None = None) -> None:
        self._store = store or DerivedStore.in_memory()
        self._db = self._store.db
        self._db.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(name, tags, content, content='', "
            f"tokenize='{TOKENIZER}')"
        )
        self._total = self._db.execute("SELECT count(*) FROM docs_docsize").fetchone()[0]
        self._df: dict[str, int] = {}
        """Token → how many documents hold it, for tokens some query used. A dict, not a query: every search
        reads it, and a lookup here costs ~1 µs where counting a common word's documents costs milliseconds."""
        self._tokens: dict[str, tuple[str, ...]] = {}
        self._scratch = derived_store.connect(None)
        self._scratch.execute(f"CREATE VIRTUAL TABLE scratch USING fts5(text, tokenize='{TOKENIZER}')")
        self._scratch.execute("CREATE VIRTUAL TABLE scratch_terms USING fts5vocab(scratch, row)")

    def put(self, doc: int, name: str, tags: str, content: str) -> None:
        """Index a new document (`doc` must not be indexed already)."""
        self._change(doc, (name, tags, content), +1)

    def remove(self, doc: int, name: str, tags: str, content: str) -> None:
        """Forget a document, given the exact text it was put with (other text would corrupt the index)."""
        if self._db.execute("SELECT 1 FROM docs_docsize WHERE id = ?", (doc,)).fetchone() is not None:
            self._change(doc, (name, tags, content), -1)

    def _change(self, doc: int, fields: tuple[str, str, str], delta: int) -> None:
        command = "INSERT INTO docs(rowid, name, tags, content) VALUES (?, ?, ?, ?)"
        if delta < 0:
            command = "INSERT INTO docs(docs, rowid, name, tags, content) VALUES ('delete', ?, ?, ?, ?)"
        self._db.execute(command, (doc, *fields))
        self._total += delta
        if self._df:
            for token in self._tokens_of(" ".join(fields)) & self._df.keys():
                self._df[token] += delta

    def _tokens_of(self, text: str) -> set[str]:
        """The distinct tokens FTS5 makes of `text`."""
        self._scratch.execute("INSERT INTO scratch(rowid, text) VALUES (1, ?)", (text,))
        try:
            return {term for (term,) in self._scratch.execute("SELECT term FROM scratch_terms")}
        finally:
            self._scratch.execute("DELETE FROM scratch")

    def merge_step(self) -> bool:
        """Merge some of the index's segments; True while there is more to merge.

        Every write adds a small segment and every search probes each segment: measured at 10,000 memories,
        a merged index answers in two thirds of the time (0.24 → 0.16 ms).
        """
        before = self._db.total_changes
        self._db.execute("INSERT INTO docs(docs, rank) VALUES ('merge', ?)", (-MERGE_PAGES,))
        return self._db.total_changes - before >= 2  # FTS5 changes less than that when nothing was left

    def _document_counts(self, terms: list[str]) -> tuple[dict[str, int], int]:
        """How many memories hold each term (0 for unknown ones), and how many memories there are."""
        return {term: self._count(term) for term in terms}, self._total

    def _count(self, word: str) -> int:
        tokens = self._tokens.get(word)
        if tokens is None:
            if len(self._tokens) >= DF_CACHE_LIMIT:
                self._tokens.clear()
            tokens = self._tokens[word] = tuple(sorted(self._tokens_of(word)))
        if len(tokens) != 1:  # no token, or a word the tokenizer splits: rare, counted each time
            return self._matches(word) if tokens else 0
        (token,) = tokens
        count = self._df.get(token)
        if count is None:
            if len(self._df) >= DF_CACHE_LIMIT:
                self._df.clear()
            count = self._df[token] = self._matches(word)
        return count

    def _matches(self, word: str) -> int:
        return self._db.execute("SELECT count(*) FROM docs WHERE docs MATCH ?", (f'"{word}"',)).fetchone()[0]

    def _within(self, match: str, budget: int) -> bool:
        """Whether `match` finds at most `budget` memories; counting stops past it."""
        found = self._db.execute(
            "SELECT count(*) FROM (SELECT 1 FROM docs WHERE docs MATCH ? LIMIT ?)", (match, budget + 1)
        ).fetchone()[0]
        return found <= budget

    def search(self, query: str, limit: int, among: list[int] | None = None) -> list[tuple[int, float]]:
        """Up to `limit` (doc, score) pairs, best first; higher score is better, 0 means matched but unscored.
        With `among`, only those docs, in the order the search over all would put them.

        Scoring is what costs (about 0.7 µs per matching memory), so the work is bounded whatever the corpus
        size: words no memory or most memories contain are dropped; the memories holding the rarest words, up
        to RARE_BUDGET of them, are ranked by BM25 of every word left (see `_ranked`), or, when even the
        rarest word is beyond the budget, the memories holding the rarest words together (`_conjoined`); if
        they leave room, memories with only the remaining words follow unscored, newest first (finding them
        costs no scoring).
        """
        counts, total = self._document_counts(query_terms(query))
        terms = _evidence(counts, total)
        if not terms:
            return []
        rare = _within_budget(terms, counts)
        within = _Within(among)
        if rare:
            rows = self._ranked(_any_of(rare), terms[len(rare) :], limit, within)
        else:
            rows = self._conjoined(terms, limit, within)
        if len(rows) < limit and len(rare) < len(terms):
            rows += self._newest(terms[len(rare) :], limit - len(rows), {doc for doc, _ in rows}, within)
        return rows

    def _conjoined(self, terms: list[str], limit: int, within: _Within) -> list[tuple[int, float]]:
        """The memories holding the fewest leading (rarest) words together that RARE_BUDGET admits, ranked
        as `_ranked` ranks; none when even all the words together are beyond it.

        What BM25 puts first nearly always holds the rarest words together, and scoring every holder of the
        rarest one alone would cost up to COMMON_FRACTION of the corpus. Left unscored instead (newest first),
        the full Debian set lost MRR@10 0.640 → 0.599 against plain BM25 (bench/RESULTS.md, round 13).
        Counting stops past the budget: matching without scoring is cheap."""
        for size in range(2, len(terms) + 1):
            together = _all_of(terms[:size])
            if self._within(together, RARE_BUDGET):
                return self._ranked(together, terms[size:], limit, within)
        return []

    def _ranked(self, found: str, common: list[str], limit: int, within: _Within) -> list[tuple[int, float]]:
        """The best `limit` memories the match expression `found` (of rare words) finds, by BM25 of its words
        and the common ones.

        BM25 adds up word by word, so a memory with a common word too is scored whole by a second match of
        `found` AND the common words, which scores only those memories (no more than the first). Left out,
        the common words cost quality where they tell texts apart: "library" or "documentation" in Debian's
        descriptions (bench/RESULTS.md, "Quality, round 6")."""
        scores = dict(self._scored(found, limit, within))
        if common:
            scores.update(self._scored(f"({found}) AND ({_any_of(common)})", limit, within))
        return sorted(scores.items(), key=lambda row: -row[1])[:limit]

    def _scored(self, match: str, limit: int, within: _Within) -> list[tuple[int, float]]:
        rows = self._db.execute(
            f"SELECT rowid, bm25(docs, ?, ?, ?) AS score FROM docs WHERE docs MATCH ?{within.clause} "
            "ORDER BY score LIMIT ?",
            (*WEIGHTS, match, *within.parameters, limit),
        ).fetchall()  # fetched whole: an open cursor would pin a read transaction that blocks snapshot backups
        return [(int(doc), -float(score)) for doc, score in rows]

    def _newest(
        self, terms: list[str], limit: int, exclude: set[int], within: _Within
    ) -> list[tuple[int, float]]:
        rows = self._db.execute(
            f"SELECT rowid FROM docs WHERE docs MATCH ?{within.clause} ORDER BY rowid DESC LIMIT ?",
            (_any_of(terms), *within.parameters, limit + len(exclude)),
        ).fetchall()
        return [(int(doc), 0.0) for (doc,) in rows if doc not in exclude][:limit]


class _Within:
    """The SQL that restricts a search to some docs (none: all), as one JSON parameter whatever their number.
    `+rowid` keeps the match a scan that checks each row against the list: a plain `rowid IN` runs the whole
    match once per listed doc (measured: 43 ms for 2,000 docs, 1 ms as a check)."""

    def __init__(self, docs: list[int] | None) -> None:
        self.clause = "" if docs is None else " AND +rowid IN (SELECT value FROM json_each(?))"
        self.parameters = () if docs is None else (json.dumps(docs),)


def _any_of(terms: list[str]) -> str:
    return " OR ".join(f'"{term}"' for term in terms)


def _all_of(terms: list[str]) -> str:
    return " AND ".join(f'"{term}"' for term in terms)


def _evidence(counts: dict[str, int], total: int) -> list[str]:
    """The words worth searching, rarest first: those some memory holds, less those in more than
    COMMON_FRACTION of them (unless that leaves none). A word no memory holds would pass for the rarest and
    leave the budget's search with nothing to find."""
    terms = [term for term, count in counts.items() if count]
    if terms and total >= MIN_DOCS_FOR_PRUNING:
        terms = [t for t in terms if counts[t] <= COMMON_FRACTION * total] or [min(terms, key=counts.__getitem__)]
    return sorted(terms, key=counts.__getitem__)


def _within_budget(terms: list[str], counts: dict[str, int]) -> list[str]:
    """The leading terms (rarest first) whose memories together stay within RARE_BUDGET."""
    chosen, postings = [], 0
    for term in terms:
        postings += counts[term]
        if postings > RARE_BUDGET:
            break
        chosen.append(term)
    return chosen
