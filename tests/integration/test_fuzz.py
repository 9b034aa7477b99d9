"""Property tests over hostile arguments: only domain errors, never a path outside the repo, never a
partial write (every accepted write is one clean commit; every refused one changes nothing)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_mcp.bootstrap import build_service
from memory_mcp.core.embedder import Embedder
from memory_mcp.core.service import Locator, MemoryService
from memory_mcp.errors import MemoryMcpError
from tests.conftest import settings_at

pieces = st.sampled_from(
    [
        "a",
        "b",
        "..",
        ".",
        "",
        "/",
        "\\",
        "global",
        "all",
        "project:",
        "x.md",
        "é",
        "\x00",
        " ",
        "~",
        "-",
        "_",
        "%2e",
        "\n",
        "A" * 70,
        "c:",
        "*",
    ]
)
hostile = st.one_of(st.text(max_size=40), st.lists(pieces, max_size=8).map("".join), st.none())
tag_lists = st.one_of(st.none(), st.lists(st.one_of(st.text(max_size=20), pieces), max_size=6))
contents = st.one_of(st.text(max_size=200), st.sampled_from(["", " ", "---\nid: x\n---", "\x00", "ok"]))


@pytest.fixture(scope="module")
def fuzz_service(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> MemoryService:
    return build_service(settings_at(tmp_path_factory.mktemp("fuzz")), embedder=embedder)


def git_state(repo: Path) -> tuple[str, str]:
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True
    ).stdout
    return head, status


def files_outside(root: Path) -> list[str]:
    outside = []
    for folder, _, names in os.walk(root.parent):
        for name in names:
            path = Path(folder, name).resolve()
            if not path.is_relative_to(root.parent):
                outside.append(str(path))
    return outside


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=hostile, scope=hostile, tags=tag_lists, content=contents, new_scope=hostile)
def test_hostile_arguments(fuzz_service: MemoryService, name, scope, tags, content, new_scope) -> None:
    repo = fuzz_service.store.root
    before = git_state(repo)
    try:
        fuzz_service.remember(name=name, content=content, scope=scope, tags=tags)
    except MemoryMcpError:
        assert git_state(repo) == before, "a refused write must change nothing"
    else:
        head, status = git_state(repo)
        assert head != before[0] and status == "", "an accepted write is exactly one clean commit"
    for attempt in (
        lambda: fuzz_service.read(Locator(name, scope)),
        lambda: fuzz_service.edit(Locator(name, scope), tags=tags),
        lambda: fuzz_service.move(Locator(name, scope), to_scope=new_scope),
        lambda: fuzz_service.recall(name or "x", scope=scope, tags=tags),
        lambda: fuzz_service.list(scope=scope, tags=tags),
    ):
        try:
            attempt()
        except MemoryMcpError:
            pass
    assert git_state(repo)[1] == "", "the work tree never holds half-written files"
    for entry in fuzz_service.catalog.entries():
        assert (repo / entry.path).resolve().is_relative_to(repo)
    assert files_outside(repo) == []
