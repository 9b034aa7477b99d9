"""Fixtures shared by every test layer: the real GGUF model, temporary repositories, a service."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_mcp.bootstrap import build_service
from memory_mcp.config import Settings
from memory_mcp.core.embedder import Embedder
from memory_mcp.core.service import MemoryService

MODEL_ENV = "MEMORY_MCP_TEST_MODEL"
VARIANT_ENV = "MEMORY_MCP_TEST_MODEL_VARIANT"
"""`derived`: run the suite with a second model made from the test model (tests/derived_model.py)."""


@pytest.fixture(scope="session")
def source_model_path() -> Path:
    """The GGUF file MEMORY_MCP_TEST_MODEL names; a run without it fails loudly rather than skipping."""
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
def derived_model_path(source_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.derived_model import derive

    return derive(source_model_path, tmp_path_factory.mktemp("derived-model") / "bge-derived.gguf")


@pytest.fixture(scope="session")
def model_path(request: pytest.FixtureRequest) -> Path:
    """The model the suite runs with: the test model, or the second one derived from it."""
    variant = os.environ.get(VARIANT_ENV, "")
    if variant not in ("", "derived"):
        pytest.fail(f"{VARIANT_ENV} must be empty or 'derived', not {variant!r}")
    return request.getfixturevalue("derived_model_path" if variant else "source_model_path")


@pytest.fixture(scope="session")
def embedder(model_path: Path) -> Iterator[Embedder]:
    loaded = Embedder(model_path)
    yield loaded
    loaded.close()


def settings_at(root: Path) -> Settings:
    """Settings for a repository and cache under `root`; tests build services with them through bootstrap."""
    return Settings(
        repo_path=root / "repo",
        cache_dir=root / "cache",
        author_name="tester",
        author_email="tester@example.com",
    )


@pytest.fixture
def service(tmp_path: Path, embedder: Embedder) -> MemoryService:
    return build_service(settings_at(tmp_path), embedder=embedder)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
