"""Realistic sources built per test: a home with Serena's global memories, two project repositories with
their own, odd file names and bad files; and the command line run as a user would, with that home."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import run_cli, server_env

LONG_NAME = "a-very-long-memory-name-that-goes-on-and-on-well-past-the-sixty-four-character-limit"
GLOBAL_FILES: dict[str, bytes] = {
    # Serena before global/ kept global memories at the top; one clashes with a newer global/ file.
    "coding_style.md": b"# Old coding style\nTabs, and 100-column lines in every language.\n",
    "global/coding_style.md": b"# Coding style\nFour spaces, type hints, ruff before each commit.\n",
    "global/user_preferences.md": "# User preferences\nConcise answers, British spelling: résumé.\n".encode(),
    "global/topics/rust/async/pitfalls.md": b"# Async Rust pitfalls\nNo Mutex guard across .await.\n",
    "global/My Notes.md": b"# Meeting notes\nThe quarterly planning moved to Thursdays.\n",
    "global/My-Notes.md": b"# Reading list\nDesigning Data-Intensive Applications, then the Raft paper.\n",
    "global/.hidden-insight.md": b"# Hidden insight\nStaging is restored from backup on Sundays.\n",
    "global/...md": b"# Dots only\nA memory whose Serena name is two dots.\n",
    f"global/{LONG_NAME}.md": b"# Long name\nSerena allows file names longer than our 64-character parts.\n",
    "global/crlf.md": b"\xef\xbb\xbf# Windows notes\r\nWritten on Windows: a BOM and CRLF.\r\n",
    "global/line\nbreak.md": b"# Newline in the file name\nSomeone put a newline in a file name.\n",
    "global/bad\udcff name.md": b"# Raw bytes\nThe file name is not UTF-8.\n",  # b"\xff" on disk
    "global/empty.md": b"",
    "global/blank.md": b"  \n\n\t\n",
    "global/latin1.md": b"# Caf\xe9 notes\nWritten in Latin-1 by an old editor.\n",
    "global/huge.md": b"# Huge\n" + b"x" * (1024 * 1024),
    "global/notes.txt": b"not a memory: Serena only reads .md files\n",
}
SKIPPED = {"empty.md": "empty", "blank.md": "empty", "latin1.md": "not UTF-8", "huge.md": "over the 1 MiB"}
PROJECTS: dict[str, dict[str, bytes]] = {
    "src/shop-api": {
        "project_overview.md": b"# Shop API overview\nA FastAPI service selling garden tools on Postgres.\n",
        "suggested_commands.md": b"# Shop API commands\nRun `make test`, then `make serve`.\n",
        "conventions/naming.md": b"# Naming conventions\nEndpoints are plural nouns.\n",
    },
    "work/Data Pipeline": {
        "project_overview.md": b"# Data pipeline overview\nNightly Airflow DAGs load clicks into BigQuery.\n",
        "task_completion.md": b"# When a task is done\nRun dbt tests and update the lineage diagram.\n",
    },
}


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative  # a lone surrogate in `relative` is written as its raw byte
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder with Serena's global memories and two projects that have their own."""
    home = tmp_path / "home"
    write_tree(home / ".serena" / "memories", GLOBAL_FILES)
    for project, files in PROJECTS.items():
        write_tree(home / project / ".serena" / "memories", files)
    monkeypatch.setenv("HOME", str(home))
    return home


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path, home: Path, model_path: Path) -> Run:
    """`memory-mcp ARGS` with the fake home and a fresh repository (another one with `repo=`)."""
    env = server_env(tmp_path, model_path)
    env.pop("MEMORY_MCP_LOG_LEVEL")
    env["HOME"] = str(home)

    def run(*args: str, repo: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
        run_env = dict(env, MEMORY_MCP_REPO_PATH=str(repo)) if repo is not None else env
        return run_cli(run_env, *args, stdin=stdin, timeout=180, cwd=home)

    return run


def run_json(cli: Run, *args: str, repo: Path | None = None) -> dict:
    done = cli(*args, "--json", repo=repo)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def commits(repo: Path) -> int:
    command = ["git", "-C", str(repo), "rev-list", "--count", "HEAD"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return int(done.stdout) if done.returncode == 0 else 0
