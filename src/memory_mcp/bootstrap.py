"""The composition root: settings → the running parts. The only place that wires store, embedder, cache,
indexer and service together. It only constructs: running them in the background for a server (start-up,
loops, readiness, shutdown) is `memory_mcp.supervisor`'s job."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Callable
from typing import Final

from memory_mcp.auth import resolve_github_token
from memory_mcp.config import Settings
from memory_mcp.core.default_model import ModelCache, default_cache
from memory_mcp.core.derived_store import DerivedStore
from memory_mcp.core.download import ProgressReport
from memory_mcp.core.embedder import Embedder, EmbeddingModel
from memory_mcp.core.embedding_cache import EmbeddingCache
from memory_mcp.core.indexer import Indexer, Progress
from memory_mcp.core.service import MemoryService
from memory_mcp.core.store import Author, Credentials, GitStore, Store
from memory_mcp.core.sync import Syncer, clone_or_open
from memory_mcp.metrics import Metrics
from memory_mcp.progress import DownloadMeter

CACHE_FILE: Final = "embeddings.sqlite"
DERIVED_FILE: Final = "derived/derived.sqlite"
"""The derived state (catalog, keyword index, the vector graph's files beside it), changed in place."""
LEGACY_SNAPSHOTS: Final = "snapshots"
"""Where versions before the derived store kept whole snapshots; removed, as it is rebuilt from git."""


def build_service(
    settings: Settings, progress: Progress | None = None, *, embedder: EmbeddingModel | None = None
) -> MemoryService:
    """Everything, synchronously; the index has caught up with the repository on return.

    `embedder` replaces the model `settings` names (tests pass a shared model or the hashing fake); a part
    passed in stays its caller's to close, so `MemoryService.close` leaves it open.
    """
    store = build_store(settings)[0]
    model = embedder if embedder is not None else build_embedder(settings)
    return open_service(settings, store, model, progress, owns_embedder=embedder is None)


def open_service(
    settings: Settings,
    store: Store,
    embedder: EmbeddingModel,
    progress: Progress | None = None,
    *,
    owns_embedder: bool = True,
    background_embedding: bool = False,
) -> MemoryService:
    """The service over a store and a model, its index loaded and caught up with the repository
    (`background_embedding`: see `Indexer`)."""
    state = settings.state_dir
    shutil.rmtree(state / LEGACY_SNAPSHOTS, ignore_errors=True)
    derived = DerivedStore.open(state / DERIVED_FILE)
    indexer = Indexer(
        store,
        embedder,
        EmbeddingCache(state / CACHE_FILE),
        derived,
        background_embedding=background_embedding,
    )
    # Loading makes a few objects per memory and frees almost none, so each collection the allocations set
    # off rescanned all loaded so far: paused while it loads. The catalog then lives as long as the process:
    # exempt from the cyclic collector, whose every full collection rescanned it (0.3 s at 100k memories: a
    # pause for whichever request set it off).
    collecting = gc.isenabled()
    gc.disable()
    try:
        indexer.open(progress)
    finally:
        if collecting:
            gc.enable()
    gc.freeze()
    return MemoryService(indexer, owns_embedder=owns_embedder)


def build_store(
    settings: Settings, on_commit: Callable[[float], None] | None = None
) -> tuple[GitStore, Syncer | None]:
    """The repository, cloned from or attached to the remote when one is configured."""
    author = Author(settings.author_name, settings.author_email)
    if settings.remote_url is None:
        return GitStore(settings.repo_path, branch=settings.branch, author=author, on_commit=on_commit), None
    credentials = Credentials(
        token_provider=lambda: _git_token(settings),
        ssh_key=settings.ssh_key,
        known_hosts=settings.ssh_known_hosts,
    )
    return clone_or_open(
        settings.repo_path,
        remote_url=settings.remote_url,
        branch=settings.branch,
        author=author,
        credentials=credentials,
        on_commit=on_commit,
    )


def _git_token(settings: Settings) -> str | None:
    resolved = resolve_github_token(settings)
    return resolved.token.reveal() if resolved else None


def default_model(settings: Settings) -> ModelCache:
    """The pinned default model's place in this cache dir (used when no model file is configured)."""
    return default_cache(settings.cache_dir, settings.model_url, settings.model_sha256)


def build_embedder(
    settings: Settings, metrics: Metrics | None = None, download: ProgressReport | None = None
) -> Embedder:
    """The configured GGUF model, or the default one (fetched first if need be, reporting to `download`),
    loaded; `metrics` hears about every model call."""
    model = settings.model or default_model(settings).ensure(download or DownloadMeter())
    return Embedder(
        model,
        threads=settings.threads,
        query_prefix=settings.query_prefix,
        document_prefix=settings.document_prefix,
        observer=metrics.observe_embedding if metrics else None,
    )
