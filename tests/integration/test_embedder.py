"""The embedder against the real GGUF model."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from memory_mcp.core import cancellation
from memory_mcp.core.embedder import Embedder, _family_prefixes, default_threads
from memory_mcp.core.embedding_queue import DOCUMENT_TOKENS
from memory_mcp.errors import Cancelled, Unavailable


@pytest.fixture(scope="module")
def source_embedder(source_model_path: Path, model_path: Path, embedder: Embedder):
    """The test model itself, even when the suite runs with the derived one: these facts are its own."""
    if source_model_path == model_path:
        yield embedder
        return
    loaded = Embedder(source_model_path)
    yield loaded
    loaded.close()


def test_reproduces_reference_embeddings(source_embedder: Embedder, source_model_path: Path) -> None:
    reference = json.loads(
        source_model_path.with_name("all-MiniLM-L6-v2.reference-embeddings.json").read_text()
    )
    vectors = source_embedder.embed_documents(reference["sentences"])
    for sentence, rows, expected in zip(
        reference["sentences"], vectors, reference["embeddings"], strict=True
    ):
        assert rows.shape == (1, 384)
        cosine = float(rows[0] @ np.asarray(expected, dtype=np.float32))
        assert cosine >= 0.995, f"{sentence!r}: cosine {cosine:.4f}"


def test_model_facts_come_from_the_file(source_embedder: Embedder) -> None:
    info = source_embedder.info
    assert info.dimensions == 384
    assert info.pooling == "mean"
    assert info.context == 256
    assert len(info.identity) == 64
    assert info.query_prefix == "" and info.document_prefix == ""


def test_a_long_document_does_not_grow_the_process_by_a_buffer_of_logits(model_path: Path) -> None:
    """llama.cpp's output buffer holds (vocabulary + dimensions) floats per token of its longest call; with
    512-token chunks one long memory grew the process by ~30 MB for logits never written (RESULTS round 15)."""
    embedder = Embedder(model_path)
    try:
        embedder.embed_documents(["A short note to warm every buffer up."])
        before = _anonymous_kb()
        text = " ".join(
            f"Paragraph {i} explains how the tidal turbine gearbox is serviced." for i in range(90)
        )
        assert embedder.chunk_count(text) >= 3
        embedder.embed_documents([text])
        grown_mb = (_anonymous_kb() - before) / 1024
    finally:
        embedder.close()
    assert grown_mb < 12, f"embedding a long document grew the process by {grown_mb:.1f} MB"


def _anonymous_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


def test_the_thread_setting_reaches_llama_cpp(embedder: Embedder, model_path: Path) -> None:
    """Embedding runs on llama.cpp's batch threads: a container limited to one CPU must not get one thread per
    host CPU."""
    assert embedder.info.threads == default_threads() <= len(os.sched_getaffinity(0))
    single = Embedder(model_path, threads=1)
    try:
        assert single.info.threads == 1
        assert np.allclose(single.embed_query("one thread"), embedder.embed_query("one thread"), atol=1e-3)
    finally:
        single.close()


def test_vectors_are_unit_length(embedder: Embedder) -> None:
    rows = embedder.embed_documents(["short", "a somewhat longer sentence about databases"])
    for block in rows:
        assert np.allclose(np.linalg.norm(block, axis=1), 1.0, atol=1e-4)
    assert np.isclose(np.linalg.norm(embedder.embed_query("query text")), 1.0, atol=1e-4)


def test_long_text_is_chunked_not_truncated(embedder: Embedder) -> None:
    filler = " ".join(f"The committee discussed agenda item number {i} at length." for i in range(300))
    tail = "Finally, the secret launch code for the satellite is stored in the blue vault."
    rows = embedder.embed_documents([filler + " " + tail])[0]
    assert rows.shape[0] > 3, "a ~4000-token text must become several chunks"
    query = embedder.embed_query("where is the satellite launch code kept")
    similarities = rows @ query
    assert int(similarities.argmax()) == rows.shape[0] - 1, "only the last chunk mentions the launch code"
    # A fifth of the way from this model's unrelated-text similarity to 1 (0.2 for MiniLM, 0.1 for BGE-like).
    assert similarities.max() - similarities[0] > 0.2 * (1 - embedder.info.unrelated_similarity)


def test_batch_equals_single(embedder: Embedder) -> None:
    texts = ["alpha beta gamma", "the quick brown fox", "memory servers for agents"]
    batch = embedder.embed_documents(texts)
    for text, rows in zip(texts, batch, strict=True):
        single = embedder.embed_documents([text])[0]
        assert float(rows[0] @ single[0]) > 0.999


def test_family_prefixes_follow_the_model_name() -> None:
    assert _family_prefixes("bge-small-en-v1.5-q8_0.gguf")[0].startswith("Represent this sentence")
    assert _family_prefixes("multilingual-e5-small") == ("query: ", "passage: ")
    assert _family_prefixes("nomic-embed-text-v1.5") == ("search_query: ", "search_document: ")
    assert _family_prefixes("MiniLM L6 H384 Uncased all-MiniLM-L6-v2-q8_0.gguf") == ("", "")


def test_prefix_overrides_are_applied(model_path: Path) -> None:
    custom = Embedder(model_path, query_prefix="query: ", document_prefix="passage: ")
    try:
        assert custom.info.query_prefix == "query: "
        plain = custom.embed_query("hello world")
    finally:
        custom.close()
    other = Embedder(model_path)
    try:
        assert float(plain @ other.embed_query("hello world")) < 0.999, "the prefix must change the embedding"
    finally:
        other.close()


def test_missing_model_says_how_to_provide_one(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="MEMORY_MCP_MODEL"):
        Embedder(tmp_path / "nope.gguf")


def test_non_model_file_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(Unavailable, match="could not load"):
        Embedder(bogus)


def test_a_query_waits_for_one_bounded_call_behind_a_large_document(model_path: Path) -> None:
    """One 256 KiB memory is hundreds of chunks; they are embedded a few at a time, so a search sent
    meanwhile waits for one model call (~0.4 s), not for the whole document (tens of seconds)."""
    calls: list[tuple[int, float]] = []
    embedder = Embedder(model_path, observer=lambda chunks, seconds: calls.append((chunks, seconds)))
    text = " ".join(f"Paragraph {i} discusses storage engine design choice number {i}." for i in range(2500))
    big: list = []
    try:
        worker = threading.Thread(target=lambda: big.append(embedder.embed_documents([text])))
        worker.start()
        while not calls:
            time.sleep(0.01)
        waits = []
        for _ in range(5):
            started = time.perf_counter()
            embedder.embed_query("which storage engine design was chosen")
            waits.append(time.perf_counter() - started)
        assert worker.is_alive(), "the document finished before the queries: not a test of fairness"
        worker.join()
        info = embedder.info
    finally:
        embedder.close()
    assert big[0][0].shape[0] > 50
    longest_call = max(seconds for _, seconds in calls)
    full_chunk = info.context - 32  # the tokens of every chunk but a document's last, less some slack
    assert max(chunks for chunks, _ in calls) <= DOCUMENT_TOKENS // full_chunk + 1
    assert max(waits) < 2 * longest_call + 0.2, f"query waits {waits}, model calls up to {longest_call:.2f}s"


def test_every_model_call_is_the_workers_also_while_a_large_document_runs(
    model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start's own call, a lone query, a small document, and queries that arrive while a document larger
    than one call is under way: all run on the worker (a second thread that had called llama.cpp made every
    later call ~2.5× slower), and none is lost. Only the work after the start is reported to the observer."""
    callers: list[str] = []
    embed_chunks = Embedder._embed_chunks

    def recorded(self: Embedder, chunks: list[str]) -> np.ndarray:
        callers.append(threading.current_thread().name)
        return embed_chunks(self, chunks)

    monkeypatch.setattr(Embedder, "_embed_chunks", recorded)
    observed: list[int] = []
    embedder = Embedder(model_path, observer=lambda texts, _: observed.append(texts))
    try:
        assert callers == ["embedder"] and observed == [], "the start's call: the worker's, not reported"
        alone = embedder.embed_query("which storage engine")
        embedder.embed_documents(["A short note about storage engines."])
        text = " ".join(f"Paragraph {i} is about storage engine choice number {i}." for i in range(1200))
        big = threading.Thread(target=lambda: embedder.embed_documents([text]), name="big")
        big.start()
        while len(callers) < 4:
            time.sleep(0.005)
        answers: dict[int, np.ndarray] = {}

        def ask(i: int) -> None:
            answers[i] = embedder.embed_query("which storage engine")

        askers = [threading.Thread(target=ask, args=(i,), name=f"asker-{i}") for i in range(4)]
        for asker in askers:
            asker.start()
        assert big.is_alive(), "the document finished before the queries: not a test of the queue"
        for asker in [*askers, big]:
            asker.join(timeout=300)
    finally:
        embedder.close()
    assert set(callers) == {"embedder"} and len(callers) > 5
    assert len(observed) == len(callers) - 1
    assert all(float(answer @ alone) > 0.999 for answer in answers.values()) and len(answers) == 4


def test_a_start_whose_first_model_call_fails_leaves_no_worker_behind(
    model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start's own call (the unrelated texts' similarity) fails: the error reaches the caller, and the
    worker thread that made the call is stopped rather than left holding the model."""

    def failing(self: Embedder, chunks: list[str]) -> np.ndarray:
        raise RuntimeError("llama_decode returned -1")

    before = {thread.ident for thread in threading.enumerate()}
    monkeypatch.setattr(Embedder, "_embed_chunks", failing)
    with pytest.raises(RuntimeError, match="llama_decode returned -1"):
        Embedder(model_path)
    left = [t for t in threading.enumerate() if t.ident not in before and t.name == "embedder"]
    assert left == []


def test_a_closed_model_refuses_work_on_every_path(model_path: Path) -> None:
    """Refused with the error a caller retries on, before its text reaches the freed tokenizer (that crashed
    the process)."""
    embedder = Embedder(model_path)
    embedder.close()
    with pytest.raises(Unavailable):
        embedder.embed_query("anything")
    with pytest.raises(Unavailable):
        embedder.embed_documents(["anything"])
    with pytest.raises(Unavailable):
        embedder.chunk_count("anything")


def test_cancelled_work_is_dropped_and_close_does_not_wait_for_queued_work(model_path: Path) -> None:
    """Cancelled or refused work stops after the model call under way; times are relative to that call,
    since the machine's load decides how long one takes."""
    calls: list[float] = []
    embedder = Embedder(model_path, observer=lambda chunks, seconds: calls.append(seconds))
    text = " ".join(f"Sentence {i} about the weather in the mountains today." for i in range(2500))
    outcomes: dict[str, object] = {}
    cancel = threading.Event()

    def cancelled_call() -> None:
        with cancellation.cancellable() as mine:
            threading.Thread(target=lambda: (cancel.wait(), mine.set()), daemon=True).start()
            outcomes["cancelled"] = _capture(embedder.embed_documents, [text])

    def waited(thread: threading.Thread) -> float:
        while not calls:
            time.sleep(0.01)
        started = time.perf_counter()
        yield_ = cancel.set if thread.name == "cancelled" else embedder.close
        yield_()
        thread.join(timeout=300)
        assert not thread.is_alive()
        return time.perf_counter() - started

    worker = threading.Thread(target=cancelled_call, name="cancelled")
    worker.start()
    assert waited(worker) < 2 * max(calls) + 1, "cancelled work kept running"
    assert isinstance(outcomes["cancelled"], Cancelled)

    calls.clear()
    queued = threading.Thread(
        target=lambda: outcomes.update(queued=_capture(embedder.embed_documents, [text]))
    )
    queued.start()
    assert waited(queued) < 2 * max(calls) + 1, "close waited for queued documents"
    assert isinstance(outcomes["queued"], Unavailable)


def _capture(fn, *args):
    try:
        return fn(*args)
    except BaseException as exc:  # noqa: BLE001 - the tests look at it
        return exc


CLOSING_ROUNDS, TOKENIZERS = 20, 3
LONG_TEXT = "the quick brown fox jumps over the lazy dog " * 600
"""About 5,000 tokens: a tokenization long enough that `close` lands inside one most rounds."""


def test_closing_while_other_threads_tokenize_refuses_them_and_frees_the_model_after(
    model_path: Path,
) -> None:
    """Callers tokenize on their own threads, beside the worker's model calls: `close` must not free the model
    under one of them (a tokenizer used after its model was freed crashes the process, and this test with it)."""
    for _ in range(CLOSING_ROUNDS):
        embedder = Embedder(model_path)
        outcomes: list[object] = []
        started = threading.Barrier(TOKENIZERS + 1)

        def tokenize_until_refused() -> None:
            started.wait()
            while True:
                try:
                    embedder.chunk_count(LONG_TEXT)
                except Unavailable as exc:
                    outcomes.append(exc)
                    return

        callers = [threading.Thread(target=tokenize_until_refused) for _ in range(TOKENIZERS)]
        for caller in callers:
            caller.start()
        started.wait()
        time.sleep(0.05)
        embedder.close()
        for caller in callers:
            caller.join(timeout=30)
        assert len(outcomes) == TOKENIZERS and all(isinstance(outcome, Unavailable) for outcome in outcomes)
