"""Prometheus metrics for `/metrics`, on a registry of our own (no process-global state to leak between
servers or tests). The parts report through small callbacks; gauges read their values at scrape time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.tool_calls = Counter(
            "memory_mcp_tool_calls", "MCP tool calls by tool and outcome", ["tool", "outcome"], registry=r
        )
        self.tool_seconds = Histogram(
            "memory_mcp_tool_duration_seconds",
            "MCP tool call latency",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.embedding_seconds = Histogram(
            "memory_mcp_embedding_duration_seconds",
            "Time per model call",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.embedding_batch = Histogram(
            "memory_mcp_embedding_batch_size",
            "Chunks embedded per model call",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "memory_mcp_git_commit_duration_seconds",
            "Time to write and commit one change",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.syncs = Counter(
            "memory_mcp_syncs", "Syncs with the git remote by result", ["result"], registry=r
        )
        self.push_backlog = Gauge("memory_mcp_sync_push_backlog", "Local commits not yet pushed", registry=r)
        self.memories = Gauge("memory_mcp_memories", "Memories in the index", registry=r)
        self.index_chunks = Gauge("memory_mcp_index_vectors", "Chunk vectors in the vector index", registry=r)
        self.queue_depth = Gauge(
            "memory_mcp_embedding_queue_depth", "Requests waiting for the model", registry=r
        )
        self.vectors_pending = Gauge(
            "memory_mcp_vectors_pending", "Memories waiting for vectors (a model change, or large memories embedded in the background)", registry=r
        )

    def observe_embedding(self, chunks: int, seconds: float) -> None:
        self.embedding_batch.observe(chunks)
        self.embedding_seconds.observe(seconds)

    def observe_commit(self, seconds: float) -> None:
        self.commit_seconds.observe(seconds)

    def observe_sync(self, ok: bool, backlog: int) -> None:
        self.syncs.labels("ok" if ok else "error").inc()
        self.push_backlog.set(backlog)

    def observe_tool(self, tool: str, outcome: str, seconds: float) -> None:
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_seconds.labels(tool).observe(seconds)

    def watch(
        self,
        memories: Callable[[], float],
        chunks: Callable[[], float],
        queue: Callable[[], float],
        pending: Callable[[], float],
    ) -> None:
        """Gauges that read the running parts when scraped."""
        self.memories.set_function(memories)
        self.index_chunks.set_function(chunks)
        self.queue_depth.set_function(queue)
        self.vectors_pending.set_function(pending)

    def render(self) -> bytes:
        return generate_latest(self.registry)
