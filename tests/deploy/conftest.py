"""Fixtures for the deployment tests: the rendered base and overlays (kubectl must be installed: a
machine without it fails these tests rather than skipping them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import k8s_manifests as km
import pytest

Objects = tuple[dict[str, Any], ...]


def _render(directory: Path) -> Objects:
    try:
        km.kustomize_command()
        missing = None
    except RuntimeError as exc:
        missing = str(exc)
    if missing:
        pytest.fail(missing, pytrace=False)
    return km.render(directory)


@pytest.fixture(scope="session")
def base() -> Objects:
    return _render(km.BASE)


@pytest.fixture(scope="session")
def goddess() -> Objects:
    return _render(km.OVERLAYS / "goddess")


@pytest.fixture(scope="session", params=km.overlay_dirs(), ids=lambda p: p.name)
def overlay(request: pytest.FixtureRequest) -> Objects:
    """Each overlay in turn."""
    return _render(request.param)


@pytest.fixture(
    scope="session", params=[km.BASE, *km.overlay_dirs()], ids=lambda p: str(p.relative_to(km.K8S))
)
def rendered(request: pytest.FixtureRequest) -> Objects:
    """The base, then each overlay."""
    return _render(request.param)


@pytest.fixture(scope="session")
def application() -> dict[str, Any]:
    return km.load_yaml(km.ARGOCD / "application.yaml")
