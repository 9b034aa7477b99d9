"""The second model (tests/derived_model.py) really is another model: the suite's run with it
(`MEMORY_MCP_TEST_MODEL_VARIANT=derived`) proves something only if these hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from memory_mcp.core.embedder import Embedder


@pytest.fixture(scope="module")
def pair(source_model_path: Path, derived_model_path: Path) -> Iterator[tuple[Embedder, Embedder]]:
    source, derived = Embedder(source_model_path), Embedder(derived_model_path)
    yield source, derived
    source.close()
    derived.close()


def test_it_is_a_bge_model_with_cls_pooling(pair) -> None:
    source, derived = pair
    assert derived.info.identity != source.info.identity
    assert derived.info.query_prefix == "Represent this sentence for searching relevant passages: "
    assert (source.info.pooling, derived.info.pooling) == ("mean", "cls")
    assert derived.info.dimensions == source.info.dimensions


def test_its_geometry_differs(pair) -> None:
    source, derived = pair
    assert source.info.unrelated_similarity < 0.2 < 0.4 < derived.info.unrelated_similarity
    text = "The standup meeting starts at half past nine."
    same_text = float(source.embed_documents([text])[0][0] @ derived.embed_documents([text])[0][0])
    assert same_text < 0.9, "the same text lands elsewhere"


def test_it_still_embeds_by_meaning(pair) -> None:
    _, derived = pair
    documents = [
        "The guest wireless network password is printed on the fridge.",
        "Salaries are paid on the last working day of each month.",
        "Visitors must register their car plate at reception to park.",
    ]
    queries = [
        "how do I get online as a guest",
        "when do employees receive their pay",
        "where do visitors park",
    ]
    matrix = np.vstack([rows[0] for rows in derived.embed_documents(documents)])
    for expected, query in enumerate(queries):
        assert int(np.argmax(matrix @ derived.embed_query(query))) == expected, query
