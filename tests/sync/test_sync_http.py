"""The credential path end to end: a loopback HTTP server runs `git http-backend` behind HTTP Basic auth that
accepts only user `x-access-token` with the test token, as GitHub does."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import CredentialType

from memory_mcp.core.sync import Syncer
from memory_mcp.core.transport import Credentials, _Callbacks
from memory_mcp.errors import Unavailable
from tests.sync.conftest import Replica, assert_healthy, git

TOKEN = "ghs_TestToken0123456789abcdefSECRET"
BACKEND = Path(subprocess.check_output(["git", "--exec-path"], text=True).strip()) / "git-http-backend"
Make = Callable[..., Replica]


@dataclass
class GitHttpServer:
    url: str
    refused: list[str] = field(default_factory=list)
    """Paths requested with wrong or missing credentials (each one answered 401)."""


def _handler(project_root: Path, server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                server.refused.append(self.path)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            env = {
                "PATH": os.environ["PATH"],
                "GIT_PROJECT_ROOT": str(project_root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
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


@pytest.fixture
def http_remote(remote: Path) -> Iterator[GitHttpServer]:
    git(remote, "config", "http.receivepack", "true")
    server = GitHttpServer(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(remote.parent, server))
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}/{remote.name}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


def token(value: str | None) -> Credentials:
    return Credentials(token_provider=lambda: value)


def assert_no_token_anywhere(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
        assert base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode() not in text


def test_the_right_token_clones_and_pushes(
    replica: Make, remote: Path, http_remote: GitHttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return TOKEN

    a = replica("a", http_remote.url, Credentials(token_provider=provider))
    a.write("n", "over http", 1)
    report = a.syncer.sync()
    assert report.ok and (report.pushed, report.ahead) == (2, 0)
    assert git(remote, "rev-parse", "main").strip() == a.store.head() == report.remote_head

    b = replica("b", http_remote.url, token(TOKEN))
    assert b.content("n") == "over http"
    assert calls, "the token is read when the remote asks for it"
    config = (a.root / ".git" / "config").read_text()
    assert http_remote.url in config
    assert_no_token_anywhere(config, (b.root / ".git" / "config").read_text(), repr(report), caplog.text)
    assert_healthy(a.root)


@pytest.mark.parametrize("given", [None, "", "ghs_wrong_token", TOKEN + "x"])
def test_a_missing_or_wrong_token_fails_clearly_without_leaking(
    given: str | None, replica: Make, http_remote: GitHttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = replica("good", http_remote.url, token(TOKEN))
    good.write("n", "x", 1)
    assert good.syncer.sync().ok

    bad = replica("bad")  # cloned from the bare repository, then pointed at the HTTP server
    syncer = Syncer(bad.store, http_remote.url, token(given))
    bad.write("m", "local", 2)
    head = bad.store.head()
    report = syncer.sync()
    (error,) = report.errors
    expected = "no token is configured" if not given else "refused the token (user x-access-token)"
    assert error.startswith("fetch failed") and expected in error
    assert bad.store.head() == head and report.ahead >= 1
    assert http_remote.refused
    assert_no_token_anywhere(error, repr(report), caplog.text, (bad.root / ".git" / "config").read_text())
    if given:
        assert given not in error and given not in caplog.text

    with pytest.raises(Unavailable, match="cannot clone") as caught:
        replica("never", http_remote.url, token(given))
    assert_no_token_anywhere(str(caught.value))


def test_a_push_declined_once_is_retried(replica: Make, remote: Path, http_remote: GitHttpServer) -> None:
    hook = remote / "hooks" / "pre-receive"
    flag = remote / "declined"
    hook.write_text(f"#!/bin/sh\nif [ ! -e '{flag}' ]; then touch '{flag}'; exit 1; fi\n")
    hook.chmod(0o755)
    a = replica("a", http_remote.url, token(TOKEN))
    a.write("n", "x", 1)
    report = a.syncer.sync()
    assert report.ok and report.pushed == 2 and flag.exists()
    assert git(remote, "rev-parse", "main").strip() == a.store.head()


def test_a_push_always_declined_is_reported(replica: Make, remote: Path, http_remote: GitHttpServer) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    a = replica("a", http_remote.url, token(TOKEN))
    a.write("n", "x", 1)
    report = a.syncer.sync()
    assert report.pushed == 0 and report.ahead == 2
    (error,) = report.errors
    assert error.startswith("push failed: rejected 5 times, last: ") and "pre-receive hook declined" in error


# ---------------------------------------------------------------- credential choices


def test_the_token_is_never_sent_over_plain_http_beyond_loopback() -> None:
    callbacks = _Callbacks(token(TOKEN))
    with pytest.raises(Unavailable, match="unencrypted HTTP"):
        callbacks.credentials("http://git.example.com/o/r.git", None, CredentialType.USERPASS_PLAINTEXT)
    assert callbacks.secrets == []
    answer = _Callbacks(token(TOKEN)).credentials(
        "https://git.example.com/o/r.git", None, CredentialType.USERPASS_PLAINTEXT
    )
    assert isinstance(answer, pygit2.UserPass) and answer.credential_tuple == ("x-access-token", TOKEN)


def test_a_failing_token_store_leaks_nothing() -> None:
    def broken() -> str:
        raise RuntimeError(f"vault said no, token was {TOKEN}")

    with pytest.raises(Unavailable) as caught:
        _Callbacks(Credentials(token_provider=broken)).credentials(
            "https://git.example.com/r.git", None, CredentialType.USERPASS_PLAINTEXT
        )
    assert str(caught.value) == "could not read the remote token (RuntimeError)"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_ssh_uses_the_agent_or_a_key_file_and_gives_up_when_refused(tmp_path: Path) -> None:
    agent = _Callbacks(Credentials())
    answer = agent.credentials("ssh://git@host/r.git", "git", CredentialType.SSH_KEY)
    assert isinstance(answer, pygit2.KeypairFromAgent) and answer.credential_tuple[0] == "git"
    with pytest.raises(Unavailable, match="refused the SSH key"):
        agent.credentials("ssh://git@host/r.git", "git", CredentialType.SSH_KEY)
    key = tmp_path / "id_ed25519"
    key.write_text("private")
    (tmp_path / "id_ed25519.pub").write_text("public")
    offered = CredentialType.SSH_KEY | CredentialType.USERNAME
    answer = _Callbacks(Credentials(ssh_key=key)).credentials("ssh://host/r.git", None, offered)
    assert answer.credential_tuple == ("git", str(key) + ".pub", str(key), "")
