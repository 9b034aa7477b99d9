"""The pinned default embedding model: used whenever no model file is configured.

The pin (file name, URL, sha256, size) is `default-model.json` in this package, which the Nix expression
reads too. The model is looked up in the cache directory under a content-addressed name,
`models/<sha256>/<name>`, and otherwise downloaded once: into a partial file beside it, resumable, under a
lock that concurrent first starts share, and published (read-only, 0444) only after its sha256 matched. A
published file is never written again, so a running server's mmap of it cannot change under it.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from memory_mcp.core.bundled_model import Bundle, running_bundle
from memory_mcp.core.download import DownloadError, ProgressReport, download, size_on_disk
from memory_mcp.errors import InvalidInput, Unavailable
from memory_mcp.files import file_sha256, fsync_path, locked

PIN_FILE: Final = "default-model.json"
MODELS_DIR: Final = "models"
POLL: Final = 0.2
"""Seconds between looks at another process's download while waiting for its lock."""

_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


@dataclass(frozen=True)
class ModelPin:
    name: str
    url: str
    sha256: str
    size: int | None = None
    """Bytes, when known (the built-in pin); a mirror given by URL and hash alone leaves it open."""


def builtin_pin() -> ModelPin:
    """The pin shipped in the package."""
    data = json.loads(resources.files("memory_mcp").joinpath(PIN_FILE).read_text(encoding="utf-8"))
    return ModelPin(**data)


def load_pin(url: str | None = None, sha256: str | None = None) -> ModelPin:
    """The built-in pin, or the one `MEMORY_MCP_MODEL_URL` and `MEMORY_MCP_MODEL_SHA256` name together."""
    pin = builtin_pin()
    if url is None and sha256 is None:
        return pin
    if sha256 is None:
        raise InvalidInput(
            "MEMORY_MCP_MODEL_URL needs MEMORY_MCP_MODEL_SHA256 (the file's hex sha256) beside it: "
            "a download is only used once its hash matched"
        )
    sha256 = sha256.strip().lower()
    if not _SHA256.fullmatch(sha256):
        raise InvalidInput(f"MEMORY_MCP_MODEL_SHA256 must be 64 hex digits, not {sha256!r}")
    if url is None:
        if sha256 != pin.sha256:
            raise InvalidInput(
                "MEMORY_MCP_MODEL_SHA256 without MEMORY_MCP_MODEL_URL only fits the built-in pin"
            )
        return pin
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise InvalidInput(f"MEMORY_MCP_MODEL_URL must be an http(s) URL, not {url!r}")
    name = urllib.parse.unquote(parsed.path.rsplit("/", 1)[-1])
    if not _SAFE_NAME.fullmatch(name) or not name.endswith(".gguf"):
        name = "model.gguf"
    size = pin.size if sha256 == pin.sha256 else None
    return ModelPin(name=name, url=url, sha256=sha256, size=size)


@dataclass(frozen=True)
class ModelCache:
    """Where one pinned model lives in a cache directory."""

    cache_dir: Path
    pin: ModelPin
    bundle: Bundle | None = None
    """The standalone executable's own copy: the source to copy from instead of downloading."""

    @property
    def folder(self) -> Path:
        return self.cache_dir / MODELS_DIR / self.pin.sha256

    @property
    def path(self) -> Path:
        return self.folder / self.pin.name

    @property
    def partial(self) -> Path:
        return self.folder / f".{self.pin.name}.part"

    def status(self) -> dict[str, object]:
        """What is on disk, without hashing it (see `verify`)."""
        if self.path.is_file():
            state = "present"
        elif self.partial.is_file():
            state = f"partial ({self.partial.stat().st_size} bytes)"
        else:
            state = "absent"
        return {**vars(self.pin), "path": str(self.path), "state": state}

    def verify(self) -> bool:
        """Hash the cached file against the pin; a file that fails is deleted, so the next start fetches
        it again."""
        if not self.path.is_file():
            raise Unavailable(
                f"the default model is not in the cache ({self.path}); run `memory-mcp model fetch`"
            )
        if file_sha256(self.path) == self.pin.sha256:
            return True
        self.path.unlink()
        return False

    def ensure(self, progress: ProgressReport | None = None) -> Path:
        """The cached model's path, downloading it first if no process has yet."""
        if self.path.is_file():
            return self.path
        root = self.cache_dir / MODELS_DIR
        root.mkdir(parents=True, exist_ok=True)
        with locked(root, lambda: progress and progress(size_on_disk(self.partial), self.pin.size), POLL):
            if not self.path.is_file():  # another process may have finished while we waited
                self._download(progress)
        return self.path

    def _download(self, progress: ProgressReport | None) -> None:
        self.folder.mkdir(exist_ok=True)
        try:
            if self.bundle is not None:
                self.bundle.extract(self.partial, progress)
                digest = file_sha256(self.partial)
            else:
                digest = download(self.pin.url, self.partial, size=self.pin.size, progress=progress)
        except DownloadError as exc:
            raise Unavailable(self._unreachable(str(exc))) from exc
        if digest != self.pin.sha256:
            self.partial.unlink(missing_ok=True)
            self.folder.rmdir()
            raise Unavailable(
                f"the model downloaded from {self.pin.url} has sha256 {digest}, not the pinned "
                f"{self.pin.sha256}: refused and deleted. Check MEMORY_MCP_MODEL_URL and "
                "MEMORY_MCP_MODEL_SHA256, "
                "or give a model file with --model PATH"
            )
        fsync_path(self.partial)
        os.chmod(self.partial, 0o444)
        os.rename(self.partial, self.path)
        fsync_path(self.folder)

    def _unreachable(self, reason: str) -> str:
        return (
            f"no embedding model configured, and the default model could not be downloaded from "
            f"{self.pin.url} ({reason}). Download it elsewhere (sha256 {self.pin.sha256}) and pass "
            "--model PATH (or MEMORY_MCP_MODEL), or point MEMORY_MCP_MODEL_URL and MEMORY_MCP_MODEL_SHA256 "
            "at a mirror"
        )


def default_cache(cache_dir: Path, url: str | None = None, sha256: str | None = None) -> ModelCache:
    """The default model: the one the standalone executable carries, else the pin (or the mirror that
    `url` and `sha256` name)."""
    bundle = running_bundle() if url is None and sha256 is None else None
    if bundle is not None:
        pin = ModelPin(bundle.name, f"bundled:{bundle.executable}", bundle.sha256, bundle.size)
        return ModelCache(cache_dir, pin, bundle)
    return ModelCache(cache_dir, load_pin(url, sha256))
