"""The plain records the repository hands out: no libgit2 object leaves the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Author:
    name: str
    email: str


@dataclass(frozen=True)
class Change:
    """One memory file changed between two commits (`None` blob = absent on that side)."""

    path: str
    old_blob: str | None
    new_blob: str | None


@dataclass(frozen=True)
class Commit:
    """One commit of the repository's history: who made it and when."""

    commit: str
    time: datetime
    author: str
    message: str


@dataclass(frozen=True)
class Revision:
    """One commit that changed a memory, with the file's blob at that commit (its `version`)."""

    commit: str
    time: datetime
    message: str
    author: str
    path: str
    blob: str | None

    def named_by(self, key: str) -> bool:
        """Whether `key` (lower-case hex) names this entry: its `version` (the file's blob id, what every tool
        calls a version) or its `commit`, or a prefix of either."""
        return self.commit.startswith(key) or (self.blob is not None and self.blob.startswith(key))
