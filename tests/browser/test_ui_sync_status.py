"""The status page's sync state in a real browser, against a real git remote: in step, commits
waiting to be pushed, and a failing sync (a remote rewritten with an unrelated history) with its error and
how far the two sides are apart."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import WRITER, login, mcp, tokens_toml
from tests.e2e.conftest import HttpServer, server_env


def git(*args: str) -> str:
    command = ["git", "-c", "user.name=other", "-c", "user.email=other@example.com", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bare = tmp_path_factory.mktemp("remote") / "memories.git"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    return bare


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_path: Path, remote: Path) -> Iterator[HttpServer]:
    """A server on that remote that syncs only when told to (the background loop waits an hour)."""
    root = tmp_path_factory.mktemp("ui-sync")
    (root / "tokens.toml").write_text(tokens_toml())
    env = server_env(root, model_path)
    env.update(
        MEMORY_MCP_REMOTE_URL=str(remote), MEMORY_MCP_PUSH_DELAY="3600", MEMORY_MCP_PULL_INTERVAL="3600"
    )
    running = HttpServer(env, "--tokens-file", str(root / "tokens.toml"))
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def facts(page: Page) -> dict[str, str]:
    """The status page's sync facts, term → value."""
    sync = page.locator("h2:has-text('Sync') + dl.facts")
    terms = [term.inner_text() for term in sync.locator("dt").all()]
    return dict(zip(terms, [value.inner_text() for value in sync.locator("dd").all()], strict=True))


def rewrite_remote(remote: Path, work: Path) -> None:
    """Force-push two commits of an unrelated history, as someone re-creating the repository would."""
    git("init", "-q", "-b", "main", str(work))
    for n in range(2):
        (work / f"README-{n}.md").write_text(f"a fresh start {n}\n")
        git("-C", str(work), "add", ".")
        git("-C", str(work), "commit", "-q", "-m", f"fresh start {n}")
    git("-C", str(work), "push", "-q", "--force", str(remote), "main")


def test_sync_state_in_step_ahead_and_failing(
    page: Page, server: HttpServer, remote: Path, tmp_path: Path
) -> None:
    login(page, server, WRITER)
    mcp(server, "remember", name="first", content="Pushed with the first sync.")
    report = mcp(server, "sync")
    assert report["pushed"] >= 1 and report["ahead"] == 0
    page.goto(f"{server.url}/ui/status")
    shown = facts(page)
    assert (shown["Last sync"], shown["Ahead (waiting to push)"], shown["Behind"]) == ("ok", "0", "0")
    assert shown["Last error"] == "none"
    assert shown["Pulled / pushed"] == f"0 / {report['pushed']}"

    mcp(server, "remember", name="second", content="Waits for the next push.")
    mcp(server, "sync", push=False)
    page.reload()
    assert facts(page)["Ahead (waiting to push)"] == "1"

    local_commits = int(git("-C", str(server_repo(server)), "rev-list", "--count", "HEAD"))
    rewrite_remote(remote, tmp_path / "elsewhere")
    failed = mcp(server, "sync")
    assert failed["errors"] and failed["behind"] == 2
    page.reload()
    shown = facts(page)
    assert shown["Last sync"] == "failed" and shown["Behind"] == "2"
    assert shown["Ahead (waiting to push)"] == str(local_commits), "none of ours is on the rewritten remote"
    assert "share no history" in shown["Last error"]
    expect(page.locator("table.list tr", has_text="sync").locator(".state")).to_have_text("failed")


def server_repo(server: HttpServer) -> Path:
    return server.log.parent / "repo"
