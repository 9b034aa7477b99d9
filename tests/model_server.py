"""A real HTTP server on loopback that serves one model file, the way a download mirror would, with knobs for
the failures a download must survive: no Range support, a connection cut part-way, a slow line."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.loopback_http import serving


@dataclass
class ModelServer:
    data: bytes
    ranges: bool = True
    """Honour `Range: bytes=N-` with 206; otherwise always answer 200 with the whole file."""
    cut_first_at: int | None = None
    """Close the first response's connection after this many bytes (it announced the full length)."""
    bytes_per_second: int | None = None
    requests: list[str | None] = field(default_factory=list)
    """The Range header of every GET (None: none sent)."""
    url: str = ""

    @property
    def full_downloads(self) -> int:
        return sum(1 for r in self.requests if r is None)


def _handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if not self.path.endswith(".gguf"):
                self.send_error(404)
                return
            asked = self.headers.get("Range")
            first = not server.requests
            server.requests.append(asked)
            match = re.fullmatch(r"bytes=(\d+)-", asked or "")
            start = int(match[1]) if match and server.ranges else 0
            if start >= len(server.data) and start:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(server.data)}")
                self.end_headers()
                return
            body = server.data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(server.data) - 1}/{len(server.data)}")
            if server.ranges:
                self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            limit = server.cut_first_at if first and server.cut_first_at is not None else len(body)
            self._send(body[:limit])
            if limit < len(body):
                self.close_connection = True

        def _send(self, body: bytes) -> None:
            step = 64 * 1024
            for offset in range(0, len(body), step):
                self.wfile.write(body[offset : offset + step])
                if server.bytes_per_second:
                    time.sleep(step / server.bytes_per_second)

    return Handler


@contextmanager
def serve_model(path: Path, **knobs) -> Iterator[ModelServer]:
    """Serve `path`'s bytes at http://127.0.0.1:PORT/NAME until the block ends."""
    server = ModelServer(data=path.read_bytes(), **knobs)
    with serving(_handler(server)) as httpd:
        server.url = f"http://127.0.0.1:{httpd.server_address[1]}/models/{path.name}"
        yield server
