"""Repositories written by the reference (Rust) server open here, and ours keep its layout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import HttpServer, call

pytestmark = pytest.mark.anyio

# Files exactly as the reference server (serde_yaml) writes them, including its legacy scope tags.
REFERENCE_FILES = {
    "global/editor-prefs.md": """---
id: 5b0f3a52-8f0c-4c1e-9a55-1f2b3c4d5e6f
name: editor-prefs
tags:
- editor
- preferences
scope:
  type: Root
created_at: 2025-03-01T10:00:00.123456789Z
updated_at: 2025-03-02T11:30:00Z
source: conversation
---

The user prefers Helix with the gruvbox theme and 2-space indentation.
""",
    "projects/acme/api/auth/tokens.md": """---
id: 0d6b7e9a-2c44-4b8f-b1a0-7e6f5d4c3b2a
name: auth/tokens
tags: []
scope:
  type: Path
  name: acme/api
created_at: 2025-04-10T08:15:00.5Z
updated_at: 2025-04-10T08:15:00.5Z
---

Access tokens expire after 15 minutes; refresh tokens after 30 days.
---
A horizontal rule above must not confuse the parser.
""",
    "global/legacy-global.md": """---
id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d
name: legacy-global
tags:
- old
scope:
  type: Global
created_at: 2024-12-24T00:00:00Z
updated_at: 2024-12-24T00:00:00Z
---

Written by v0.7 with the legacy Global scope tag.
""",
    "projects/webapp/legacy-project.md": """---
id: 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d
name: legacy-project
tags:
- frontend
scope:
  type: Project
  name: webapp
created_at: 2024-11-01T09:00:00Z
updated_at: 2024-11-01T09:00:00Z
---

The webapp uses Vite and deploys to the edge network.
""",
}


def make_reference_repo(root: Path) -> Path:
    repo = root / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / ".gitignore").write_text(".memory-mcp-index/\n")
    for path, text in REFERENCE_FILES.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=ref",
            "-c",
            "user.email=ref@x",
            "commit",
            "-qm",
            "reference",
        ],
        check=True,
    )
    return repo


async def test_reference_repo_round_trip(start_server, tmp_path: Path) -> None:
    repo = make_reference_repo(tmp_path)
    server: HttpServer = start_server()
    async with server.client() as client:
        listing = await call(client, "list", fields=["scope", "name", "tags", "id", "created_at", "source"])
        assert [(m["scope"], m["name"]) for m in listing["memories"]] == [
            ("global", "editor-prefs"),
            ("global", "legacy-global"),
            ("acme/api", "auth/tokens"),
            ("webapp", "legacy-project"),
        ]
        prefs = await call(client, "read", name="editor-prefs")
        assert prefs["id"] == "5b0f3a52-8f0c-4c1e-9a55-1f2b3c4d5e6f"
        assert prefs["created_at"] == "2025-03-01T10:00:00.123Z"
        assert prefs["source"] == "conversation" and prefs["tags"] == ["editor", "preferences"]
        tokens = await call(client, "read", name="auth/tokens", scope="acme/api")
        assert tokens["content"].endswith("A horizontal rule above must not confuse the parser.\n")
        assert (await call(client, "read", name="legacy-project", scope="project:webapp"))["tags"] == [
            "frontend"
        ]
        hits = (await call(client, "recall", query="which text editor does the user like"))["hits"]
        assert hits[0]["name"] == "editor-prefs"

        await call(client, "edit", name="legacy-project", scope="webapp", tags=["frontend", "vite"])
    text = (repo / "projects/webapp/legacy-project.md").read_text()
    assert_reference_layout(text)
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["id"] == "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    assert front["scope"] == {"type": "Path", "name": "webapp"}
    assert front["created_at"] == "2024-11-01T09:00:00.000Z"
    assert text.endswith("\n\nThe webapp uses Vite and deploys to the edge network.\n")
    untouched = (repo / "global/legacy-global.md").read_text()
    assert untouched == REFERENCE_FILES["global/legacy-global.md"], "reading must never rewrite a file"


def assert_reference_layout(text: str) -> None:
    """What the reference parser needs: fences, key order, scope shape, RFC 3339 UTC times."""
    assert text.startswith("---\n")
    header, _, body = text[4:].partition("\n---\n\n")
    assert body, "frontmatter must be closed by '---' and a blank line"
    keys = [line.split(":")[0] for line in header.splitlines() if line and not line.startswith((" ", "-"))]
    assert keys[:6] == ["id", "name", "tags", "scope", "created_at", "updated_at"]
    assert set(keys) <= {"id", "name", "tags", "scope", "created_at", "updated_at", "source"}
    front = yaml.safe_load(header)
    assert front["scope"]["type"] in ("Root", "Path")
    for key in ("created_at", "updated_at"):
        assert str(front[key]).endswith("Z")


async def test_our_files_keep_the_reference_layout(start_server, tmp_path: Path) -> None:
    server: HttpServer = start_server()
    async with server.client() as client:
        await call(
            client,
            "remember",
            name="layout/check",
            content="Body text.\n",
            scope="org/x",
            tags=["a", "b"],
            source="test",
        )
        await call(client, "remember", name="plain", content="No tags, no source.")
    repo = tmp_path / "repo"
    scoped = (repo / "projects/org/x/layout/check.md").read_text()
    assert_reference_layout(scoped)
    assert yaml.safe_load(scoped.split("---\n")[1])["scope"] == {"type": "Path", "name": "org/x"}
    plain = (repo / "global/plain.md").read_text()
    assert_reference_layout(plain)
    front = yaml.safe_load(plain.split("---\n")[1])
    assert front["scope"] == {"type": "Root"} and front["tags"] == [] and "source" not in front
