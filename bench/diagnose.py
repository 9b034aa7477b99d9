"""Quality diagnosis, no timing: which of the server's two rankings costs `recall` its quality against the
bench's RRF of plain BM25 and exact cosine.

    .venv/bin/python bench/diagnose.py --model MODEL.gguf [--corpus debian|generated] [--sizes 1000,10000]
                                       [--reuse] [--out FILE]

For one imported corpus per size (built like `run.py` builds it, in the same temporary directory, so
`--reuse` here and there share corpora; set TMPDIR to keep them elsewhere) it scores, over the same queries:
the server's `recall`; the bench's baselines; and the bench's RRF with the server's own rankings put in
one at a time: its vector candidates (hnswlib graph search) for exact cosine, its keyword candidates (FTS5)
for the bench's BM25, both, at the depth recall fuses (`search.depth(10)`) and at the baselines' 100.

The generated corpus has no ground truth, so here it gets known-item queries: a memory's topic and three
words drawn from its own text, in the shape of the bench's generated queries; that memory is the relevant one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import corpora
import inside
import quality
import run

from memory_mcp.bootstrap import build_service
from memory_mcp.config import load_settings

KNOWN_ITEMS = 300


def known_items(corpus: corpora.Corpus, seed: int = 5) -> corpora.Corpus:
    """The corpus with queries whose answer is known: each names a memory's topic and three of its words."""
    rng = random.Random(seed)
    step = max(1, len(corpus.memories) // KNOWN_ITEMS)
    chosen = list(range(0, len(corpus.memories), step))[:KNOWN_ITEMS]
    queries = []
    for i in chosen:
        memory = corpus.memories[i]
        words = [w for w in quality.words(memory.content) if w not in {"the", "team", "noted", "that"}]
        topic = memory.name.split("/")[0]
        about = " ".join(rng.sample(words, min(3, len(words))))
        queries.append(f"what did the {topic} team say about {about}")
    return corpora.Corpus(corpus.label, corpus.memories, queries, [{i} for i in chosen], [], corpus.folder)


def imported(corpus: corpora.Corpus, model: Path, reuse: bool) -> tuple[Any, Path]:
    """The service over the corpus, imported unless `reuse` found an earlier run's."""
    root, reused = run._root(corpus.label, len(corpus.memories), reuse)
    env = {
        **os.environ,
        "MEMORY_MCP_REPO_PATH": str(root / "repo"),
        "MEMORY_MCP_CACHE_DIR": str(root / "cache"),
        "MEMORY_MCP_MODEL": str(model),
        "MEMORY_MCP_LOG_LEVEL": "WARNING",
    }
    service = build_service(load_settings({}, env))
    if not reused:
        for start in range(0, len(corpus.memories), run.IMPORT_SLICE):
            part = corpus.memories[start : start + run.IMPORT_SLICE]
            service.save_many(part, message=f"bench import {start}")
            print(f"  imported {start + len(part)}/{len(corpus.memories)}", file=sys.stderr, flush=True)
    return service, root


def diagnose(
    service: Any, corpus: corpora.Corpus
) -> tuple[dict[str, dict[str, float]], dict[str, list[int | None]]]:
    """Every method's R@1, R@5 and MRR@10 over the corpus's queries, and each query's rank of its first
    relevant memory by each method (None: not in the top 10)."""
    if corpus.relevant is None:
        raise SystemExit(f"the {corpus.label} corpus has no ground truth: see known_items")
    position = {m.name: i for i, m in enumerate(corpus.memories)}
    bm25 = quality.BM25([m.embedding_text() for m in corpus.memories])
    cosine = quality.Cosine(inside.memory_vectors(service, corpus.memories))
    served_depth = inside.fused_depth(quality.TOP)

    def positions(names: list[str]) -> list[int]:
        return [position[name] for name in names if name in position]

    rankings: dict[str, list[list[int]]] = {}

    def add(method: str, ranking: list[int]) -> None:
        rankings.setdefault(method, []).append(ranking)

    for query in corpus.queries:
        vector = inside.query_vector(service, query)
        hits = service.recall(query, scope="all", limit=quality.TOP)
        add("recall", [position[h.entry.memory.name] for h in hits if h.entry.memory.name in position])
        lexical, semantic = bm25.ranking(query), cosine.ranking(vector)
        graph, fts = map(positions, inside.candidates(service, query, vector, quality.FUSION_DEPTH))
        add("bm25", lexical)
        add("vector", semantic)
        add("server vector (hnsw)", graph)
        add("server keyword (fts5)", fts)
        for depth in (served_depth, quality.FUSION_DEPTH):
            add(f"rrf@{depth}: bm25 + cosine", quality.rrf(lexical[:depth], semantic[:depth]))
            add(f"rrf@{depth}: bm25 + hnsw", quality.rrf(lexical[:depth], graph[:depth]))
            add(f"rrf@{depth}: fts5 + cosine", quality.rrf(fts[:depth], semantic[:depth]))
            add(f"rrf@{depth}: fts5 + hnsw", quality.rrf(fts[:depth], graph[:depth]))
    scores = {method: quality.metrics(found, corpus.relevant) for method, found in rankings.items()}
    return scores, {method: _first_relevant(found, corpus.relevant) for method, found in rankings.items()}


def _first_relevant(rankings: list[list[int]], relevant: list[set[int]]) -> list[int | None]:
    return [
        next((i + 1 for i, doc in enumerate(ranking[: quality.TOP]) if doc in wanted), None)
        for ranking, wanted in zip(rankings, relevant, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=os.environ.get("MEMORY_MCP_MODEL"))
    parser.add_argument("--corpus", default="debian", choices=("debian", "generated"))
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.model is None:
        parser.error("give --model or set MEMORY_MCP_MODEL")
    results = []
    for size in args.sizes.split(","):
        if args.corpus == "debian":
            corpus = corpora.debian(None if size == "full" else int(size))
        else:
            corpus = known_items(corpora.generated(int(size), None))
        service, root = imported(corpus, args.model, args.reuse)
        try:
            started = time.strftime("%H:%M")
            scores, ranks = diagnose(service, corpus)
        finally:
            service.close()
        results.append(
            {
                "corpus": corpus.label,
                "memories": len(corpus.memories),
                "dir": str(root),
                "started": started,
                "load_average": os.getloadavg(),
                "scores": scores,
                "queries": corpus.queries,
                "ranks": ranks,
            }
        )
        print(f"\n[{corpus.label} {len(corpus.memories)}] {root} load {os.getloadavg()}")
        for method, row in scores.items():
            print(f"  {method:28} {row['r_at_1']:.3f} / {row['r_at_5']:.3f} / {row['mrr_at_10']:.3f}")
        if args.out:
            args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
