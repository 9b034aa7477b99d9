"""The quality baselines' arithmetic: BM25 scores, exact cosine over chunks, fusion and the metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import quality


def test_metrics_count_the_first_relevant_rank():
    rankings = [[7, 1, 2], [3, 4, 5, 6, 9, 8], [1, 2, 3], list(range(20, 40))]
    relevant = [{7}, {9, 5}, {42}, {31}]
    scores = quality.metrics(rankings, relevant)
    # ranks of the first relevant: 1, 3, none, 12 (beyond MRR@10's cut)
    assert scores == {
        "r_at_1": 0.25,
        "r_at_5": 0.5,
        "mrr_at_10": round((1 + 1 / 3) / 4, 3),
    }


def test_bm25_matches_the_okapi_formula():
    texts = ["apple banana apple", "banana cherry", "cherry cherry cherry date"]
    bm25 = quality.BM25(texts)
    lengths = [3, 2, 4]
    average = sum(lengths) / 3

    def term(tf: int, df: int, length: int) -> float:
        idf = math.log(1 + (3 - df + 0.5) / (df + 0.5))
        norm = quality.K1 * (1 - quality.B + quality.B * length / average)
        return idf * tf * (quality.K1 + 1) / (tf + norm)

    expected = [term(2, 1, 3) + term(1, 2, 3), term(1, 2, 2), 0.0]
    assert bm25.scores("Apple, BANANA!") == pytest.approx(expected)
    assert bm25.ranking("apple banana") == [0, 1]
    assert bm25.ranking("unknown words") == []


def test_cosine_scores_a_memory_by_its_best_chunk():
    vectors = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.6, 0.8]), np.array([[-1.0, 0.0]])]
    cosine = quality.Cosine(vectors)
    scores = cosine.scores(np.array([0.0, 2.0]))
    assert scores == pytest.approx([1.0, 0.8, 0.0])
    assert cosine.ranking(np.array([0.0, 2.0])) == [0, 1, 2]
    assert cosine.ranking(np.array([-3.0, 0.0]), depth=1) == [2]


def test_rrf_adds_reciprocal_ranks_and_breaks_ties_by_document():
    assert quality.RRF_K == 60
    assert quality.rrf([1, 2, 3], [3, 1, 4]) == [1, 3, 2, 4]  # 1/61+1/62, 1/63+1/61, 1/62, 1/63
    assert quality.rrf([5], [6]) == [5, 6]  # equal sums: the lower document first


def test_beating_the_baselines_means_strictly_more_than_the_best():
    row = {"r_at_1": 0.5, "r_at_5": 0.8, "mrr_at_10": 0.6}
    scores = {"recall": row, "bm25": {**row, "r_at_5": 0.7}, "vector": {**row, "mrr_at_10": 0.5}, "rrf": row}
    assert quality.beats_baselines(scores) == {"r_at_5": False, "mrr_at_10": False}
    scores["recall"] = {**row, "r_at_5": 0.81, "mrr_at_10": 0.61}
    assert quality.beats_baselines(scores) == {"r_at_5": True, "mrr_at_10": True}


def test_evaluate_runs_every_method_on_the_same_queries():
    texts = ["red apple pie", "green pear tart", "blue plum jam"]
    vectors = [np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])]
    result = quality.evaluate(
        texts, vectors, ["apple", "plum"], [np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])],
        [{0}, {2}], recall=lambda query: [2, 1, 0],
    )
    assert result["bm25"]["r_at_1"] == 1.0  # both words match their text only
    assert result["vector"]["r_at_1"] == 0.5  # the first query vector points at the pear
    assert result["recall"]["mrr_at_10"] == round((1 / 3 + 1) / 2, 3)
    assert set(result) == {"recall", "bm25", "vector", "rrf", "rrf_40"}


def test_known_item_queries_name_a_memorys_topic_and_words_of_its_own():
    import corpora
    import diagnose

    corpus = diagnose.known_items(corpora.generated(40, None))
    assert len(corpus.queries) == len(corpus.relevant) == 40
    for query, relevant in zip(corpus.queries, corpus.relevant, strict=True):
        (position,) = relevant
        memory = corpus.memories[position]
        topic, about = query.removeprefix("what did the ").split(" team say about ")
        assert topic == memory.name.split("/")[0]
        assert set(about.split()) <= set(quality.words(memory.content))
