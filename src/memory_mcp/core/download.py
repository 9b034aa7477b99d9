"""Fetch one file over HTTP(S) into a partial file, resuming with Range requests, and check its sha256.

The adapter behind the default model (see `default_model`): standard library only. The caller owns the
partial file's place and the lock; this module only moves bytes and says how far it got. A server that
ignores Range (answers 200) restarts the file from the first byte; a connection that drops part-way is
resumed from where it stopped, a few times, before the error goes to the caller.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Final

from memory_mcp import __version__
from memory_mcp.files import file_sha256

log = logging.getLogger(__name__)

BLOCK: Final = 1 << 20
TIMEOUT: Final = 30.0
"""Seconds any one socket operation may stall before the attempt counts as failed."""
ATTEMPTS: Final = 4
"""Tries in a row that add no byte before giving up (a try that adds bytes resets the count)."""

ProgressReport = Callable[[int, int | None], None]
"""Told (bytes so far, total bytes or None) as the download proceeds."""

_CONTENT_RANGE: Final = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(Exception):
    """The file could not be fetched (network, HTTP status) or did not match its hash."""


def download(
    url: str,
    partial: Path,
    *,
    size: int | None = None,
    progress: ProgressReport | None = None,
    pause: float = 1.0,
) -> str:
    """Complete `partial` from `url` (resuming what it holds) and return the sha256 of the whole file."""
    failures = 0
    while True:
        before = size_on_disk(partial)
        try:
            _fetch(url, partial, size, progress)
            break
        except (OSError, http.client.HTTPException, DownloadError) as exc:
            failures = 0 if size_on_disk(partial) > before else failures + 1
            if failures >= ATTEMPTS or _is_final(exc):
                raise DownloadError(_reason(exc)) from exc
            log.warning("download of %s interrupted (%s); resuming", url, _reason(exc))
            time.sleep(pause)
    return file_sha256(partial)


def _fetch(url: str, partial: Path, size: int | None, progress: ProgressReport | None) -> None:
    offset = size_on_disk(partial)
    if size is not None and offset >= size:
        if offset == size:
            return
        offset = 0  # longer than the file can be: start again
    request = urllib.request.Request(url, headers={"User-Agent": f"memory-mcp/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310 - scheme checked by caller
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file does not fit this file any more
            partial.unlink()
            raise DownloadError("the partial download did not match the file; restarting") from exc
        raise
    with response:
        total = _total(response, offset)
        start = offset if response.status == 206 else 0
        if offset and start == 0:
            log.info("%s does not resume downloads (no Range support); starting again", url)
        with partial.open("r+b" if start else "wb") as handle:
            handle.seek(start)
            handle.truncate()
            done = start
            while block := response.read(BLOCK):
                handle.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total or size)
            handle.flush()
        if total is not None and done != total:
            raise DownloadError(f"the connection closed after {done} of {total} bytes")


def _total(response: http.client.HTTPResponse, offset: int) -> int | None:
    """The whole file's length, from Content-Range (206) or Content-Length (200)."""
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if match is None or int(match[1]) != offset:
            raise DownloadError(
                f"the server answered a range request with {response.headers['Content-Range']}"
            )
        return None if match[3] == "*" else int(match[3])
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _is_final(exc: Exception) -> bool:
    """Errors that another try cannot fix: a 4xx answer (but 408/429), or a name that does not resolve."""
    if isinstance(exc, urllib.error.HTTPError):
        return 400 <= exc.code < 500 and exc.code not in (408, 429)
    return False


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def size_on_disk(path: Path) -> int:
    """A file's length in bytes, 0 when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
