"""The pinned default model: found in the cache or downloaded once from a real HTTP server on loopback,
which serves the test model; each test pins that file's real sha256 (or a wrong one) instead of the
built-in pin."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from memory_mcp.config import load_settings
from memory_mcp.core.default_model import ModelCache, ModelPin, builtin_pin, load_pin
from memory_mcp.errors import InvalidInput, Unavailable
from memory_mcp.files import file_sha256
from memory_mcp.progress import DownloadMeter
from tests.model_server import serve_model


@pytest.fixture(scope="session")
def model_sha256(model_path: Path) -> str:
    return file_sha256(model_path)


def pinned(url: str, sha256: str, model_path: Path) -> ModelPin:
    return ModelPin(name=model_path.name, url=url, sha256=sha256, size=model_path.stat().st_size)


def leftovers(cache_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(cache_dir)) for p in cache_dir.rglob("*"))


def test_builtin_pin_is_well_formed() -> None:
    pin = builtin_pin()
    assert pin.name.endswith(".gguf") and pin.url.startswith("https://") and pin.url.endswith(pin.name)
    assert len(pin.sha256) == 64 and int(pin.sha256, 16) >= 0 and pin.size > 1_000_000


def test_good_download_is_verified_read_only_and_content_addressed(
    tmp_path, model_path, model_sha256
) -> None:
    seen: list[tuple[int, int | None]] = []
    with serve_model(model_path) as server:
        cache = ModelCache(tmp_path, pinned(server.url, model_sha256, model_path))
        path = cache.ensure(lambda done, total: seen.append((done, total)))
        assert path == tmp_path / "models" / model_sha256 / model_path.name
        assert path.read_bytes() == model_path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o444, "published models are read-only"
        assert seen[-1] == (model_path.stat().st_size,) * 2
        assert cache.ensure() == path and len(server.requests) == 1, "a cached model is not fetched again"
    assert leftovers(tmp_path) == [
        "models",
        f"models/{model_sha256}",
        f"models/{model_sha256}/{model_path.name}",
    ]
    assert cache.status()["state"] == "present" and cache.verify()


def test_wrong_hash_is_refused_and_leaves_nothing(tmp_path, model_path) -> None:
    wrong = "0" * 64
    with serve_model(model_path) as server:
        cache = ModelCache(tmp_path, pinned(server.url, wrong, model_path))
        with pytest.raises(Unavailable) as refused:
            cache.ensure()
    assert wrong in str(refused.value) and file_sha256(model_path) in str(refused.value)
    assert "refused" in str(refused.value) and "--model" in str(refused.value)
    assert leftovers(tmp_path) == ["models"], "no partial or published file is left behind"


def test_interrupted_download_resumes_with_a_range_request(tmp_path, model_path, model_sha256) -> None:
    cut = model_path.stat().st_size // 3
    with serve_model(model_path, cut_first_at=cut) as server:
        path = ModelCache(tmp_path, pinned(server.url, model_sha256, model_path)).ensure()
    assert server.requests == [None, f"bytes={cut}-"]
    assert path.read_bytes() == model_path.read_bytes()


def test_a_partial_file_from_a_killed_process_is_resumed(tmp_path, model_path, model_sha256) -> None:
    data = model_path.read_bytes()
    with serve_model(model_path) as server:
        cache = ModelCache(tmp_path, pinned(server.url, model_sha256, model_path))
        cache.folder.mkdir(parents=True)
        cache.partial.write_bytes(data[:12345])
        assert cache.status()["state"] == "partial (12345 bytes)"
        cache.ensure()
    assert server.requests == ["bytes=12345-"]
    assert cache.path.read_bytes() == data and not cache.partial.exists()


def test_a_server_without_range_support_restarts_the_file(tmp_path, model_path, model_sha256) -> None:
    cut = model_path.stat().st_size // 2
    with serve_model(model_path, ranges=False, cut_first_at=cut) as server:
        path = ModelCache(tmp_path, pinned(server.url, model_sha256, model_path)).ensure()
    assert server.requests == [None, f"bytes={cut}-"], "it asked to resume"
    assert server.full_downloads == 1 and path.read_bytes() == model_path.read_bytes(), "and got a whole file"


def test_offline_names_the_model_flag_url_and_hash(tmp_path, model_path, model_sha256) -> None:
    with serve_model(model_path) as server:
        url = server.url  # the server is gone after this block: nothing listens on its port
    cache = ModelCache(tmp_path, pinned(url, model_sha256, model_path))
    with pytest.raises(Unavailable) as offline:
        cache.ensure()
    message = str(offline.value)
    assert "--model" in message and url in message and model_sha256 in message
    assert "MEMORY_MCP_MODEL_URL" in message


def test_verify_deletes_a_file_that_changed(tmp_path, model_path, model_sha256) -> None:
    with serve_model(model_path) as server:
        cache = ModelCache(tmp_path, pinned(server.url, model_sha256, model_path))
        cache.ensure()
    cache.path.chmod(0o644)
    with cache.path.open("r+b") as handle:
        handle.write(b"garbage")
    assert cache.verify() is False and not cache.path.exists()
    with pytest.raises(Unavailable, match="model fetch"):
        cache.verify()


def test_mirror_settings(model_sha256) -> None:
    pin = load_pin("http://127.0.0.1:9/mirror/other-model.gguf", model_sha256.upper())
    assert (pin.name, pin.sha256, pin.size) == ("other-model.gguf", model_sha256, None)
    assert (
        load_pin(builtin_pin().url.replace("https://", "http://"), builtin_pin().sha256).size
        == builtin_pin().size
    )
    with pytest.raises(InvalidInput, match="MEMORY_MCP_MODEL_SHA256"):
        load_pin("https://example.org/m.gguf", None)
    with pytest.raises(InvalidInput, match="64 hex"):
        load_pin("https://example.org/m.gguf", "abc")
    with pytest.raises(InvalidInput, match="http"):
        load_pin("file:///etc/passwd", model_sha256)
    assert load_pin("https://example.org/..%2F..%2Fx", model_sha256).name == "model.gguf"
    settings = load_settings(
        {}, {"MEMORY_MCP_MODEL_URL": "https://m.example/x.gguf", "MEMORY_MCP_MODEL_SHA256": "a" * 64}
    )
    assert (settings.model_url, settings.model_sha256) == ("https://m.example/x.gguf", "a" * 64)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        meter = DownloadMeter("m.gguf", stream)
        for done in range(0, 1001, 50):
            meter(done * 1000, 1_000_000)
    assert terminal.getvalue().count("\r") == 21 and "[" + "#" * 30 + "] 100%" in terminal.getvalue()
    lines = log.getvalue().splitlines()
    assert (
        lines[0] == "downloading m.gguf: 0% of 1.0 MB" and lines[-1] == "downloading m.gguf: 100% of 1.0 MB"
    )
    assert len(lines) == 11 and "\r" not in log.getvalue()


def test_status_reports_the_pin(tmp_path) -> None:
    status = ModelCache(tmp_path, builtin_pin()).status()
    assert status["state"] == "absent" and status["sha256"] == builtin_pin().sha256
    assert json.loads(json.dumps(status))["path"].endswith(builtin_pin().name)
