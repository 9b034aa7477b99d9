"""A git smart-HTTP server on loopback: `git http-backend` behind HTTP Basic auth that accepts only user
`x-access-token` with the test token, as GitHub does. Faults can be injected: an outage (every request
answered 503, or the connection dropped) and slowness (a delay before each answer)."""

from __future__ import annotations

import base64
import os
import random
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

from tests.loopback_http import serving

TOKEN = "ghs_TestToken0123456789abcdefSECRET"
BACKEND = Path(subprocess.check_output(["git", "--exec-path"], text=True).strip()) / "git-http-backend"


@dataclass
class GitHttpServer:
    url: str
    refused: list[str] = field(default_factory=list)
    """Paths requested with wrong or missing credentials (each one answered 401)."""
    down: bool = False
    """An outage: requests are answered 503 or their connection is dropped."""
    delay: float = 0.0
    """Seconds each answer waits (slowness)."""
    served: int = 0
    faults: int = 0
    """Requests that met an outage."""


def _handler(project_root: Path, server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            if server.delay:
                time.sleep(server.delay)
            if server.down:
                server.faults += 1
                if random.random() < 0.5:  # the connection drops without an answer
                    self.close_connection = True
                    return
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            server.served += 1
            expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                server.refused.append(self.path)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            target = urlsplit(self.path)  # a request through a proxy names the whole URL (absolute form)
            env = {
                "PATH": os.environ["PATH"],
                "GIT_PROJECT_ROOT": str(project_root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": target.path,
                "QUERY_STRING": target.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "REMOTE_USER": "x-access-token",
                "REMOTE_ADDR": "127.0.0.1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "HOME": str(project_root),
            }
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            result = subprocess.run(
                [str(BACKEND)], input=self._body(), env=env, capture_output=True, check=False
            )
            head, _, body = result.stdout.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode().split("\r\n"):
                name, _, value = line.partition(": ")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), to serve HTTPS and to trust as the only CA."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextmanager
def serve(remote: Path, tls: tuple[Path, Path] | None = None) -> Iterator[GitHttpServer]:
    """Serve the bare repository `remote` (pushes allowed) until the block ends; over HTTPS with `tls`
    (certificate, key)."""
    subprocess.run(["git", "-C", str(remote), "config", "http.receivepack", "true"], check=True)
    server = GitHttpServer(url="")
    context = None
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
    with serving(_handler(remote.parent, server), context) as httpd:
        scheme = "http" if context is None else "https"
        server.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}/{remote.name}"
        yield server
