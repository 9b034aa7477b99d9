"""Query → ranked hits: vector and keyword candidates (filters applied before any limit), fusion of
their scores, cosine scores for every hit, and a snippet around the part that matched best."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from memory_mcp.core.catalog import Catalog, Entry
from memory_mcp.core.checks import RecallFilter
from memory_mcp.core.lexical_index import query_terms

MIN_CANDIDATES: Final = 20
"""Fewest candidates each ranking contributes; deeper lists only add memories both rankings put low."""
SNIPPET_CHARS: Final = 480
FETCH_MARGIN: Final = 1.5
"""Keyword rows fetched beyond what the filtered share of memories should need: a second fetch costs a
whole search."""
EXACT_TAGGED: Final = 1_000
"""A recall filtered by tags whose rarest tag has at most this many memories compares the query with just
their chunks, exactly, and keyword-searches just them: a graph search calls the filter at every node it
visits, and must visit far to find enough that pass. Measured at 10,000 memories (CPU per recall, graph →
exact): 10 holders 37 → 0.3 ms, 1,000: 11 → 4 ms, 2,000: 8 → 16 ms; a tag nobody has: 43 → 0.01 ms."""

MatchType = Literal["semantic", "lexical", "both"]


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float
    """Cosine similarity between the query and the memory's best-matching chunk, 0-1 for related text."""
    match_type: MatchType
    snippet: str
    truncated: bool


def depth(limit: int) -> int:
    """How many candidates each ranking contributes to the fusion."""
    return max(MIN_CANDIDATES, 4 * limit)


def rank(
    catalog: Catalog,
    query: str,
    query_vector: np.ndarray,
    allowed: RecallFilter | None,
    limit: int,
    min_score: float | None = None,
) -> list[Hit]:
    """The best `limit` memories passing `allowed` (None = all) and `min_score`, best first."""
    semantic, lexical = _candidates(catalog, query, query_vector, _needed(catalog, allowed), depth(limit))
    hits = []
    terms = query_terms(query)
    for doc in fuse(semantic, lexical):
        entry = catalog.by_doc(doc)
        if entry is None:
            continue
        score, best_chunk = _similarity(catalog, entry, query_vector, semantic.get(doc))
        if min_score is not None and score < min_score:
            continue
        in_semantic, in_lexical = doc in semantic, doc in lexical
        match_type: MatchType = (
            "both" if in_semantic and in_lexical else "semantic" if in_semantic else "lexical"
        )
        text, truncated = snippet(entry.memory.content, terms, best_chunk, max(len(entry.labels), 1))
        hits.append(Hit(entry, round(score, 4), match_type, text, truncated))
        if len(hits) >= limit:
            break
    return hits


def fuse(semantic: dict[int, float], lexical: dict[int, float]) -> list[int]:
    """Both rankings' candidates, best first, by the sum of their two scores, each scaled by its own
    ranking's spread (see `_scaled`); a memory a ranking did not find gets 0 from it.

    Distribution-based score fusion, not reciprocal rank fusion: ranks forget how far apart the scores are,
    so a memory that one ranking put far above the rest lost to memories both put in the middle. Measured
    with `bench/diagnose.py` (R@5, MRR@10) against RRF of the same candidates on Debian's descriptions at 1k
    and 10k and on the generated corpus: see bench/RESULTS.md, "Quality, round 6".
    """
    fused = _scaled(semantic)  # ties keep the semantic ranking's order, then the keyword ranking's
    for doc, part in _scaled(lexical).items():
        fused[doc] = fused.get(doc, 0.0) + part
    return sorted(fused, key=fused.__getitem__, reverse=True)


def _scaled(scores: dict[int, float]) -> dict[int, float]:
    """Scores mapped linearly so that three standard deviations below their mean is 0 and three above is 1
    (the mean is 0.5): a ranking whose scores are all alike adds about the same to each of its candidates,
    and one with a clear winner lifts it. Not min-max: that gave the weaker of two keyword matches nothing.
    All equal: 1 each, as each is that ranking's best (a lone keyword match for an identifier, say: given
    the middle instead, it lost to the graph's top neighbours of a query naming it), or 0 for keyword rows
    matched but unscored (common words only: no evidence)."""
    if not scores:
        return {}
    values = scores.values()
    mean = sum(values) / len(scores)
    spread = 3.0 * math.sqrt(sum((value - mean) ** 2 for value in values) / len(scores))
    if spread == 0.0:
        return dict.fromkeys(scores, 1.0 if mean > 0 else 0.0)
    low = mean - spread
    return {doc: (score - low) / (2.0 * spread) for doc, score in scores.items()}


def _needed(catalog: Catalog, allowed: RecallFilter | None) -> RecallFilter | None:
    """None when the filter passes every memory by scope alone (all of them global, say): then the graph
    search calls nothing per node it visits."""
    if allowed is None or allowed.rest is not None:
        return allowed
    return None if all(map(allowed.scopes.__getitem__, catalog.scope_counts())) else allowed


def _candidates(
    catalog: Catalog, query: str, vector: np.ndarray, allowed: RecallFilter | None, depth: int
) -> tuple[dict[int, float], dict[int, float]]:
    """Each ranking's candidates: from the indexes, filtered as they search, or, when the filter's tags
    admit few memories, from just those."""
    few = _few_admitted(catalog, allowed)
    if few is None:
        return _semantic(catalog, vector, allowed, depth), _keyword(catalog, query, allowed, depth)
    if not few:  # a tag no memory (the caller may see) carries
        return {}, {}
    labels = [label for entry in few for label in entry.labels]
    semantic = _by_doc(catalog, catalog.vector_index.nearest(vector, depth, labels))
    return semantic, dict(catalog.lexical.search(query, depth, [entry.doc for entry in few]))


def _few_admitted(catalog: Catalog, allowed: RecallFilter | None) -> list[Entry] | None:
    """Every memory the filter admits, when its tags leave few (see EXACT_TAGGED); else None."""
    if allowed is None:
        return None
    tagged = catalog.tagged(allowed.tags, EXACT_TAGGED)
    return None if tagged is None else [entry for entry in tagged if allowed(entry)]


def _semantic(
    catalog: Catalog, vector: np.ndarray, allowed: RecallFilter | None, depth: int
) -> dict[int, float]:
    """Doc ids by their best chunk's similarity, with that similarity (a dict keeps rank order and gives
    O(1) membership)."""
    return _by_doc(catalog, catalog.vector_index.search(vector, depth, _label_filter(catalog, allowed)))


def _by_doc(catalog: Catalog, nearest: list[tuple[int, float]]) -> dict[int, float]:
    """Chunks best first → their memories, each at its best chunk's place and similarity."""
    found: dict[int, float] = {}
    for label, similarity in nearest:
        entry = catalog.by_label(label)
        if entry is not None:
            found.setdefault(entry.doc, similarity)
    return found


def _label_filter(catalog: Catalog, allowed: RecallFilter | None) -> Callable[[int], bool] | None:
    """The filter as the graph search calls it, once per node it visits (hundreds per query): with no filter,
    no call at all; with a scope filter alone, one Python call of two lookups."""
    if allowed is None:
        return None
    entry_of, verdicts = catalog.label_lookup, allowed.scopes
    if allowed.rest is None:

        def scope_allowed(label: int) -> bool:
            entry = entry_of(label)
            return entry is not None and verdicts[entry.memory.scope.path]

        return scope_allowed

    def label_allowed(label: int) -> bool:
        entry = entry_of(label)
        return entry is not None and allowed(entry)

    return label_allowed


def _similarity(catalog: Catalog, entry: Entry, vector: np.ndarray, found: float | None) -> tuple[float, int]:
    """The cosine similarity of the entry's best chunk, and that chunk's position."""
    if found is not None and len(entry.labels) == 1:  # the graph search measured it already
        return found, 0
    if not entry.labels:  # still waiting for vectors after a model change: found by keywords alone
        return 0.0, 0
    similarities = catalog.vector_index.vectors(entry.labels) @ vector
    best = int(similarities.argmax())
    return float(similarities[best]), best


def _keyword(
    catalog: Catalog, query: str, allowed: RecallFilter | None, depth: int
) -> dict[int, float]:
    """Keyword candidates passing the filters. Every fetch scores every match again, so the first one is
    as deep as the filter's share of memories suggests, and a deeper one follows only when tags reject more."""
    fetch = depth if allowed is None else _filtered_depth(catalog, allowed, depth)
    while fetch:
        rows = catalog.lexical.search(query, fetch)
        found: dict[int, float] = {}
        for doc, score in rows:
            entry = catalog.by_doc(doc)
            if entry is not None and (allowed is None or allowed(entry)):
                found[doc] = score
                if len(found) >= depth:
                    return found
        if len(rows) < fetch:
            return found
        fetch *= 8
    return {}  # no memory in any scope the filter admits


def _filtered_depth(catalog: Catalog, allowed: RecallFilter, depth: int) -> int:
    """How many keyword rows to fetch for `depth` of them to pass the scope filter, with a margin (0: no
    memory is in a scope it admits)."""
    counts = catalog.scope_counts()
    total = sum(counts.values())
    admitted = sum(count for scope, count in counts.items() if allowed.scopes[scope])
    return 0 if admitted == 0 else min(total, math.ceil(FETCH_MARGIN * depth * total / admitted))


def snippet(content: str, terms: list[str], best_chunk: int, chunks: int) -> tuple[str, bool]:
    """About SNIPPET_CHARS of `content` around the densest run of query words (or the best chunk)."""
    if len(content) <= SNIPPET_CHARS:
        return content, False
    start = _densest_window(content.lower(), [t for t in terms if len(t) > 1])
    if start is None:
        start = len(content) * best_chunk // max(chunks, 1)
    start = max(0, min(start - SNIPPET_CHARS // 4, len(content) - SNIPPET_CHARS))
    if start > 0:
        space = content.find(" ", start, start + 40)
        start = space + 1 if space >= 0 else start
    end = min(len(content), start + SNIPPET_CHARS)
    if end < len(content):
        space = content.rfind(" ", end - 40, end)
        end = space if space > start else end
    text = content[start:end].strip()
    return f"{'…' if start > 0 else ''}{text}{'…' if end < len(content) else ''}", True


def _densest_window(lowered: str, terms: list[str]) -> int | None:
    """Start of the window holding the most distinct query words, or None when none occurs."""
    positions: list[tuple[int, str]] = []
    for term in terms:
        at = lowered.find(term)
        while at >= 0 and len(positions) < 2000:
            positions.append((at, term))
            at = lowered.find(term, at + 1)
    if not positions:
        return None
    positions.sort()
    best_start, best_count, left = positions[0][0], 0, 0
    for right in range(len(positions)):
        while positions[right][0] - positions[left][0] > SNIPPET_CHARS // 2:
            left += 1
        count = len({term for _, term in positions[left : right + 1]})
        if count > best_count:
            best_start, best_count = positions[left][0], count
    return best_start
