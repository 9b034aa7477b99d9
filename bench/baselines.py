"""The yardsticks the server's timings are divided by: bare llama.cpp, and a bare pygit2 commit.

Both do only what any implementation must: embed the text with the embedder's settings, and commit one file
into a repository holding what the server's holds. Their timings are taken in turns with the server's,
because this VM's speed drifts by 2x within minutes.
"""

from __future__ import annotations

import multiprocessing
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import inside
import pygit2
from pygit2.enums import FileMode, Option

from memory_mcp.core import default_threads

SETTLE = 0.05
"""Pause before each turn. llama.cpp's OpenMP threads spin for a while after a call; a call made meanwhile
in the other process ran up to 2x slower, so which side ran right after the other decided the ratio."""
QUERY_GAP = 0.003
"""Idle time before every timed query, on both sides: a server idles between requests."""


def percentiles(samples: list[float]) -> dict[str, float]:
    """A timing's p50, p99 and maximum, in ms."""
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


class Bare:
    """llama.cpp alone, with the embedder's settings: the yardstick for our overheads.

    It runs in a process of its own: two llama.cpp models driven from two threads of one process each run
    at about half speed (their OpenMP thread pools compete; measured 3.3 ms → 6.4 ms per query).
    """

    def __init__(self, model: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_bare_worker, args=(child, str(model)), daemon=True)
        self._process.start()
        self._connection.recv()  # loaded: loading beside our measurements slowed them (remember p99 ×5)

    def batch(self, texts: list[str]) -> float:
        """Seconds to embed `texts` in one call."""
        return self._ask("batch", texts)

    def queries(self, texts: list[str]) -> list[float]:
        """Seconds to embed each text alone (after SETTLE, with QUERY_GAP before each)."""
        return self._ask("queries", texts)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """The vectors (for checks, not timing)."""
        return self._ask("embed", texts)

    def share_over_context(self, texts: list[str]) -> float:
        """Texts longer than the server's chunk (`inside.CHUNK_TOKENS`), which it embeds in several; bare llama.cpp
        embeds each whole (up to its context of 512, truncating beyond)."""
        return self._ask("share_over_context", texts)

    def _ask(self, kind: str, texts: list[str]) -> Any:
        self._connection.send((kind, texts))
        return self._connection.recv()

    def close(self) -> None:
        self._connection.send(None)
        self._process.join(timeout=60)


def _bare_worker(connection, model: str) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=model,
        embedding=True,
        verbose=False,
        n_ctx=512,
        n_batch=512,
        n_ubatch=512,
        n_threads=default_threads(),
        n_threads_batch=default_threads(),
        flash_attn=True,
    )
    connection.send("ready")

    def timed(call, *args, pause: float = 0.0) -> float:
        time.sleep(pause)
        started = time.perf_counter()
        call(*args)
        return time.perf_counter() - started

    def queries(texts: list[str]) -> list[float]:
        time.sleep(SETTLE)
        return [timed(llm.embed, text, pause=QUERY_GAP) for text in texts]

    answers = {
        "batch": lambda texts: timed(llm.embed, texts),
        "queries": queries,
        "embed": lambda texts: llm.embed(texts),
        "share_over_context": lambda texts: (
            sum(len(llm.tokenize(t.encode())) > inside.CHUNK_TOKENS for t in texts) / max(len(texts), 1)
        ),
    }
    while (request := connection.recv()) is not None:
        kind, texts = request
        connection.send(answers[kind](texts))
    llm.close()


class BareCommit:
    """One-file commits straight through pygit2, into a copy of the server's git directory.

    Each commit writes the file, its blob, the trees from its folder up to the root and the commit, then moves
    the branch, with libgit2 fsyncing as the server has it do. Nothing else: no journal, no catalog.
    """

    def __init__(self, repository: Path, into: Path) -> None:
        shutil.rmtree(into, ignore_errors=True)
        with inside.packing_paused(repository):
            shutil.copytree(repository / ".git", into / ".git", symlinks=True)
        pygit2.option(Option.ENABLE_FSYNC_GITDIR, 1)
        self._root = into
        self._repo = pygit2.Repository(str(into))
        self._signature = pygit2.Signature("bench", "bench@example.invalid")

    def commit(self, path: str, data: bytes) -> float:
        """Seconds to commit `data` at `path`."""
        started = time.perf_counter()
        target = self._root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        head = self._repo.head
        parent = head.peel(pygit2.Commit)
        tree = self._with(parent.tree, path.split("/"), self._repo.create_blob(data))
        self._repo.create_commit(head.name, self._signature, self._signature, "bench", tree, [parent.id])
        return time.perf_counter() - started

    def _with(self, tree: pygit2.Tree | None, parts: list[str], blob: pygit2.Oid) -> pygit2.Oid:
        builder = self._repo.TreeBuilder(tree) if tree is not None else self._repo.TreeBuilder()
        if len(parts) == 1:
            builder.insert(parts[0], blob, FileMode.BLOB)
        else:
            existing = builder.get(parts[0])
            sub = self._repo[existing.id].peel(pygit2.Tree) if existing is not None else None
            builder.insert(parts[0], self._with(sub, parts[1:], blob), FileMode.TREE)
        return builder.write()
