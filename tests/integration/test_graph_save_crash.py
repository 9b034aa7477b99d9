"""kill -9 while a forked child writes the vector graph: the child dies with the server, no acknowledged
write is lost, and the next start reads vectors from the embedding cache rather than embedding again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from memory_mcp.bootstrap import build_service
from memory_mcp.core.hashing_embedder import HashingEmbedder
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.service import Locator
from tests.conftest import settings_at
from tests.unit.test_forked import children, dead

WRITER = """
import sys
from memory_mcp.bootstrap import build_service
from memory_mcp.core import vector_index
from memory_mcp.core.hashing_embedder import HashingEmbedder
from tests.conftest import settings_at
from pathlib import Path

vector_index.FORK_FROM_BYTES = 0  # every save forks, however small the graph
service = build_service(settings_at(Path(sys.argv[1])), embedder=HashingEmbedder())
n = 0
while True:
    service.remember(name=f"crash/note-{n}", content=f"note {n}: the keeper trims the lamp at dusk")
    print(f"acknowledged {n}", flush=True)
    service.indexer.save_snapshot(absorb_for=1, final=True)
    n += 1
"""


def saving_child(pid: int, seconds: float = 0.3) -> int | None:
    """A child of `pid` (a save's) seen within `seconds` of looking, polled each millisecond."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if forked := children(pid):
            return min(forked)
        time.sleep(0.001)
    return None


class Counting(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.embedded = 0

    def embed_documents(self, texts, **options):
        self.embedded += len(texts)
        return super().embed_documents(texts, **options)


def test_kill_9_while_the_child_writes_the_graph(tmp_path: Path) -> None:
    settings = settings_at(tmp_path)
    seeded = build_service(settings, embedder=HashingEmbedder())
    seeds = [Memory(name=f"seed/note-{i}", scope=Scope(), content=f"seed {i}: tea") for i in range(400)]
    seeded.save_many(seeds, message="seed")
    seeded.close()

    root = Path(__file__).resolve().parents[2]
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
    )
    acknowledged: list[str] = []
    child = None
    try:
        assert writer.stdout is not None
        deadline = time.monotonic() + 60
        while child is None:
            assert time.monotonic() < deadline, "no save was caught in its child"
            acknowledged.append(writer.stdout.readline().split()[1])
            if len(acknowledged) >= 3:  # by then earlier saves have finished: the restart has a graph to read
                child = saving_child(writer.pid)
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
        acknowledged += writer.stdout.read().split()[1::2]
        for _ in range(500):
            if dead(child):
                break
            time.sleep(0.02)
        assert dead(child), "the saving child outlived the killed server"
    finally:
        writer.kill()

    counting = Counting()
    reopened = build_service(settings, embedder=counting)
    try:
        for n in acknowledged:
            assert reopened.read(Locator(f"crash/note-{n}", None)).memory.content.startswith(f"note {n}:")
        assert counting.embedded == 0, "vectors came from the embedding cache, not the model"
        hits = reopened.recall("the keeper trims the lamp", limit=3)
        assert hits and hits[0].entry.memory.name.startswith("crash/")
        assert reopened.indexer.save_snapshot(final=True), "the vectors the killed save missed are saved now"
        assert not reopened.catalog.vector_index.pending
    finally:
        reopened.close()
