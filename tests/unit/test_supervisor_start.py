"""Start-up runs with the cyclic collector paused, and resumes it however start-up ends."""

from __future__ import annotations

import gc
import time
from dataclasses import replace
from pathlib import Path

import pytest

from memory_mcp import supervisor as supervising
from memory_mcp.core.hashing_embedder import HashingEmbedder
from memory_mcp.errors import MemoryMcpError
from memory_mcp.supervisor import Supervisor
from tests.conftest import settings_at


@pytest.fixture
def collector():
    """The collector as the test found it, and nothing frozen left behind."""
    assert gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable()


def test_the_collector_pauses_while_the_service_opens_and_resumes_after(
    tmp_path: Path, monkeypatch, collector
) -> None:
    during: list[bool] = []
    open_service = supervising.open_service

    def observed(*args, **kwargs):
        during.append(gc.isenabled())
        return open_service(*args, **kwargs)

    monkeypatch.setattr(supervising, "open_service", observed)
    supervisor = Supervisor(settings_at(tmp_path), embedder=HashingEmbedder())
    supervisor.start()
    try:
        service = supervisor.wait(60)
        assert during == [False]
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        assert not any(tracked is service for tracked in gc.get_objects()), "alive at the start: frozen"
    finally:
        supervisor.close()


def test_the_collector_resumes_when_start_up_fails(tmp_path: Path, collector) -> None:
    settings = settings_at(tmp_path)
    settings.repo_path.parent.mkdir(parents=True, exist_ok=True)
    settings.repo_path.write_text("a file where the repository should be")
    supervisor = Supervisor(settings, embedder=HashingEmbedder())
    supervisor.start()
    with pytest.raises(MemoryMcpError):
        supervisor.wait(60)
    assert gc.isenabled()


def test_the_collector_resumes_while_start_up_waits_for_the_remote(tmp_path: Path, collector) -> None:
    """An unreachable remote can hold start-up for days; each attempt leaves garbage cycles."""
    settings = replace(settings_at(tmp_path), remote_url=str(tmp_path / "missing.git"))
    supervisor = Supervisor(settings, embedder=HashingEmbedder())
    supervisor.start()
    try:
        deadline = time.monotonic() + 30
        while not supervisor.parts["repo"].detail.startswith("waiting for the remote"):
            assert time.monotonic() < deadline, supervisor.parts["repo"]
            time.sleep(0.01)
        assert gc.isenabled()
        assert not supervisor.ready
    finally:
        supervisor.close()
