"""The credential path end to end, over git's smart HTTP on loopback (`tests.sync.git_http`)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import CredentialType

from memory_mcp.core.store import Credentials
from memory_mcp.core.store.transport import _Callbacks
from memory_mcp.core.sync import Syncer
from memory_mcp.errors import Unavailable
from tests.sync.conftest import Replica, assert_healthy, git
from tests.sync.git_http import TOKEN, GitHttpServer, serve

Make = Callable[..., Replica]


@pytest.fixture
def http_remote(remote: Path) -> Iterator[GitHttpServer]:
    with serve(remote) as server:
        yield server


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
