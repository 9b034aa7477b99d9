"""Replicas of a memory repository syncing through a local bare repository that stands in for GitHub.

Every replica is a real `GitStore` + `Syncer`; the `git` command line is the independent witness.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory_mcp.core import markdown
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.store import Author, Credentials, GitStore, memory_path
from memory_mcp.core.sync import Syncer, clone_or_open

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    """A fixed `updated_at`, so which version is newer never depends on the clock."""
    return T0 + timedelta(minutes=minutes)


def git(repo: Path, *args: str, check: bool = True) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="cli",
        GIT_AUTHOR_EMAIL="cli@example.com",
        GIT_COMMITTER_NAME="cli",
        GIT_COMMITTER_EMAIL="cli@example.com",
    )
    result = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} in {repo} failed: {result.stderr}")
    return result.stdout


def assert_healthy(repo: Path) -> None:
    """`git fsck --strict` is clean and no blob anywhere in history holds a conflict marker."""
    git(repo, "fsck", "--strict", "--no-dangling")
    objects = [line.split(" ", 1)[0] for line in git(repo, "rev-list", "--all", "--objects").splitlines()]
    every = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input="\n".join(objects).encode(),
        capture_output=True,
        check=True,
    ).stdout
    assert b"<<<<<<<" not in every and b">>>>>>>" not in every
    if git(repo, "rev-parse", "--is-bare-repository").strip() == "false":
        assert git(repo, "status", "--porcelain") == "", "the work tree must match the branch"


@dataclass
class Replica:
    """One server's repository: write memories, sync, and look at the result."""

    root: Path
    store: GitStore
    syncer: Syncer

    def write(self, name: str, content: str, minutes: int, *, memory_id: str | None = None) -> str:
        memory = Memory(
            name=name,
            scope=Scope(),
            content=content,
            id=memory_id or f"id-{name}",
            created_at=T0,
            updated_at=at(minutes),
        )
        return self.commit({memory_path(Scope(), name): markdown.render(memory)}, [], f"save {name}")

    def delete(self, name: str) -> str:
        return self.commit({}, [memory_path(Scope(), name)], f"forget {name}")

    def commit(self, writes: dict[str, bytes], deletes: list[str], message: str) -> str:
        with self.store.write_lock():
            return self.store.commit(writes, deletes, message)

    def content(self, name: str) -> str | None:
        """The committed content of a memory, checked against the work-tree file."""
        path = memory_path(Scope(), name)
        blob = self.store.blob_at(self.store.head(), path)
        file = self.root / path
        if blob is None:
            assert not file.exists(), f"{path} is in the work tree but not in the branch"
            return None
        assert file.read_bytes() == self.store.blob(blob), f"{path} in the work tree differs from the branch"
        return markdown.parse(self.store.blob(blob)).content

    def names(self) -> set[str]:
        files = self.store.files(self.store.head())
        return {path.removeprefix("global/").removesuffix(".md") for path, _ in files}


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    return bare


@pytest.fixture
def replica(tmp_path: Path, remote: Path) -> Callable[..., Replica]:
    """`replica("a")` clones (or reopens) `tmp_path/a` from the bare remote."""

    def make(name: str, url: str | None = None, credentials: Credentials | None = None) -> Replica:
        root = tmp_path / name
        store, syncer = clone_or_open(
            root,
            remote_url=url or str(remote),
            branch="main",
            author=Author(name, f"{name}@example.com"),
            credentials=credentials or Credentials(),
        )
        return Replica(root, store, syncer)

    return make
