"""Fixtures shared by every test layer: the real GGUF model, temporary repositories, a service."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_mcp.core.embedder import Embedder
from memory_mcp.core.embedding_cache import EmbeddingCache
from memory_mcp.core.indexer import Indexer
from memory_mcp.core.service import MemoryService
from memory_mcp.core.store import Author, GitStore

MODEL_ENV = "MEMORY_MCP_TEST_MODEL"


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The real embedding model; a run without it fails loudly rather than skipping."""
    value = os.environ.get(MODEL_ENV)
    if not value:
        pytest.fail(
            f"{MODEL_ENV} must name a GGUF embedding model, e.g. ../shared/models/all-MiniLM-L6-v2-q8_0.gguf"
        )
    path = Path(value).resolve()
    if not path.is_file():
        pytest.fail(f"{MODEL_ENV}={value} is not a file")
    return path


@pytest.fixture(scope="session")
def embedder(model_path: Path) -> Iterator[Embedder]:
    loaded = Embedder(model_path)
    yield loaded
    loaded.close()


def make_service(root: Path, embedder: Embedder, *, snapshots: bool = True) -> MemoryService:
    store = GitStore(root / "repo", author=Author("tester", "tester@example.com"))
    cache = EmbeddingCache(root / "cache" / "embeddings.sqlite")
    indexer = Indexer(store, embedder, cache, snapshots=root / "cache" / "snapshots" if snapshots else None)
    indexer.open()
    return MemoryService(indexer)


@pytest.fixture
def service(tmp_path: Path, embedder: Embedder) -> MemoryService:
    return make_service(tmp_path, embedder)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
