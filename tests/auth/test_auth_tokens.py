"""Token resolution order (env → file store → mounted secret), `auth status`, and the redacted token type."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from memory_mcp.auth import GitHubToken, ResolvedToken, resolve_github_token
from memory_mcp.auth.github_token import DEFAULT_MOUNTED_TOKEN, token_sources
from memory_mcp.config import load_settings
from memory_mcp.errors import InvalidInput, Unavailable


def tokens(isolated: Path) -> tuple[Path, Path]:
    """The file store and the mounted secret file of this test's isolated environment."""
    return isolated / "config" / "memory-mcp" / "github-token", isolated / "mounted" / "token"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_nothing_configured_resolves_to_none() -> None:
    assert resolve_github_token(load_settings()) is None


def test_order_is_env_then_file_then_mounted(isolated: Path, monkeypatch) -> None:
    stored, mounted = tokens(isolated)
    write(mounted, "mounted-token-0000000000\n")  # Kubernetes secret files often end in a newline
    assert _found(resolve_github_token(load_settings())) == (
        "mounted",
        str(mounted),
        "mounted-token-0000000000",
    )
    write(stored, "file-token-11111111111111\n")
    assert _found(resolve_github_token(load_settings())) == ("file", str(stored), "file-token-11111111111111")
    monkeypatch.setenv("MEMORY_MCP_GITHUB_TOKEN", "env-token-2222222222222222")
    assert _found(resolve_github_token(load_settings())) == (
        "env",
        "MEMORY_MCP_GITHUB_TOKEN",
        "env-token-2222222222222222",
    )
    monkeypatch.setenv("MEMORY_MCP_GITHUB_TOKEN", "  ")  # a blank manifest entry counts as unset
    assert _found(resolve_github_token(load_settings()))[0] == "file"


def _found(resolved: ResolvedToken | None) -> tuple[str, str, str]:
    assert resolved is not None
    return resolved.source, resolved.location, resolved.token.reveal()


def test_an_explicit_env_mapping_is_honoured(tmp_path: Path) -> None:
    """The sync engine may pass its own environment; nothing is read from os.environ then."""
    write(tmp_path / "elsewhere" / "github-token", "from-mapping-333333333333")
    env = {
        "MEMORY_MCP_CONFIG_DIR": str(tmp_path / "elsewhere"),
        "MEMORY_MCP_GITHUB_TOKEN_FILE": "/nonexistent",
    }
    assert _found(resolve_github_token(load_settings({}, env)))[2] == "from-mapping-333333333333"
    assert token_sources(load_settings({}, {}))[2] == ("mounted", str(DEFAULT_MOUNTED_TOKEN))
    assert str(DEFAULT_MOUNTED_TOKEN) == "/var/run/secrets/memory-mcp/github/token"


def test_kubernetes_style_symlinked_mount_is_followed(isolated: Path) -> None:
    _, mounted = tokens(isolated)
    write(mounted.parent / "..2025_01_01" / "token", "linked-token-44444444444\n")
    (mounted.parent / "..data").symlink_to("..2025_01_01")
    mounted.symlink_to("..data/token")
    assert _found(resolve_github_token(load_settings()))[2] == "linked-token-44444444444"


def test_a_broken_source_is_an_error_not_a_silent_fallthrough(isolated: Path, token: str) -> None:
    stored, mounted = tokens(isolated)
    write(mounted, token)
    stored.mkdir(parents=True)  # unreadable as a file (chmod would not stop root)
    with pytest.raises(Unavailable, match="cannot read the GitHub token file"):
        resolve_github_token(load_settings())
    stored.rmdir()
    write(stored, "two words\n")
    with pytest.raises(Unavailable, match="holds no valid token") as caught:
        resolve_github_token(load_settings())
    assert "two words" not in str(caught.value)


def test_loose_file_store_permissions_are_warned_about(isolated: Path, token: str, caplog, no_leak) -> None:
    stored, _ = tokens(isolated)
    write(stored, token)
    stored.chmod(0o644)
    assert resolve_github_token(load_settings()) is not None
    assert "readable by other users" in caplog.text
    no_leak(token)


def test_token_never_shows_itself(token: str) -> None:
    secret = GitHubToken(token)
    resolved = ResolvedToken(secret, "env", "MEMORY_MCP_GITHUB_TOKEN")
    for shown in (repr(secret), str(secret), f"{secret}", "%s %r" % (secret, secret), repr(resolved)):
        assert token not in shown and token[:-4] not in shown
        assert shown.count(token[-4:]) >= 1
    assert GitHubToken("short-one").last4 == "" and "one" not in repr(GitHubToken("short-one"))
    assert secret == GitHubToken(token + "\n") and secret != GitHubToken(token + "x")
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        hash(secret)
    with pytest.raises(InvalidInput) as caught:
        GitHubToken(token + " " + token)
    assert token not in str(caught.value)


def test_status_shows_source_and_last_four_only(isolated: Path, run, token: str, no_leak) -> None:
    stored, _ = tokens(isolated)
    write(stored, token + "\n")
    text = run("auth", "status")
    assert text.code == 0
    assert str(stored) in text.out and token[-4:] in text.out
    as_json = run("auth", "status", "--json")
    expected = {"found": True, "source": "file", "location": str(stored), "last4": token[-4:]}
    assert json.loads(as_json.out) == expected
    no_leak(token, text.out, text.err, as_json.out, as_json.err)
    assert token[-5:] not in text.out + as_json.out


def test_status_names_the_environment_variable(run, token: str, monkeypatch, no_leak) -> None:
    monkeypatch.setenv("MEMORY_MCP_GITHUB_TOKEN", token)
    result = run("auth", "status", "--json")
    assert json.loads(result.out)["location"] == "MEMORY_MCP_GITHUB_TOKEN"
    no_leak(token, result.out, result.err)


def test_status_without_a_token_lists_where_it_looked(isolated: Path, run) -> None:
    result = run("auth", "status", "--json")
    assert result.code == 3
    stored, mounted = tokens(isolated)
    assert json.loads(result.out) == {
        "found": False,
        "searched": ["MEMORY_MCP_GITHUB_TOKEN", str(stored), str(mounted)],
    }
    assert "memory-mcp auth login" in result.err


def test_login_with_token_then_status_in_real_processes(isolated: Path, token: str) -> None:
    """The installed entry point end to end: the token goes in on stdin, never on the command line."""
    env = {k: v for k, v in os.environ.items() if k != "MEMORY_MCP_GITHUB_TOKEN"}
    command = [sys.executable, "-m", "memory_mcp.cli", "auth"]
    login = subprocess.run(
        [*command, "login", "--with-token"], input=token, env=env, capture_output=True, text=True, timeout=60
    )
    assert login.returncode == 0, login.stderr
    status = subprocess.run(
        [*command, "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["last4"] == token[-4:]
    for text in (login.stdout, login.stderr, status.stdout, status.stderr):
        assert token not in text
