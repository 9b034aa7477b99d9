"""Snippets, the keyword index, the vector index and the catalog, with small random vectors (no model)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from memory_mcp.core import lexical_index, search
from memory_mcp.core.catalog import Catalog
from memory_mcp.core.checks import recall_filter
from memory_mcp.core.derived_store import DerivedStore
from memory_mcp.core.layout import memory_path
from memory_mcp.core.lexical_index import LexicalIndex, query_terms
from memory_mcp.core.model import FULL_ACCESS, Access, Memory, Scope, ScopeFilter
from memory_mcp.core.search import SNIPPET_CHARS, rank, snippet
from memory_mcp.core.vector_index import VectorIndex

DIM = 16


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _filler(words: int, start: int = 0) -> str:
    return " ".join(f"filler{i}" for i in range(start, start + words))


# ---------------------------------------------------------------- snippet


def test_snippet_short_content_is_whole() -> None:
    assert snippet("short note about rust", ["rust"], 0, 1) == ("short note about rust", False)
    exact = "x" * SNIPPET_CHARS
    assert snippet(exact, ["x"], 0, 1) == (exact, False)


def test_snippet_window_contains_query_words_in_the_middle() -> None:
    content = f"{_filler(400)} the needle sits in the haystack here {_filler(400, 400)}"
    text, truncated = snippet(content, ["needle", "haystack"], 0, 1)
    assert truncated
    assert "needle" in text and "haystack" in text
    assert text.startswith("…") and text.endswith("…")
    assert len(text) <= SNIPPET_CHARS + 2
    assert len(text) > SNIPPET_CHARS // 2
    # the window starts and ends on word boundaries
    assert text[1:].split(" ")[0].startswith("filler") and text[1:].split(" ")[0] in content.split(" ")
    assert text[:-1].split(" ")[-1] in content.split(" ")
    assert text.strip("…") in content


def test_snippet_prefers_the_densest_cluster() -> None:
    lone = "alpha"
    cluster = "alpha beta gamma"
    content = f"{lone} {_filler(300)} {cluster} {_filler(300, 300)}"
    text, _ = snippet(content, ["alpha", "beta", "gamma"], 0, 1)
    assert "alpha beta gamma" in text
    assert not text.startswith("alpha filler0")


def test_snippet_at_the_start_has_no_leading_ellipsis() -> None:
    content = f"needle first {_filler(500)}"
    text, truncated = snippet(content, ["needle"], 0, 1)
    assert truncated
    assert text.startswith("needle first")
    assert text.endswith("…")


def test_snippet_at_the_end_has_no_trailing_ellipsis() -> None:
    content = f"{_filler(500)} ends with needle"
    text, truncated = snippet(content, ["needle"], 0, 1)
    assert truncated
    assert text.startswith("…")
    assert text.endswith("ends with needle")


def test_snippet_is_case_insensitive() -> None:
    content = f"{_filler(300)} NeEdLe {_filler(300, 300)}"
    text, _ = snippet(content, ["needle"], 0, 1)
    assert "NeEdLe" in text


def test_snippet_without_matches_uses_the_best_chunk() -> None:
    content = " ".join(f"w{i:04d}" for i in range(1000))  # 5999 chars
    text, truncated = snippet(content, ["absent"], 3, 4)
    assert truncated
    first = int(text.lstrip("…").split()[0][1:])
    assert 650 <= first <= 800  # around 3/4 of the text, shifted back a little
    head, _ = snippet(content, ["absent"], 0, 4)
    assert head.startswith("w0000")


def test_snippet_ignores_single_letter_terms() -> None:
    content = f"{_filler(400)} needle {_filler(400, 400)}"
    text, _ = snippet(content, ["a", "e", "needle"], 0, 1)
    assert "needle" in text


def test_snippet_without_spaces() -> None:
    content = "x" * 2000 + "needle" + "y" * 2000
    text, truncated = snippet(content, ["needle"], 0, 1)
    assert truncated and "needle" in text
    assert len(text) == SNIPPET_CHARS + 2


# ---------------------------------------------------------------- lexical index


def test_query_terms() -> None:
    assert query_terms("Rust, rust! ASYNC—tokio?") == ["rust", "async", "tokio"]
    assert query_terms("!!! ... ---") == []
    assert query_terms("café naïve") == ["café", "naïve"]
    assert query_terms("ROS collada_urdf") == ["ros", "collada", "urdf"], "the tokenizer splits at _ too"


def test_a_word_with_an_underscore_finds_its_parts_anywhere(lexical: LexicalIndex) -> None:
    lexical.put(1, "x", "", "converts URDF documents into COLLADA documents")
    lexical.put(2, "y", "", "a collada viewer")
    found = lexical.search("collada_urdf tool", 100)
    assert [doc for doc, _ in found] == [1, 2], "both parts outrank one; neither needs the other beside it"


def test_query_terms_drop_stopwords_unless_nothing_is_left() -> None:
    assert query_terms("what is the rust borrow checker") == ["rust", "borrow", "checker"]
    assert query_terms("The Rust") == ["rust"]
    assert query_terms("the of and") == ["the", "of", "and"]  # all stopwords: keep them rather than nothing


def test_stopwords_are_not_evidence() -> None:
    index = LexicalIndex()
    index.put(1, "their plans", "", "what they said about their other things")
    index.put(2, "borrow checker", "", "lifetimes")
    assert [doc for doc, _ in index.search("what is their borrow checker", 10)] == [2]
    assert [doc for doc, _ in index.search("their", 10)] == [1]


@pytest.fixture
def lexical() -> LexicalIndex:
    index = LexicalIndex()
    # a corpus big enough that BM25's idf is meaningful
    for doc in range(10, 30):
        index.put(doc, f"note {doc}", "misc", f"some unrelated text number {doc} about gardening and cooking")
    return index


def test_name_match_ranks_above_content_match(lexical: LexicalIndex) -> None:
    lexical.put(1, "other topic", "", "we once talked about kubernetes in passing here")
    lexical.put(2, "kubernetes tips", "", "deploying things to a cluster")
    assert [doc for doc, _ in lexical.search("kubernetes", 100)][:2] == [2, 1]


def test_tag_match_ranks_above_content_match(lexical: LexicalIndex) -> None:
    lexical.put(1, "a", "", "mentions terraform somewhere in the content")
    lexical.put(2, "b", "terraform", "infrastructure as code notes")
    assert [doc for doc, _ in lexical.search("terraform", 100)] == [2, 1]


def test_scores_are_descending_and_higher_is_better(lexical: LexicalIndex) -> None:
    lexical.put(1, "rust", "rust", "rust rust rust")
    lexical.put(2, "x", "", "rust mentioned once among many other words in a long sentence")
    results = list(lexical.search("rust", 100))
    assert [doc for doc, _ in results] == [1, 2]
    assert results[0][1] > results[1][1] > 0


def test_any_query_word_matches(lexical: LexicalIndex) -> None:
    lexical.put(1, "alpha", "", "x")
    lexical.put(2, "beta", "", "y")
    assert {doc for doc, _ in lexical.search("alpha beta zzz", 100)} == {1, 2}


def test_stemming_and_diacritics(lexical: LexicalIndex) -> None:
    lexical.put(1, "x", "", "running the café")
    assert [doc for doc, _ in lexical.search("run", 100)] == [1]
    assert [doc for doc, _ in lexical.search("cafe", 100)] == [1]


@pytest.mark.parametrize(
    "query",
    ["!!!", "...", "-", "*", '"', "'", "()", "^", "_", "___", "?", "\u0301", "²", "   "],
)
def test_punctuation_only_queries_return_nothing(lexical: LexicalIndex, query: str) -> None:
    assert list(lexical.search(query, 100)) == []


@pytest.mark.parametrize(
    "query",
    ['rust" OR', "rust AND", "NEAR(rust tokio)", "name:rust", "rust*", "-rust", "rust^", '"rust"', "(rust"]
    + ["rust)", "rust NOT tokio", "{name}: rust", "rust + tokio"],
)
def test_fts_syntax_is_not_interpreted(lexical: LexicalIndex, query: str) -> None:
    lexical.put(1, "rust", "", "tokio")
    assert [doc for doc, _ in lexical.search(query, 100)][:1] == [1]


def test_remove_forgets_the_document_and_its_words(lexical: LexicalIndex) -> None:
    lexical.put(1, "elephant notes", "zoo", "a giraffe and an elephant")
    lexical.put(2, "other", "", "a giraffe alone")
    lexical.remove(1, "elephant notes", "zoo", "a giraffe and an elephant")
    assert list(lexical.search("elephant", 100)) == []
    assert list(lexical.search("zoo", 100)) == []
    assert [doc for doc, _ in lexical.search("giraffe", 100)] == [2]
    lexical.remove(1, "elephant notes", "zoo", "a giraffe and an elephant")  # removing twice is harmless
    assert [doc for doc, _ in lexical.search("giraffe", 100)] == [2]


def test_the_index_keeps_no_copy_of_the_text(lexical: LexicalIndex) -> None:
    lexical.put(1, "name", "", "a sentence of content")
    tables = {name for (name,) in lexical._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "docs_content" not in tables


def test_words_in_most_documents_are_not_searched() -> None:
    index = LexicalIndex()
    for doc in range(1, 41):
        index.put(doc, f"note {doc}", "", f"the common word appears everywhere; item {doc}")
    index.put(41, "rare", "", "the common word and the zebra")
    assert [doc for doc, _ in index.search("common zebra", 100)] == [41]
    assert len(index.search("common", 100)) == 41, "a query of common words alone still searches"
    for doc in range(1, 30):
        index.remove(doc, f"note {doc}", "", f"the common word appears everywhere; item {doc}")
    assert len(index.search("common zebra", 100)) == 12, "counts follow removals: too few documents to prune"


def test_rare_words_are_ranked_and_common_ones_fill_up_unscored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical_index, "RARE_BUDGET", 20)
    index = LexicalIndex()
    for doc in range(1, 201):
        words = ["alpha"] if doc <= 40 else []
        words += ["zebra"] if doc % 15 == 0 else []
        index.put(doc, f"note {doc}", "", " ".join(["filler text", *words]))
    zebras = {doc for doc in range(1, 201) if doc % 15 == 0}
    ranked = index.search("alpha zebra", 10)
    assert len(ranked) == 10 and {doc for doc, _ in ranked} <= zebras
    assert all(score > 0 for _, score in ranked)
    filled = index.search("alpha zebra", 30)
    assert {doc for doc, _ in filled[: len(zebras)]} == zebras, "the rare word's matches come first"
    newest_alphas = [doc for doc in range(40, 0, -1) if doc not in zebras][: 30 - len(zebras)]
    assert filled[len(zebras) :] == [(doc, 0.0) for doc in newest_alphas]
    assert index.search("alpha", 5) == [(doc, 0.0) for doc in (40, 39, 38, 37, 36)], "too common to score"


def test_memories_with_a_rare_word_are_scored_by_the_common_words_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beyond the budget a common word finds no memory on its own, yet still counts in the score of the
    memories the rare words found: exactly as much as BM25 over every word gives it."""
    index = LexicalIndex()
    for doc in range(1, 201):
        words = (["library"] if doc <= 45 else []) + (["screen screen"] if doc % 10 == 0 else [])
        index.put(doc, f"note {doc}", "", " ".join(["filler text", *words]))
    unbounded = index.search("screen library", 10)
    monkeypatch.setattr(lexical_index, "RARE_BUDGET", 30)  # screen (20 memories) fits, library (45) does not
    bounded = index.search("screen library", 10)
    assert [doc for doc, _ in bounded[:4]] == [10, 20, 30, 40], "screen and library beat screen alone"
    assert [doc for doc, _ in bounded] == [doc for doc, _ in unbounded]
    assert [score for _, score in bounded] == pytest.approx([score for _, score in unbounded])


def _overlapping(index: LexicalIndex) -> set[int]:
    """Of 400 docs, alpha in 1-60 and beta in 41-120: each beyond a budget of 30 (and not too common to
    search), both together in 20 docs."""
    for doc in range(1, 401):
        words = (["alpha"] if doc <= 60 else []) + (["beta"] if 41 <= doc <= 120 else [])
        words += ["alpha beta"] if doc % 7 == 0 and 41 <= doc <= 60 else []
        index.put(doc, f"note {doc}", "", " ".join(["filler text", *words]))
    return set(range(41, 61))


def test_words_each_beyond_the_budget_are_ranked_where_they_meet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every word in more memories than the budget: the memories holding the rarest words together are
    ranked by BM25, as the unbounded search ranks them, instead of the newest holders of any, unscored."""
    index = LexicalIndex()
    both = _overlapping(index)
    unbounded = index.search("alpha beta", 10)
    monkeypatch.setattr(lexical_index, "RARE_BUDGET", 30)
    bounded = index.search("alpha beta", 10)
    assert {doc for doc, _ in bounded} <= both and all(score > 0 for _, score in bounded)
    assert [doc for doc, _ in bounded[:3]] == [42, 49, 56], "the memories saying both twice come first"
    assert [score for _, score in bounded] == pytest.approx([score for _, score in unbounded])
    filled = index.search("alpha beta", 30)
    assert {doc for doc, _ in filled[:20]} == both
    assert filled[20:] == [(doc, 0.0) for doc in range(120, 110, -1)], "then the newest, unscored"
    monkeypatch.setattr(lexical_index, "RARE_BUDGET", 10)  # even both together are beyond it
    assert index.search("alpha beta", 5) == [(doc, 0.0) for doc in range(120, 115, -1)]


def test_a_word_no_memory_holds_leaves_the_ranking_to_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown word matches nothing: taken for the rarest, it left every memory unscored."""
    index = LexicalIndex()
    _overlapping(index)
    monkeypatch.setattr(lexical_index, "RARE_BUDGET", 30)
    ranked = index.search("qwzxv alpha beta", 10)
    assert ranked == index.search("alpha beta", 10) and all(score > 0 for _, score in ranked)
    assert index.search("qwzxv", 10) == []
    assert [doc for doc, _ in index.search("qwzxv beta", 3)] == [120, 119, 118]


def test_search_respects_the_limit(lexical: LexicalIndex) -> None:
    everything = lexical.search("gardening", 100)
    assert len(everything) == 20
    assert lexical.search("gardening", 5) == everything[:5]


def test_an_index_in_a_store_reopens_with_its_word_counts(tmp_path: Path) -> None:
    """The index lives in the derived store's file: a new process reads it in place, counts included."""
    store = DerivedStore.open(tmp_path / "derived.sqlite")
    index = LexicalIndex(store)
    with store.transaction():
        for doc in range(1, 41):
            index.put(doc, f"note {doc}", "", f"the common word appears everywhere; item {doc}")
        index.put(41, "rare", "", "the common word and the zebra")
        index.remove(7, "note 7", "", "the common word appears everywhere; item 7")
    expected = index.search("zebra item 9", 100)
    store.close()
    reopened = DerivedStore.open(tmp_path / "derived.sqlite")
    copy = LexicalIndex(reopened)
    assert [doc for doc, _ in copy.search("common zebra", 100)] == [41], "the counts that prune common words"
    assert copy.search("zebra item 9", 100) == expected
    with reopened.transaction():
        copy.put(42, "zebra crossing", "", "stripes")
    assert [doc for doc, _ in copy.search("zebra", 10)] == [42, 41]
    reopened.close()


def test_word_counts_stay_exact_for_stemmed_words() -> None:
    """Counts are cached per token once a query used them, and follow every later change of the index."""
    index = LexicalIndex()
    for doc in range(1, 21):
        index.put(doc, f"note {doc}", "", "filler")
    index.put(21, "runner", "", "running every day")
    assert index._document_counts(["runs"]) == ({"runs": 1}, 21)
    index.put(22, "jog", "", "she runs")
    index.put(23, "walk", "", "no match here")
    assert index._document_counts(["run", "runs"])[0] == {"run": 2, "runs": 2}
    index.remove(21, "runner", "", "running every day")
    assert index._document_counts(["running"]) == ({"running": 1}, 22)


# ---------------------------------------------------------------- vector index


def test_vector_index_add_search_remove() -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 20)
    index = VectorIndex(DIM)
    index.add(list(range(1, 21)), vectors)
    assert len(index) == 20
    results = index.search(vectors[4], 5)
    assert len(results) == 5
    assert results[0][0] == 5
    assert results[0][1] == pytest.approx(1.0, abs=1e-5)
    similarities = [s for _, s in results]
    assert similarities == sorted(similarities, reverse=True)
    expected = (vectors @ vectors[4]).argsort()[::-1][:5] + 1
    assert [label for label, _ in results] == list(expected)

    index.remove([5, 6])
    assert len(index) == 18
    assert 5 not in {label for label, _ in index.search(vectors[4], 20)}
    assert len(index.search(vectors[4], 100)) == 18
    index.remove([5, 999])  # unknown or already removed labels are ignored
    assert len(index) == 18


def test_vector_index_similarity_is_cosine() -> None:
    index = VectorIndex(3)
    index.add([1, 2, 3], np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0]], dtype=np.float32))
    results = dict(index.search(np.array([1, 0, 0], dtype=np.float32), 3))
    assert results[1] == pytest.approx(1.0, abs=1e-6)
    assert results[2] == pytest.approx(0.0, abs=1e-6)
    assert results[3] == pytest.approx(-1.0, abs=1e-6)


def test_vector_index_filter() -> None:
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 30)
    index = VectorIndex(DIM)
    index.add(list(range(1, 31)), vectors)
    even = index.search(vectors[0], 5, lambda label: label % 2 == 0)
    assert len(even) == 5
    assert all(label % 2 == 0 for label, _ in even)
    assert index.search(vectors[0], 5, lambda label: False) == []


def test_vector_index_empty() -> None:
    index = VectorIndex(DIM)
    assert index.search(np.ones(DIM, dtype=np.float32), 10) == []
    index.add([], np.zeros((0, DIM), dtype=np.float32))
    assert len(index) == 0


def test_vector_index_k_larger_than_population() -> None:
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 7)
    index = VectorIndex(DIM)
    index.add(list(range(1, 8)), vectors)
    assert sorted(label for label, _ in index.search(vectors[0], 50)) == list(range(1, 8))


@pytest.mark.parametrize("allowed_count", [3, 7, 30])
def test_vector_index_k_larger_than_filtered_population(allowed_count: int) -> None:
    rng = np.random.default_rng(4)
    vectors = _unit(rng, 100)
    index = VectorIndex(DIM)
    index.add(list(range(1, 101)), vectors)
    allowed = set(range(1, allowed_count + 1))
    results = index.search(vectors[0], 40, allowed.__contains__)
    assert {label for label, _ in results} == allowed


def test_vector_index_grows_past_capacity() -> None:
    rng = np.random.default_rng(5)
    vectors = _unit(rng, 50)
    index = VectorIndex(DIM, capacity=16)
    for start in range(0, 50, 10):
        index.add(list(range(start + 1, start + 11)), vectors[start : start + 10])
    assert len(index) == 50
    assert index.search(vectors[42], 1)[0][0] == 43
    assert np.allclose(index.vectors([43])[0], vectors[42], atol=1e-6)


def test_vector_index_reuses_deleted_slots() -> None:
    rng = np.random.default_rng(6)
    vectors = _unit(rng, 40)
    index = VectorIndex(DIM, capacity=16)
    index.add(list(range(1, 21)), vectors[:20])
    index.remove(list(range(1, 21)))
    index.add(list(range(21, 41)), vectors[20:])
    assert len(index) == 20
    found = {label for label, _ in index.search(vectors[25], 40)}
    assert found == set(range(21, 41))
    assert index.search(vectors[25], 1)[0][0] == 26


def test_vector_index_vectors_returns_normalised_items() -> None:
    index = VectorIndex(2)
    index.add([7], np.array([[3.0, 4.0]], dtype=np.float32))
    assert np.allclose(index.vectors([7]), [[0.6, 0.8]], atol=1e-6)


def test_vectors_added_while_frozen_are_found_and_absorbed_after(tmp_path: Path) -> None:
    """A save reads a still graph: adds wait beside it (searched exactly), removals wait until it thaws."""
    rng = np.random.default_rng(8)
    vectors = _unit(rng, 30)
    index = VectorIndex(DIM)
    index.add(list(range(1, 21)), vectors[:20])
    index.freeze()
    index.add(list(range(21, 31)), vectors[20:])
    index.remove([3, 25])
    index.save(str(tmp_path / "graph.hnsw"))
    assert index.search(vectors[22], 1)[0][0] == 23, "a pending vector is found"
    assert 3 not in {label for label, _ in index.search(vectors[2], 30)}, "a removal applies at once"
    assert np.allclose(index.vectors([23, 5]), vectors[[22, 4]], atol=1e-6)
    index.thaw(saved=True)
    assert index.changes == 1 and len(index.pending) == 9
    while index.absorb(2):
        pass
    assert not index.pending and index.changes == 10
    assert index.search(vectors[22], 1)[0][0] == 23 and len(index) == 28


def test_a_saved_graph_loads_with_later_vectors_pending(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    vectors = _unit(rng, 30)
    index = VectorIndex(DIM)
    index.add(list(range(1, 21)), vectors[:20])
    index.save(str(tmp_path / "graph.hnsw"))
    live = set(range(2, 21))  # 1 was removed after the save
    later = {label: vectors[label - 1] for label in range(21, 31)}
    loaded = VectorIndex.load(str(tmp_path / "graph.hnsw"), DIM, live, later)
    assert loaded is not None and len(loaded) == 29 and len(loaded.pending) == 10
    found = {label for label, _ in loaded.search(vectors[0], 30)}
    assert found == live | later.keys(), "the removed label is deleted, the later ones are searched"
    assert VectorIndex.load(str(tmp_path / "graph.hnsw"), DIM, live | {99}, later) is None, "a missing label"


# ---------------------------------------------------------------- catalog


def _mem(name: str, scope: str = "", memory_id: str | None = None, content: str = "text") -> Memory:
    return Memory(name=name, scope=Scope(scope), content=content, id=memory_id or f"id-{scope}-{name}")


def _check_consistent(catalog: Catalog) -> None:
    entries = list(catalog.entries())
    assert len(catalog) == len(entries)
    labels = [label for entry in entries for label in entry.labels]
    assert len(catalog.vector_index) == len(labels) == len(set(labels))
    for entry in entries:
        assert catalog.by_path(entry.path) is entry
        assert catalog.by_id(entry.memory.id) is entry
        assert catalog.by_key(entry.memory.scope, entry.memory.name) is entry
        assert catalog.by_doc(entry.doc) is entry
        for label in entry.labels:
            assert catalog.by_label(label) is entry
    assert [e.sort_key for e in catalog.sorted_after(None)] == sorted(e.sort_key for e in entries)
    assert catalog.scope_counts() == Counter(e.memory.scope.path for e in entries)


def test_catalog_put_and_lookups() -> None:
    rng = np.random.default_rng(7)
    catalog = Catalog(DIM)
    a = catalog.put(_mem("a"), "global/a.md", "v1", _unit(rng, 2))
    b = catalog.put(_mem("b", "org"), "projects/org/b.md", "v2", _unit(rng, 3))
    assert len(catalog) == 2
    assert a.labels == [1, 2] and b.labels == [3, 4, 5]
    assert a.doc != b.doc
    assert catalog.by_key(Scope(), "a") is a
    assert catalog.by_key(Scope("org"), "b") is b
    assert catalog.by_key(Scope("org"), "a") is None
    assert catalog.by_id("id-org-b") is b
    assert catalog.by_label(4) is b
    assert catalog.by_label(99) is None
    assert catalog.by_path("nope") is None
    _check_consistent(catalog)


def test_catalog_put_replaces_same_path() -> None:
    rng = np.random.default_rng(8)
    catalog = Catalog(DIM)
    old = catalog.put(_mem("a", content="elephant"), "global/a.md", "v1", _unit(rng, 2))
    new = catalog.put(_mem("a", content="giraffe"), "global/a.md", "v2", _unit(rng, 1))
    assert len(catalog) == 1
    assert catalog.by_path("global/a.md") is new and new.version == "v2"
    assert catalog.by_doc(old.doc) is None
    assert all(catalog.by_label(label) is None for label in old.labels)
    assert len(catalog.vector_index) == 1
    assert list(catalog.lexical.search("elephant", 100)) == []
    assert [doc for doc, _ in catalog.lexical.search("giraffe", 100)] == [new.doc]
    _check_consistent(catalog)


def test_catalog_remove() -> None:
    rng = np.random.default_rng(9)
    catalog = Catalog(DIM)
    entry = catalog.put(_mem("a", content="elephant"), "global/a.md", "v1", _unit(rng, 2))
    catalog.put(_mem("b"), "global/b.md", "v1", _unit(rng, 1))
    assert catalog.remove("global/a.md") is entry
    assert catalog.remove("global/a.md") is None
    assert catalog.by_id(entry.memory.id) is None
    assert catalog.by_key(Scope(), "a") is None
    assert catalog.by_label(entry.labels[0]) is None
    assert list(catalog.lexical.search("elephant", 100)) == []
    assert len(catalog) == 1
    _check_consistent(catalog)


def test_catalog_move_keeps_id_lookup_on_the_new_path() -> None:
    """A move indexes the new path before removing the old one; the id must stay on the new entry."""
    rng = np.random.default_rng(10)
    catalog = Catalog(DIM)
    catalog.put(_mem("a", memory_id="X"), "global/a.md", "v1", _unit(rng, 1))
    moved = catalog.put(_mem("c", "p", memory_id="X"), "projects/p/c.md", "v1", _unit(rng, 1))
    catalog.remove("global/a.md")
    assert catalog.by_id("X") is moved
    assert catalog.by_key(Scope("p"), "c") is moved
    assert catalog.by_key(Scope(), "a") is None
    _check_consistent(catalog)


def test_catalog_sorted_after() -> None:
    rng = np.random.default_rng(11)
    catalog = Catalog(DIM)
    for scope, name in [("org", "b"), ("", "z"), ("org", "a"), ("", "a"), ("org/sub", "a"), ("abc", "m")]:
        path = f"{scope or 'global'}/{name}.md"
        catalog.put(_mem(name, scope), path, "v", _unit(rng, 1))
    order = [e.sort_key for e in catalog.sorted_after(None)]
    assert order == [("", "a"), ("", "z"), ("abc", "m"), ("org", "a"), ("org", "b"), ("org/sub", "a")]
    assert [e.sort_key for e in catalog.sorted_after(("", "z"))] == order[2:]
    assert [e.sort_key for e in catalog.sorted_after(("org", "a"))] == order[4:]
    assert [e.sort_key for e in catalog.sorted_after(("org", "aa"))] == order[4:]  # a key that is not present
    assert list(catalog.sorted_after(("zzz", ""))) == []

    # the cached order follows later changes
    catalog.put(_mem("b", ""), "global/b.md", "v", _unit(rng, 1))
    catalog.remove("org/a.md")
    order = [e.sort_key for e in catalog.sorted_after(None)]
    assert order == [("", "a"), ("", "b"), ("", "z"), ("abc", "m"), ("org", "b"), ("org/sub", "a")]
    _check_consistent(catalog)


def test_catalog_problems() -> None:
    rng = np.random.default_rng(12)
    catalog = Catalog(DIM)
    catalog.put(_mem("a"), "global/a.md", "v1", _unit(rng, 1))
    catalog.mark_problem("global/a.md", "bad yaml")
    assert catalog.by_path("global/a.md") is None
    assert catalog.problems == {"global/a.md": "bad yaml"}
    assert len(catalog.vector_index) == 0
    catalog.put(_mem("a"), "global/a.md", "v2", _unit(rng, 1))
    assert catalog.problems == {}
    _check_consistent(catalog)


def test_catalog_random_operations_stay_consistent() -> None:
    rng = np.random.default_rng(13)
    catalog = Catalog(DIM)
    places = [("", f"n{i}") for i in range(10)] + [("team", f"n{i}") for i in range(5)]
    for step in range(200):
        scope, name = places[int(rng.integers(len(places)))]
        path = memory_path(Scope(scope), name)
        if rng.random() < 0.65:
            vectors = _unit(rng, int(rng.integers(1, 4)))
            catalog.put(_mem(name, scope, content=f"step {step}"), path, f"v{step}", vectors)
        else:
            catalog.remove(path)
        if step % 20 == 0:
            _check_consistent(catalog)
    _check_consistent(catalog)


# ---------------------------------------------------------------- rank (fusion over the catalog)


def test_rank_fuses_semantic_and_lexical_and_filters() -> None:
    rng = np.random.default_rng(14)
    catalog = Catalog(DIM)
    query_vector = _unit(rng, 1)[0]
    near = query_vector + 0.05 * _unit(rng, 1)[0]
    near = (near / np.linalg.norm(near))[None, :]
    catalog.put(_mem("kubernetes", content="cluster notes"), "global/kubernetes.md", "v", near)
    catalog.put(_mem("other", content="about kubernetes too"), "global/other.md", "v", _unit(rng, 1))
    catalog.put(_mem("hidden", "secret", content="kubernetes"), "projects/secret/hidden.md", "v", near)
    for i in range(10):
        catalog.put(_mem(f"n{i}", content="gardening"), f"global/n{i}.md", "v", _unit(rng, 1))

    global_only = recall_filter(ScopeFilter.parse(None, default_all=False), set(), FULL_ACCESS)
    hits = rank(catalog, "kubernetes", query_vector, global_only, limit=3)
    assert len(hits) == 3
    assert hits[0].entry.memory.name == "kubernetes"
    assert hits[0].match_type == "both"
    assert hits[0].score == pytest.approx(float(near[0] @ query_vector), abs=1e-3)
    assert all(h.entry.memory.scope.is_global for h in hits)
    assert "other" in {h.entry.memory.name for h in hits}
    assert {h.match_type for h in hits[1:]} <= {"semantic", "lexical", "both"}

    strict = rank(catalog, "kubernetes", query_vector, None, limit=10, min_score=0.9)
    assert {h.entry.memory.name for h in strict} == {"kubernetes", "hidden"}
    assert all(h.score >= 0.9 for h in strict)


def test_fusion_weighs_how_far_ahead_a_ranking_puts_a_memory() -> None:
    """Ranks alone tie A and B (each first in one ranking, second in the other); A's wide lead in the keyword
    ranking outweighs B's hair's lead in the semantic one."""
    semantic = {2: 0.600, 1: 0.599, 3: 0.30, 4: 0.29}
    lexical = {1: 20.0, 2: 5.0, 3: 4.0, 4: 3.9}
    assert search.fuse(semantic, lexical)[:2] == [1, 2]
    assert search.fuse(semantic, {1: 5.0, 2: 20.0, 3: 4.0, 4: 3.9})[0] == 2


def test_fusion_ignores_each_rankings_scale() -> None:
    """BM25 scores have no fixed range: scaling or shifting one ranking's scores changes nothing."""
    rng = np.random.default_rng(20)
    semantic = {doc: float(rng.uniform(0.2, 0.7)) for doc in range(30)}
    lexical = {doc: float(rng.uniform(0.5, 12.0)) for doc in range(15, 45)}
    order = search.fuse(semantic, lexical)
    assert sorted(order) == list(range(45))
    assert search.fuse(semantic, {doc: 40 * score + 3 for doc, score in lexical.items()}) == order
    assert search.fuse({doc: score / 2 - 0.1 for doc, score in semantic.items()}, lexical) == order


def test_fusion_of_unscored_and_single_keyword_rows() -> None:
    semantic = {1: 0.8, 2: 0.5, 3: 0.45}
    assert search.fuse(semantic, {3: 0.0, 9: 0.0}) == [1, 2, 3, 9], "common words only: no evidence"
    assert search.fuse(semantic, {}) == [1, 2, 3]
    assert search.fuse({}, {7: 2.0, 8: 1.0}) == [7, 8]
    assert search.fuse(semantic, {3: 4.2})[:2] == [3, 1], "a lone keyword match is that ranking's best"
    many = {doc: 0.9 - doc / 100 for doc in range(40)}
    assert search.fuse(many, {39: 4.2})[0] == 39, "it outweighs the graph's nearest when they are all alike"


def _scoped_catalog(rng: np.random.Generator) -> Catalog:
    """Global, a team, its sub-scope and another scope, some tagged, all about kubernetes."""
    catalog = Catalog(DIM)
    for i, scope in enumerate([""] * 40 + ["team"] * 6 + ["team/sub"] * 4 + ["other"] * 10):
        memory = Memory(
            name=f"n{i}", scope=Scope(scope), content=f"kubernetes note {i}", tags=("x",) if i % 2 else ()
        )
        catalog.put(memory, memory_path(memory.scope, memory.name), "v", _unit(rng, 1 + i % 2))
    return catalog


@pytest.mark.parametrize(
    ("scope", "tags", "access"),
    [
        (None, set(), FULL_ACCESS),
        ("team", set(), FULL_ACCESS),
        ("team", {"x"}, FULL_ACCESS),
        ("team", set(), Access(scopes=(Scope("team"),))),
        ("all", {"x"}, Access(scopes=(Scope("team/sub"), Scope("other")))),
    ],
)
def test_rank_returns_exactly_what_the_filter_rules_admit(scope, tags, access) -> None:
    """Scope, tags and the caller's scopes each decide, as the rules say, with every ranking deep enough
    to hold all of them."""
    catalog = _scoped_catalog(np.random.default_rng(16))
    scopes = ScopeFilter.parse(scope, default_all=False)
    expected = {
        e.memory.name
        for e in catalog.entries()
        if scopes.matches(e.memory.scope) and access.can_read(e.memory.scope) and tags <= set(e.memory.tags)
    }
    allowed = recall_filter(scopes, tags, access)
    query_vector = _unit(np.random.default_rng(17), 1)[0]
    hits = rank(catalog, "kubernetes", query_vector, allowed, limit=len(catalog))
    assert {h.entry.memory.name for h in hits} == expected


def test_a_selective_filter_still_fills_the_keyword_candidates() -> None:
    """One scope in ten of the keyword matches: the candidates still reach the depth asked for."""
    catalog = _scoped_catalog(np.random.default_rng(18))
    allowed = recall_filter(ScopeFilter(), set(), Access(scopes=(Scope("team"),)))
    found = search._keyword(catalog, "kubernetes", allowed, 8)
    assert len(found) == 8
    assert all(catalog.by_doc(doc).memory.scope.path.startswith("team") for doc in found)
    nowhere = recall_filter(ScopeFilter(), set(), Access(scopes=(Scope("nowhere"),)))
    assert search._keyword(catalog, "kubernetes", nowhere, 8) == {}
    assert rank(catalog, "kubernetes", _unit(np.random.default_rng(19), 1)[0], nowhere, limit=5) == []


def test_rank_scores_are_each_memorys_best_chunk_similarity() -> None:
    """Scores come from the graph search where it measured them (one-chunk memories), from the vectors
    otherwise; either way they equal the exact best-chunk cosine."""
    rng = np.random.default_rng(15)
    catalog = Catalog(DIM)
    query_vector = _unit(rng, 1)[0]
    for i in range(30):
        content = f"note {i} kubernetes" if i % 4 == 0 else f"note {i}"
        catalog.put(_mem(f"n{i}", content=content), f"global/n{i}.md", "v", _unit(rng, 1 + i % 3))
    hits = rank(catalog, "kubernetes", query_vector, None, limit=30)
    assert len(hits) == 30
    assert {len(hit.entry.labels) for hit in hits} == {1, 2, 3}
    for hit in hits:
        exact = catalog.vector_index.vectors(hit.entry.labels) @ query_vector
        assert hit.score == pytest.approx(float(exact.max()), abs=1e-4)


def test_merging_the_index_keeps_every_answer(lexical: LexicalIndex) -> None:
    for doc in range(100, 400):
        lexical.put(doc, f"note {doc}", "misc", f"entry {doc} about {'rust' if doc % 7 == 0 else 'tea'}")
    queries = ["rust", "tea", "gardening", "note 150", "misc entry"]
    before = [lexical.search(query, 1000) for query in queries]
    pages = lexical._db.execute("SELECT count(*) FROM docs_data").fetchone()[0]
    steps = 1
    while lexical.merge_step():
        steps += 1
    assert 1 < steps < 100, "merging takes several bounded steps and ends"
    assert lexical._db.execute("SELECT count(*) FROM docs_data").fetchone()[0] < pages
    assert not lexical.merge_step(), "nothing is left to merge"
    assert [lexical.search(query, 1000) for query in queries] == before


def _tagged_catalog(rng: np.random.Generator) -> Catalog:
    """300 memories in three scopes, one to three chunks each; tag `rare` on one in ten, `x` on half."""
    catalog = Catalog(DIM)
    for i in range(300):
        tags = tuple(t for t, every in (("rare", 10), ("x", 2)) if i % every == 0)
        scope = Scope(["", "team", "other"][i % 3])
        memory = Memory(name=f"n{i}", scope=scope, content=f"kubernetes {i}", tags=tags)
        catalog.put(memory, memory_path(memory.scope, memory.name), "v", _unit(rng, 1 + i % 3))
    return catalog


@pytest.mark.parametrize(
    ("scope", "tags", "access"),
    [
        ("all", {"rare"}, FULL_ACCESS),
        ("all", {"rare", "x"}, FULL_ACCESS),
        ("team", {"rare"}, FULL_ACCESS),
        ("all", {"rare"}, Access(scopes=(Scope("other"),))),
        ("all", {"rare", "nobody-has-it"}, FULL_ACCESS),
    ],
)
def test_a_rare_tag_recall_compares_exactly_just_the_admitted(monkeypatch, scope, tags, access) -> None:
    """Below EXACT_TAGGED the candidates are every admitted memory, by its best chunk's true cosine, and
    the hits are the ones the filtered graph search gives (exact itself on a corpus this small)."""
    catalog = _tagged_catalog(np.random.default_rng(21))
    scopes = ScopeFilter.parse(scope, default_all=False)
    allowed = recall_filter(scopes, tags, access)
    query_vector = _unit(np.random.default_rng(22), 1)[0]
    admitted = [
        e for e in catalog.entries()
        if scopes.matches(e.memory.scope) and access.can_read(e.memory.scope) and tags <= set(e.memory.tags)
    ]
    true_cosine = {
        e.doc: float((catalog.vector_index.vectors(e.labels) @ query_vector).max()) for e in admitted
    }
    semantic, lexical = search._candidates(catalog, "kubernetes", query_vector, allowed, 1000)
    assert list(semantic) == sorted(true_cosine, key=true_cosine.__getitem__, reverse=True)
    assert semantic == pytest.approx(true_cosine, abs=1e-5)
    assert set(lexical) == set(true_cosine)
    exact = rank(catalog, "kubernetes", query_vector, allowed, limit=8)
    monkeypatch.setattr(search, "EXACT_TAGGED", -1)
    graph = rank(catalog, "kubernetes", query_vector, allowed, limit=8)
    assert [(h.entry.doc, h.score, h.match_type) for h in exact] == [
        (h.entry.doc, h.score, h.match_type) for h in graph
    ]
    assert len(exact) == min(8, len(admitted))


def test_a_tag_nobody_has_returns_at_once(monkeypatch) -> None:
    catalog = _tagged_catalog(np.random.default_rng(23))

    def no_search(*_args, **_kwargs):
        raise AssertionError("no index is searched for a tag no memory carries")

    monkeypatch.setattr(catalog.vector_index, "search", no_search)
    monkeypatch.setattr(catalog.lexical, "search", no_search)
    allowed = recall_filter(ScopeFilter.parse("all", default_all=False), {"nobody-has-it"}, FULL_ACCESS)
    assert rank(catalog, "kubernetes", _unit(np.random.default_rng(24), 1)[0], allowed, limit=5) == []
    nowhere = Access(scopes=(Scope("nowhere"),))
    hidden = recall_filter(ScopeFilter.parse("all", default_all=False), {"rare"}, nowhere)
    assert rank(catalog, "kubernetes", _unit(np.random.default_rng(24), 1)[0], hidden, limit=5) == []


def test_the_vector_copies_follow_adds_removes_reuse_and_a_reload(tmp_path: Path) -> None:
    """The copies the exact comparison reads are the vectors the graph holds, normalised as it stores them."""
    rng = np.random.default_rng(25)
    index = VectorIndex(DIM, capacity=16)
    index.add(list(range(1, 41)), 3 * _unit(rng, 40))
    index.remove(list(range(1, 21)))
    index.add(list(range(41, 61)), _unit(rng, 20))  # reuses the freed rows
    live = list(range(21, 61))
    graph_held = np.asarray(index._index.get_items(live), dtype=np.float32)
    assert np.allclose(index.vectors(live), graph_held, atol=1e-6)
    index.save(str(tmp_path / "graph.bin"))
    loaded = VectorIndex.load(str(tmp_path / "graph.bin"), DIM, set(live), {})
    assert np.allclose(loaded.vectors(live[::-1]), graph_held[::-1], atol=1e-6)
    assert [label for label, _ in loaded.nearest(graph_held[5], 1, live)] == [live[5]]
