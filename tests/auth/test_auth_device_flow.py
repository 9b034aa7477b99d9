"""`memory-mcp auth login` through GitHub's device flow, against a loopback server speaking its endpoints."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from memory_mcp.auth import device_flow
from memory_mcp.errors import MemoryMcpError

SCALE = 0.01  # 1 s intervals become 10 ms, 6 s after a slow_down 60 ms


def login_args(github, *extra: str) -> list[str]:
    return [
        "auth",
        "login",
        "--github-url",
        github.url,
        "--client-id",
        github.client_id,
        "--poll-interval-scale",
        str(SCALE),
        *extra,
    ]


def test_login_polls_until_approved_and_stores_the_token(github, run, no_leak, isolated: Path) -> None:
    github.script = ["pending", "slow_down", "pending", "success"]
    result = run(*login_args(github))
    assert result.code == 0, result.err
    assert (isolated / "config" / "memory-mcp" / "github-token").read_text() == github.token + "\n"
    assert github.user_code in result.err and github.verification_uri in result.err
    assert github.token[-4:] in result.err and result.out == ""
    no_leak(github.token, result.out, result.err)
    assert github.code_requests == [{"client_id": github.client_id, "scope": "repo"}]
    # The server saw the client keep the interval, and add 5 s after slow_down (scaled for the test).
    gaps = [b - a for a, b in zip(github.polls, github.polls[1:])]
    assert len(github.polls) == 4
    assert gaps[0] >= 1 * SCALE
    assert gaps[1] >= 6 * SCALE and gaps[2] >= 6 * SCALE


@pytest.mark.parametrize("slow_down", ["slow_down", "slow_down_bare"])
def test_slow_down_adds_five_seconds_for_every_later_poll(github, slow_down: str) -> None:
    """Exact intervals, through the real HTTP exchange: sleep is injected, so nothing waits."""
    github.script = ["pending", slow_down, "pending", "success"]
    sleeps: list[float] = []
    announced = []
    token = device_flow.login(github.url, github.client_id, announce=announced.append, sleep=sleeps.append)
    assert token.reveal() == github.token
    assert sleeps == [1, 1, 6, 6]
    assert [code.user_code for code in announced] == [github.user_code]
    assert github.device_code not in repr(announced[0])


@pytest.mark.parametrize(("step", "words"), [("denied", "denied"), ("expired", "expired")])
def test_denied_or_expired_fails_and_stores_nothing(
    github, run, isolated: Path, step: str, words: str
) -> None:
    github.script = ["pending", step]
    result = run(*login_args(github))
    assert result.code == 1
    assert words in result.err
    assert not (isolated / "config").exists()


def test_gives_up_when_the_code_expires_even_if_the_server_keeps_saying_pending(github) -> None:
    github.expires_in = 3
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(MemoryMcpError, match="expired"):
        device_flow.login(
            github.url, github.client_id, announce=lambda code: None, sleep=sleep, clock=lambda: now[0]
        )
    assert len(github.polls) == 2


def test_app_without_device_flow_is_invalid_input(github, run) -> None:
    github.device_flow_enabled = False
    result = run(*login_args(github))
    assert result.code == 2
    assert "device flow enabled" in result.err


def test_client_id_and_url_from_the_environment(github, run, monkeypatch, no_leak) -> None:
    monkeypatch.setenv("MEMORY_MCP_GITHUB_CLIENT_ID", github.client_id)
    monkeypatch.setenv("MEMORY_MCP_GITHUB_URL", github.url + "/")
    github.script = ["success"]
    result = run("auth", "login", "--store", "stdout", "--poll-interval-scale", str(SCALE))
    assert result.code == 0, result.err
    assert result.out == github.token + "\n"  # the one place a token may appear
    no_leak(github.token, result.err)


def test_missing_client_id_fails_before_any_request(github, run) -> None:
    result = run("auth", "login", "--github-url", github.url)
    assert result.code == 2
    assert "--client-id" in result.err and "MEMORY_MCP_GITHUB_CLIENT_ID" in result.err
    assert github.code_requests == []


def test_plain_http_is_refused_beyond_loopback(run) -> None:
    result = run("auth", "login", "--github-url", "http://github.example.com", "--client-id", "Iv1.x")
    assert result.code == 2
    assert "https" in result.err


def test_unreachable_github_is_unavailable(run) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run("auth", "login", "--github-url", f"http://127.0.0.1:{port}", "--client-id", "Iv1.x")
    assert result.code == 5
    assert "cannot reach" in result.err
