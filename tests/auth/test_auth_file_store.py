"""The file store: private permissions whatever the umask, atomic replacement, logout."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from memory_mcp.auth import GitHubToken
from memory_mcp.auth.stores import FileStore


@pytest.fixture
def open_umask():
    """A umask that would make every new file world-readable, to prove the store does not depend on it."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_login_with_token_writes_a_private_file(isolated: Path, run, token: str, open_umask, no_leak) -> None:
    result = run("auth", "login", "--with-token", stdin=token + "\n")
    assert result.code == 0, result.err
    folder = isolated / "config" / "memory-mcp"
    assert mode(folder) == 0o700 and mode(folder / "github-token") == 0o600
    assert (folder / "github-token").read_text() == token + "\n"
    assert os.listdir(folder) == ["github-token"]  # no temporary file left behind
    no_leak(token, result.out, result.err)


def test_an_existing_loose_folder_is_tightened(isolated: Path, token: str) -> None:
    folder = isolated / "config" / "memory-mcp"
    folder.mkdir(parents=True, mode=0o755)
    folder.chmod(0o755)
    FileStore(folder / "github-token").save(GitHubToken(token))
    assert mode(folder) == 0o700


def test_replacing_renames_a_new_file_over_the_old(tmp_path: Path, token: str) -> None:
    """The old file is never rewritten in place: a hard link to it keeps the old token whole."""
    store = FileStore(tmp_path / "store" / "github-token")
    store.save(GitHubToken("first-token-000000000000"))
    os.link(store.path, tmp_path / "old")
    store.save(GitHubToken(token))
    assert (tmp_path / "old").read_text() == "first-token-000000000000\n"
    assert store.path.read_text() == token + "\n"
    assert mode(store.path) == 0o600


def test_a_reader_never_sees_a_partial_token(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store" / "github-token")
    values = [f"token-{i:04d}-" + "x" * 40 for i in range(100)]
    store.save(GitHubToken(values[0]))
    seen: set[str] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(store.path.read_text())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for value in values:
            store.save(GitHubToken(value))
    finally:
        done.set()
        reader.join()
    assert seen <= {value + "\n" for value in values}


def test_stdin_must_hold_one_token(run, isolated: Path) -> None:
    empty = run("auth", "login", "--with-token", stdin="")
    assert empty.code == 2 and "read nothing" in empty.err
    secret_looking = "ghp_aaaaaaaaaaaaaaaaaaaa ghp_bbbbbbbbbbbbbbbbbbbbbb"
    two = run("auth", "login", "--with-token", stdin=secret_looking)
    assert two.code == 2 and "ghp_" not in two.err
    assert not (isolated / "config").exists()


def test_logout_removes_the_file_and_says_when_nothing_was_there(isolated: Path, run, token: str) -> None:
    assert run("auth", "login", "--with-token", stdin=token).code == 0
    removed = run("auth", "logout")
    assert removed.code == 0 and "Removed" in removed.err
    assert not (isolated / "config" / "memory-mcp" / "github-token").exists()
    again = run("auth", "logout")
    assert again.code == 0 and "No token stored" in again.err


def test_logout_mentions_a_token_that_still_applies(run, token: str, monkeypatch) -> None:
    monkeypatch.setenv("MEMORY_MCP_GITHUB_TOKEN", token)
    result = run("auth", "logout")
    assert result.code == 0
    assert "still has a token, from environment variable MEMORY_MCP_GITHUB_TOKEN" in result.err
    assert token not in result.err


def test_stdout_store_has_nothing_to_log_out_of(run, capsys) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse refuses it: not a choice for logout
        run("auth", "logout", "--store", "stdout")
    assert exited.value.code == 2
    assert "invalid choice: 'stdout'" in capsys.readouterr().err
