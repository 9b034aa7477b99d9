"""The bench's corpora as it measures them: Debian's package descriptions (real text, with queries and their
relevant memories) and the generated one, each with texts kept out of it for timing `remember`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import corpus_debian
import corpus_generated

from memory_mcp.core import Memory, Scope

QUALITY_QUERIES = 1000
"""Queries scored for quality (at 1k: every record's). With 300, the 1k margins were one or two queries, less
than the sample's own error (bench/RESULTS.md, round 7)."""
TIMED_QUERIES = 300
"""Of them, the ones every latency figure is timed with."""
FRESH = 400
"""Debian records kept out of every sample: the texts remember is timed with."""
STAMP = time.strftime("%Y%m%d%H%M%S")
"""Part of the names this run writes, so a run on an earlier run's corpus (--reuse) writes new memories (and
their texts, names included, are not in the embedding cache)."""


@dataclass(frozen=True)
class Corpus:
    label: str
    memories: list[Memory]
    queries: list[str]
    relevant: list[set[int]] | None
    """Per query, the positions in `memories` of the ones it should find; None: no ground truth."""
    fresh: list[str]
    """Texts not in the corpus, for timing remember."""
    folder: str
    """Where remembered memories go: the corpus's own folder for Debian (one folder of `size` files)."""

    @property
    def timed_queries(self) -> list[str]:
        return self.queries[:TIMED_QUERIES]


def debian(size: int | None) -> Corpus:
    """`size` records of Debian's descriptions (None: all but the FRESH kept out), with QUALITY_QUERIES of
    their short descriptions, evenly spread, as the queries."""
    records = corpus_debian.shuffled(corpus_debian.load())
    pool, fresh = records[:-FRESH], records[-FRESH:]
    sample = pool if size is None else pool[:size]
    if size is not None and len(sample) < size:
        raise SystemExit(f"Debian's lists hold {len(pool)} unique texts (after {FRESH} kept out), not {size}")
    memories = [
        Memory(name=corpus_debian.name(i), scope=Scope(""), content=r.text) for i, r in enumerate(sample)
    ]
    by_query: dict[str, set[int]] = {}
    for i, record in enumerate(sample):
        by_query.setdefault(record.query, set()).add(i)
    step = max(1, len(sample) // QUALITY_QUERIES)
    queries = [sample[i].query for i in range(0, len(sample), step)][:QUALITY_QUERIES]
    relevant = [by_query[q] for q in queries]
    return Corpus("debian", memories, queries, relevant, [r.text for r in fresh], "debian")


def generated(size: int, directory: Path | None) -> Corpus:
    fresh = [f"A fresh note number {i} about {corpus_generated.WORDS[i % 40]}." for i in range(FRESH)]
    memories = corpus_generated.corpus(size, directory=directory)
    return Corpus("generated", memories, corpus_generated.queries(200), None, fresh, "bench")


def fresh_memory(corpus: Corpus, i: int, kind: str) -> Memory:
    """A memory not in the corpus, named for this run; its text is a kept-out one."""
    name = f"{corpus.folder}/{kind}-{STAMP}-{i}"
    return Memory(name=name, scope=Scope(""), content=corpus.fresh[i % len(corpus.fresh)])
